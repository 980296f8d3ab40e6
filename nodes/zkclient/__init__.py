"""A ZooKeeper load generator that speaks ZooKeeper's client protocol itself, so it drives
RSMKeeper, ZK-Mason and Apache ZooKeeper alike.

- `session.py`: one ZooKeeper session over asyncio (handshake, pings, pipelined requests
  answered in order, re-attach after a connection loss, closeSession);
- `mix.py`: the operation mix from the original's percentages, and its validation;
- `load.py`: the closed loop (`connections` sessions x `concurrency` outstanding requests),
  its key space, reply checks, measurement and history;
- `counts.py`: `<name>.zkops.json`, what each operation kind was answered.
"""
