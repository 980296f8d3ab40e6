"""The watch table: one-shot and persistent watches, one notification per session per event,
watches of closed sessions dropped, and re-registration on reconnect (setWatches)."""

from nodes.zk.codes import AddWatchMode, EventType, WatcherType
from nodes.zk.machine import Change, ZkStateMachine
from nodes.zk.requests import CloseSession, CreateSession, SetWatches, Txn
from nodes.zk.results import SessionResult
from nodes.zk.stat import Stat
from nodes.zk.watches import Notification, Rewatch, WatchTable, one_shots, rewatch_event

CREATED, DELETED, CHANGED, CHILD = (EventType.NODE_CREATED, EventType.NODE_DELETED,
                                    EventType.NODE_DATA_CHANGED,
                                    EventType.NODE_CHILDREN_CHANGED)


def test_one_shot_watches_fire_once_for_every_watching_session_in_session_order():
    w = WatchTable()
    w.add_data(7, "/a")
    w.add_data(3, "/a")
    w.add_data(3, "/a")  # twice by one session: still one watch
    assert w.trigger([Change(CHANGED, "/a")]) == [Notification(3, CHANGED, "/a"),
                                                 Notification(7, CHANGED, "/a")]
    assert w.trigger([Change(CHANGED, "/a")]) == []


def test_which_events_fire_which_one_shot_watches():
    w = WatchTable()
    w.add_data(1, "/a")
    w.add_child(2, "/a")
    assert w.trigger([Change(CHILD, "/a")]) == [Notification(2, CHILD, "/a")]
    assert w.trigger([Change(CREATED, "/a")]) == [Notification(1, CREATED, "/a")]
    w.add_data(1, "/a")
    w.add_child(1, "/a")
    w.add_child(2, "/a")
    assert w.trigger([Change(DELETED, "/a")]) == [Notification(1, DELETED, "/a"),
                                                 Notification(2, DELETED, "/a")]
    assert w.count(1) == w.count(2) == 0


def test_persistent_watches_stay_and_recursive_ones_skip_child_events():
    w = WatchTable()
    w.add_persistent(1, "/a", AddWatchMode.PERSISTENT)
    w.add_persistent(2, "/a", AddWatchMode.PERSISTENT_RECURSIVE)
    w.add_data(1, "/a")  # the same session's one-shot: still one notification
    changes = [Change(CHANGED, "/a"), Change(CHILD, "/a"), Change(CREATED, "/a/b/c"),
               Change(CHANGED, "/a")]
    assert w.trigger(changes) == [
        Notification(1, CHANGED, "/a"), Notification(2, CHANGED, "/a"),
        Notification(1, CHILD, "/a"),
        Notification(2, CREATED, "/a/b/c"),
        Notification(1, CHANGED, "/a"), Notification(2, CHANGED, "/a"),
    ]
    assert w.trigger([Change(CREATED, "/ab")]) == []  # a prefix is not an ancestor


def test_a_trigger_for_one_session_and_path_leaves_every_other_watch():
    w = WatchTable()
    for session in (1, 2):
        w.add_data(session, "/a")
        w.add_data(session, "/b")
    w.add_persistent(1, "/", AddWatchMode.PERSISTENT_RECURSIVE)
    assert w.trigger([Change(CHANGED, "/a"), Change(CHANGED, "/b")], only=(1, "/a")) == [
        Notification(1, CHANGED, "/a")]
    assert w.data == {"/a": {2}, "/b": {1, 2}}
    assert w.trigger([Change(CREATED, "/x")], only=(1, "/")) == [Notification(1, CREATED, "/x")]


def test_a_recursive_watch_on_the_root_sees_everything():
    w = WatchTable()
    w.add_persistent(4, "/", AddWatchMode.PERSISTENT_RECURSIVE)
    assert w.trigger([Change(DELETED, "/x/y")]) == [Notification(4, DELETED, "/x/y")]


def test_dropping_a_session_removes_all_its_watches():
    w = WatchTable()
    for add in (w.add_data, w.add_child):
        add(1, "/a")
        add(2, "/a")
    w.add_persistent(1, "/b", AddWatchMode.PERSISTENT_RECURSIVE)
    w.drop_session(1)
    assert w.count(1) == 0 and w.count(2) == 2
    assert w.trigger([Change(DELETED, "/a"), Change(CREATED, "/b/c")]) == [
        Notification(2, DELETED, "/a")]
    assert w.data == {} and w.child == {} and w.recursive == {}


def _stat(mzxid: int, pzxid: int) -> Stat:
    return Stat(1, mzxid, 0, 0, 0, 0, 0, 0, 0, 0, pzxid)


