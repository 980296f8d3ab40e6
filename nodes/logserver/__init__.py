"""Log servers: write-once positions of Corfu's shared log, grouped into replica chains."""
