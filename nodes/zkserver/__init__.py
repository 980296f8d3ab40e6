"""RSMKeeper's ZooKeeper front end on each proxy replica: client connections speaking
ZooKeeper's own protocol (connection.py), the replica-wide listener that answers them from
the committed log (listener.py), and the path of their transactions into the log through
whichever replica leads (submitter.py)."""