def test_set_watches_fires_what_changed_since_the_client_last_saw_and_keeps_the_rest():
    tree = {"/old": _stat(5, 5), "/newdata": _stat(9, 5), "/newkids": _stat(5, 9)}
    w = WatchTable()
    out = w.set_watches(3, SetWatches(
        relative_zxid=6, data=["/old", "/newdata", "/gone"], exist=["/old", "/absent"],
        child=["/old", "/newkids", "/gone"], persistent=["/p"],
        persistent_recursive=["/r"]), tree.get)
    assert out == [Notification(3, CREATED, "/old"),
                   Notification(3, CHANGED, "/newdata"), Notification(3, DELETED, "/gone"),
                   Notification(3, CHILD, "/newkids"), Notification(3, DELETED, "/gone")]
    assert w.data == {"/old": {3}, "/absent": {3}}
    assert w.child == {"/old": {3}}
    assert w.persistent == {"/p": {3}} and w.recursive == {"/r": {3}}


def test_the_per_path_rewatch_rule_is_zookeepers_data_tree_set_watches():
    unchanged, data_changed, kids_changed = _stat(5, 5), _stat(7, 5), _stat(5, 7)
    cases = [
        (Rewatch.EXIST, None, None), (Rewatch.EXIST, unchanged, CREATED),
        (Rewatch.DATA, None, DELETED), (Rewatch.DATA, unchanged, None),
        (Rewatch.DATA, data_changed, CHANGED), (Rewatch.DATA, kids_changed, None),
        (Rewatch.CHILD, None, DELETED), (Rewatch.CHILD, unchanged, None),
        (Rewatch.CHILD, kids_changed, CHILD), (Rewatch.CHILD, data_changed, None),
    ]
    for kind, stat, fires in cases:
        assert rewatch_event(kind, stat, since=6) == fires, (kind, stat)
    # The client saw zxid 7 already: nothing changed since then.
    assert rewatch_event(Rewatch.DATA, data_changed, since=7) is None
    assert rewatch_event(Rewatch.CHILD, kids_changed, since=7) is None


def test_rewatch_registers_what_does_not_fire_in_the_table_it_belongs_to():
    w = WatchTable()
    assert w.rewatch(3, Rewatch.EXIST, "/e", None, 6) is None
    assert w.rewatch(3, Rewatch.DATA, "/d", _stat(5, 9), 6) is None
    assert w.rewatch(3, Rewatch.CHILD, "/c", _stat(9, 5), 6) is None
    assert w.rewatch(3, Rewatch.CHILD, "/x", None, 6) == Notification(3, DELETED, "/x")
    assert w.data == {"/e": {3}, "/d": {3}} and w.child == {"/c": {3}}
    assert w.trigger([Change(CREATED, "/e"), Change(CHILD, "/c")]) == [
        Notification(3, CREATED, "/e"), Notification(3, CHILD, "/c")]


def test_one_shots_lists_every_one_shot_watch_once_by_kind():
    request = SetWatches(1, data=["/d"], exist=["/e"], child=["/c", "/d"], persistent=["/p"])
    assert one_shots(request) == [(Rewatch.EXIST, "/e"), (Rewatch.DATA, "/d"),
                                  (Rewatch.CHILD, "/c"), (Rewatch.CHILD, "/d")]


def test_a_closed_session_loses_its_watches_through_after_apply():
    m, w = ZkStateMachine(), WatchTable()
    txn = Txn(0, 1, CreateSession(5000))
    opened = m.apply(txn)
    assert isinstance(opened.result, SessionResult)
    w.add_data(opened.result.session, "/x")
    close = Txn(opened.result.session, 2, CloseSession())
    assert w.after_apply(close, m.apply(close)) == []
    assert w.count(opened.result.session) == 0


def test_remove_and_check_watches_by_kind():
    w = WatchTable()
    w.add_data(1, "/a")
    w.add_child(1, "/a")
    w.add_persistent(1, "/a", AddWatchMode.PERSISTENT_RECURSIVE)
    assert w.remove(1, "/a", WatcherType.DATA, only_check=True)
    assert w.count(1) == 3
    assert w.remove(1, "/a", WatcherType.DATA)
    assert not w.remove(1, "/a", WatcherType.DATA)  # the client answers NoWatcher
    assert not w.remove(2, "/a", WatcherType.ANY)
    assert not w.remove(1, "/a", WatcherType.PERSISTENT)
    assert w.remove(1, "/a", WatcherType.ANY)
    assert w.count(1) == 0
    assert w.trigger([Change(DELETED, "/a")]) == []
