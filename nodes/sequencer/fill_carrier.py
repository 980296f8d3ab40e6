"""Which group commits a takeover's fill: any group that can, never two. Free of I/O.

The fill's noops may go into any group's log: collect has already fenced every group
(each committed its switch) and reported what each committed, and a later standby's
collect sees the noops in whichever group holds them. What must never happen is the same
fill committed by two groups: its numbers would then be held twice.

A group may commit the fill only if some replica of it proposed the fill entry, and a
replica proposes only when a fill request (not a probe) reaches it while it leads. Once
that may have happened, only that group can ever decide whether the entry commits: a
leader that lost its majority keeps the entry in its log, and a later leader may commit
it long after. So the rule is:

1. While no group may hold the fill, try the groups in turn, from the first: probe the
   group (its leader commits a marker that owns no number) and, if no leader of it shows
   within the patience that it can commit, move to the next, round and round.
2. Send the fill only to a group whose probe just succeeded; from then on the carrier is
   bound to it.
3. A refusal that proposed nothing (the request never left, or a replica that does not
   lead answered `untouched`) unbinds the carrier, provided every earlier fill request to
   that group was refused the same way: the group is back in the turn.
4. Any other outcome (no answer, a lost connection, a leader that stepped down while it
   held the request) binds the carrier to that group for good: the standby waits for that
   group however long it takes. That is inherent: the entry may sit in the log of a
   leader without a majority, and only that group's next majority can commit or drop it.

Hence at any time at most one group has a fill request that was not provably refused, and
a fill is committed by at most one group. The window in which a group can strand the
takeover is only the time between its successful probe and its commit of the fill.
"""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    DONE = "done"  # the group applied the fill
    REFUSED = "refused"  # the request put nothing in the group's log
    UNKNOWN = "unknown"  # anything else: the request may sit in the group's log


class FillCarrier:
    def __init__(self, ngroups: int) -> None:
        if ngroups < 1:
            raise ValueError("a fill needs at least one group to carry it")
        self.ngroups = ngroups
        self.turn = 0  # the group probed next while no group may hold the fill
        self.bound: int | None = None  # the group that may hold the fill
        self.for_good = False  # bound with an outcome that can never be cleared

    def next_group(self) -> int:
        """The group to ask now: the bound one, else the one whose turn it is."""
        return self.bound if self.bound is not None else self.turn

    def may_skip(self) -> bool:
        """Whether the group asked now may be passed over (no group may hold the fill)."""
        return self.bound is None

    def unavailable(self, group: int) -> None:
        """No leader of `group` showed it can commit: the next group's turn."""
        if self.bound is None and group == self.turn:
            self.turn = (group + 1) % self.ngroups

    def sending(self, group: int) -> None:
        """The fill itself is about to be sent to `group`: bind to it first."""
        if self.bound is not None and self.bound != group:
            raise ValueError(f"group {self.bound} may hold the fill: group {group} must not "
                             "be sent it")
        self.bound = group

    def answered(self, group: int, outcome: Outcome) -> None:
        if group != self.bound:
            raise ValueError(f"an answer from group {group}, but the fill went to group "
                             f"{self.bound}")
        if outcome is Outcome.REFUSED:
            if not self.for_good:
                self.bound = None
        else:
            self.for_good = True
