"""The sequencer: n counters, ranges per request, at-most-once per (group, srid)."""
