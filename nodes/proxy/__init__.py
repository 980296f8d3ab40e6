"""The proxy: one replica of one Raft group that batches client operations."""
