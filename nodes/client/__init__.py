"""Clients: closed-loop workload generators that ask for multi-sequence numbers."""
