"""A ZK-Mason shard replica: one third of one shard of the sharded ZooKeeper tree."""
