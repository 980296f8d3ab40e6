"""ZooKeeper's data model and client protocol, shared by RSMKeeper and ZK-Mason.

`codes` (ZooKeeper's numeric error, operation, event and create-mode codes) and `stat`
(a znode's Stat) are the vocabulary the I/O-free tree and the wire codec both speak.

The I/O-free state machine, one job per module:
`paths` (validation as ZooKeeper's PathUtils, parent/name), `requests` (typed requests and the
log entry `Txn`), `results` (typed answers carrying ZooKeeper's codes), `tree` (the znode
store and its Stat bookkeeping, with a journal for multi), `sessions` (session table, timeout
clamp, expiry by log time), `machine` (`ZkStateMachine.apply(txn) -> Applied`: ZooKeeper's
checks and error codes, multi, sessions), `watches` (connection-local watch table turning
`Applied.changes` into notifications) and `snapshot` (deterministic bytes, validated restore).

ZooKeeper's client protocol, I/O-free too: `jute` (bounds-checked reader and writers),
`wire` (the handshake, request and reply records by opcode, multi, notifications, the frame
splitter with its size limit) and `fourletter` (answers to `ruok`, `srvr`, `stat`, `envi`...).

`history` is what a client records of its operations for the linearizability checker
(analysis/linearizability.py): its writer and its reader.
"""
