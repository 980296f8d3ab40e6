"""The replica's Raft file: what is replayed is what was written, whatever the crash left."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nodes.proxy.durable import HEADER, EntriesFrom, RaftFile, frame, replay
from nodes.raft import Entry, MemoryStorage, RaftConfig, RaftNode, Ready, Snapshot
from tests.unit.raft.sim import Scenario, Sim, SimFailure, scenario_for


def same(a: MemoryStorage, b: MemoryStorage) -> bool:
    return (a.term, a.voted_for, a.snapshot, a.log.offset, a.log.snap_term, a.log.entries) == (
        b.term, b.voted_for, b.snapshot, b.log.offset, b.log.snap_term, b.log.entries)


def entries(first: int, n: int, term: int) -> list[Entry]:
    return [Entry(term, first + k, f"{term}/{first + k}".encode()) for k in range(n)]


@pytest.mark.parametrize("mode", ["always", "batch", "off"])
def test_replay_equals_what_was_written(tmp_path, mode):
    f = RaftFile(tmp_path / "r.raft", mode)
    st = f.storage
    assert not f.restarted
    st.term, st.voted_for = 3, 1
    st.log.extend(entries(1, 5, 3))
    f.persist()
    st.log.truncate_from(4)  # a conflict: the new leader's entries replace 4 and 5
    st.term, st.voted_for = 4, None
    st.log.extend(entries(4, 3, 4))
    f.persist()
    f.close()
    again = RaftFile(tmp_path / "r.raft", mode)
    assert again.restarted
    assert same(again.storage, st)
    assert [e.term for e in again.storage.log.entries] == [3, 3, 3, 4, 4, 4]
    assert again.storage.voted_for is None


def test_truncation_then_shorter_log_is_replayed_short(tmp_path):
    f = RaftFile(tmp_path / "r.raft")
    st = f.storage
    st.log.extend(entries(1, 6, 1))
    f.persist()
    st.log.truncate_from(3)
    st.log.extend(entries(3, 1, 2))
    f.persist()
    assert st.log.last_index == 3
    assert same(replay(tmp_path / "r.raft")[0], st)


def test_a_snapshot_rewrites_the_file_compactly(tmp_path):
    path = tmp_path / "r.raft"
    f = RaftFile(path)
    st = f.storage
    st.term = 2
    st.log.extend(entries(1, 200, 2))
    f.persist()
    big = path.stat().st_size
    st.log.compact(190)
    st.snapshot = Snapshot(190, 2, b"state at 190")
    f.persist()
    assert path.stat().st_size < big / 5
    assert same(replay(path)[0], st)
    st.log.extend(entries(201, 2, 2))  # appends after the rewrite go on the new file
    f.persist()
    assert same(replay(path)[0], st)


def test_an_installed_snapshot_replaces_the_log(tmp_path):
    path = tmp_path / "r.raft"
    f = RaftFile(path)
    st = f.storage
    st.log.extend(entries(1, 4, 1))
    f.persist()
    st.log.reset(50, 3)  # the leader's snapshot: our log does not hold its last entry
    st.snapshot = Snapshot(50, 3, b"s50")
    f.persist()
    st.log.extend(entries(51, 2, 3))
    f.persist()
    back = replay(path)[0]
    assert same(back, st)
    assert back.log.first_index == 51 and back.snapshot.data == b"s50"


@pytest.mark.parametrize("cut", [1, 3, HEADER.size, HEADER.size + 2])
def test_a_torn_tail_is_cut_off_not_fatal(tmp_path, cut, caplog):
    path = tmp_path / "r.raft"
    f = RaftFile(path)
    st = f.storage
    st.log.extend(entries(1, 3, 1))
    f.persist()
    good = path.stat().st_size
    st.log.extend(entries(4, 3, 1))
    f.persist()
    f.close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - (size - good) + cut)  # the second record only partly written
    back = RaftFile(path)
    assert back.storage.log.last_index == 3
    assert path.stat().st_size == good  # the torn bytes are gone; appends follow cleanly
    assert "cutting" in caplog.text
    back.storage.log.extend(entries(4, 1, 2))
    back.persist()
    assert replay(path)[0].log.last_index == 4


def test_a_corrupt_record_ends_the_replay(tmp_path, caplog):
    path = tmp_path / "r.raft"
    f = RaftFile(path)
    f.storage.log.extend(entries(1, 2, 1))
    f.persist()
    good = path.stat().st_size
    f.storage.log.extend(entries(3, 2, 1))
    f.persist()
    f.close()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    st, valid = replay(path)
    assert st.log.last_index == 2 and valid == good
    assert "bad checksum" in caplog.text


def test_a_record_that_does_not_fit_the_log_ends_the_replay(tmp_path, caplog):
    path = tmp_path / "r.raft"
    path.write_bytes(frame(EntriesFrom(1, entries(1, 2, 1)))
                     + frame(EntriesFrom(9, entries(9, 1, 1))))
    st, _ = replay(path)
    assert st.log.last_index == 2
    assert "does not replay" in caplog.text


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="durable mode"):
        RaftFile(tmp_path / "r.raft", "sometimes")


def test_a_restarted_node_on_the_replayed_storage_keeps_its_vote(tmp_path):
    """A node's storage, persisted after every ready, comes back with the same term and
    vote, so the restarted node cannot vote twice in one term."""
    path = tmp_path / "r.raft"
    f = RaftFile(path)
    cfg = RaftConfig(node_id=2, peers=(1, 2, 3), seed=1)
    node = RaftNode(cfg, f.storage)
    from nodes.raft import VoteRequest
    node.step(VoteRequest(1, 2, 5, 0, 0))
    rd = node.ready()
    f.persist()
    assert rd.messages[0].granted
    f.close()
    again = RaftFile(path)
    node2 = RaftNode(cfg, again.storage)
    node2.step(VoteRequest(3, 2, 5, 0, 0))
    assert node2.term == 5 and not node2.ready().messages[0].granted


def test_random_histories_replay_exactly(tmp_path):
    rng = random.Random(7)
    for trial in range(30):
        path = tmp_path / f"r{trial}.raft"
        f = RaftFile(path, "off")
        st = f.storage
        term = 1
        for _ in range(40):
            op = rng.random()
            log = st.log
            if op < 0.5:
                log.extend(entries(log.last_index + 1, rng.randint(1, 4), term))
            elif op < 0.7 and log.last_index > log.offset + 1:
                cut = rng.randint(log.first_index + 1, log.last_index)
                term += 1
                log.truncate_from(cut)
                log.extend(entries(cut, rng.randint(0, 3), term))
            elif op < 0.8 and log.last_index > log.offset:
                at = rng.randint(log.first_index, log.last_index)
                st.snapshot = Snapshot(at, log.term(at) or 0, b"s%d" % at)
                log.compact(at)
            elif op < 0.85:
                at = log.last_index + rng.randint(1, 5)
                log.reset(at, term)
                st.snapshot = Snapshot(at, term, b"i%d" % at)
            else:
                term += 1
                st.term, st.voted_for = term, rng.choice([None, 1, 2])
            if rng.random() < 0.7:
                f.persist()
        f.persist()
        assert same(replay(path)[0], st), trial


def test_batch_mode_hands_out_one_fsync_for_everything_written(tmp_path):
    from nodes.proxy.durable import fsync_and_close

    f = RaftFile(tmp_path / "r.raft", "batch")
    assert f.take_unsynced() is None  # nothing written yet
    f.storage.log.extend(entries(1, 2, 1))
    f.persist()
    f.storage.log.extend(entries(3, 2, 1))
    f.persist()
    fd = f.take_unsynced()
    assert fd is not None and fd != f.fd
    fsync_and_close(fd)
    assert f.take_unsynced() is None and f.syncs == 1
    always = RaftFile(tmp_path / "a.raft", "always")
    always.storage.log.extend(entries(1, 1, 1))
    always.persist()
    assert always.syncs == 1 and always.take_unsynced() is None


class DurableSim(Sim):
    """The Raft simulator with every node's storage behind a Raft file, persisted after each
    ready before its messages go out (as the proxy does); a crashed node restarts from
    what its file replays, not from the surviving in-memory object."""

    def __init__(self, sc: Scenario, root: Path) -> None:
        self.root = root
        self.files: dict[int, RaftFile] = {}
        super().__init__(sc)
        for nid in self.ids:
            self.files[nid] = RaftFile(root / f"{nid}.raft", "off")
            self.storages[nid] = self.files[nid].storage
            self.nodes[nid] = self._new_node(nid)
        self.replayed = 0

    def _handle_ready(self, nid: int, node: RaftNode, rd: Ready, send: bool = True) -> None:
        self.files[nid].persist()
        super()._handle_ready(nid, node, rd, send)

    def _restart(self, nid: int) -> None:
        self.files[nid].close()
        self.files[nid] = RaftFile(self.root / f"{nid}.raft", "off")
        self.storages[nid] = self.files[nid].storage
        self.replayed += 1
        super()._restart(nid)


@pytest.mark.parametrize("lo", [0, 100])
def test_raft_stays_safe_when_crashed_nodes_restart_from_their_files(tmp_path, lo):
    """Seeds of the Raft simulator (crashes, partitions, loss, compaction, snapshots), every
    restart replaying the node's file: the simulator's safety and liveness checks hold."""
    restarts = 0
    for seed in range(lo, lo + 100):
        root = tmp_path / str(seed)
        root.mkdir()
        sim = DurableSim(scenario_for(seed), root)
        try:
            sim.run()
        except SimFailure as exc:
            pytest.fail(f"seed {seed}: {exc}", pytrace=False)
        restarts += sim.replayed
    assert restarts > 20  # the seeds did crash and restart nodes
