"""ZooKeeper's data model and client protocol, shared by RSMKeeper and ZK-Mason.

`codes` (ZooKeeper's numeric error, operation, event and create-mode codes) and `stat`
(a znode's Stat) are the vocabulary the I/O-free tree and the wire codec both speak.
"""
