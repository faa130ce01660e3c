"""The messages of one SysV queue, indexed so that every ``msgrcv`` selection avoids scanning.

Linux counterpart: ``msq->q_messages`` and ``find_msg``/``testmsg`` (ipc/msg.c), which walk one list
(O(n) per typed receive). gVisor counterpart: the ``msgList`` of pkg/sentry/kernel/msgqueue.

A message is stored as the very bytes user space passed to msgsnd: ``struct msgbuf`` = the 8-byte
``mtype`` followed by the text. The send path copies it in with one read and the receive path copies
it out with one write, and a queued message costs one ``bytes`` object plus a few pointers.

Structure (``seq`` numbers increase with arrival and identify a message while it is queued):

* ``slots``: arrival order. ``slots[seq - base]`` is the message or None once removed; ``head`` is the
  index of the oldest queued message. Holes left by typed receives are squeezed out (renumbering
  every message) once they outnumber the queued messages, so the list stays O(queued).
* ``fifos``: ``mtype -> deque of seq`` in arrival order. Every removal takes the head of its type's
  FIFO (the oldest of a type is always the one any selection rule picks), so removal is O(1).
* ``types``: a min-heap of the keys of ``fifos``; the lowest non-empty type (``msgtyp < 0``) is found
  by popping empty types off its top. Empty FIFOs are kept (a ping-pong on one type allocates
  nothing); whenever a FIFO is created, they are dropped if they number more than twice the
  non-empty ones plus 64.
* ``heads``: a lazily built min-heap of the seq of each type's oldest message (entries for removed
  messages are skipped when they surface), used by MSG_EXCEPT: the oldest message of another type.

Costs: msgtyp 0 and msgtyp > 0 are O(1); msgtyp < 0 and MSG_EXCEPT are O(log T) amortized for T
distinct queued types; MSG_COPY's index is O(1) when no typed receive left holes since the last
renumbering. With holes it walks the slots, never renumbering (a read must not cost a rebuild of
the whole queue), from the position the previous MSG_COPY found when nothing was removed since:
MSG_COPY is the checkpoint interface that reads index 0, 1, 2, ... in turn, so each of those steps
is O(1 + holes skipped). Memory: the message's ``bytes`` plus about 48 bytes (a list slot, a deque
slot and the seq int) per queued message.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import Final, cast

from mqsentry.abi.linux.msgqueue import MTYPE

# Selection modes (ipc/msg.c convert_mode).
SEARCH_ANY: Final = 1
SEARCH_EQUAL: Final = 2
SEARCH_NOTEQUAL: Final = 3
SEARCH_LESSEQUAL: Final = 4
SEARCH_NUMBER: Final = 5

_mtype_of: Final = MTYPE.unpack_from
#: Holes and dead prefixes are reclaimed only past this size, so small queues never renumber.
_SLACK: Final = 1024
_EMPTY_FIFO_SLACK: Final = 64


def testmsg(mtype: int, msgtyp: int, mode: int) -> bool:
    """Linux ``testmsg``: does a message of type ``mtype`` match a receiver's (msgtyp, mode)?"""
    if mode == SEARCH_ANY or mode == SEARCH_NUMBER:
        return True
    if mode == SEARCH_EQUAL:
        return mtype == msgtyp
    if mode == SEARCH_LESSEQUAL:
        return mtype <= msgtyp
    return mtype != msgtyp  # SEARCH_NOTEQUAL


class MessageStore:
    """Queued messages of one queue, with counters ``qnum`` and ``cbytes``.

    Not thread-safe: every field is guarded by the owning ``Queue.mu``. No field is immutable.
    """

    __slots__ = ("slots", "head", "base", "fifos", "types", "nonempty", "heads", "qnum", "cbytes", "_copy_at")

    def __init__(self) -> None:
        self.slots: list[bytes | None] = []
        self.head = 0
        self.base = 0
        self.fifos: dict[int, deque[int]] = {}
        self.types: list[int] = []
        self.nonempty = 0
        self.heads: list[int] | None = None
        self.qnum = 0
        self.cbytes = 0
        #: MSG_COPY's last find: (base, head, holes, index, slot position). It stays right while the
        #: first three are unchanged: without push_front (which clears it), ``head`` only grows and
        #: ``holes`` only grows while ``head`` stands still, so any removal changes one of them;
        #: appends change none and move no queued message.
        self._copy_at: tuple[int, int, int, int, int] | None = None

    # -- insertion -----------------------------------------------------------------------------------
    def append(self, blob: bytes, mtype: int, msgsz: int) -> None:
        """Queue ``blob`` (mtype + ``msgsz`` bytes of text) at the tail."""
        slots = self.slots
        seq = self.base + len(slots)
        slots.append(blob)
        self.qnum += 1
        self.cbytes += msgsz
        fifo = self.fifos.get(mtype)
        if fifo:
            fifo.append(seq)
            return
        if fifo is None:
            # The only place the FIFO table grows, so the only place to bound its empty FIFOs.
            if len(self.fifos) > 2 * self.nonempty + _EMPTY_FIFO_SLACK:
                self._drop_empty_types()
            fifo = self.fifos[mtype] = deque()
            heapq.heappush(self.types, mtype)
        fifo.append(seq)
        self.nonempty += 1
        heads = self.heads
        if heads is not None:
            heapq.heappush(heads, seq)
            if len(heads) > 2 * self.nonempty + _EMPTY_FIFO_SLACK:
                self._rebuild_heads()

    def push_front(self, blob: bytes, mtype: int, msgsz: int) -> None:
        """Queue ``blob`` ahead of every queued message: the undo of a receive whose receiver never
        got it (kernel/platform, docs/platform-rules.md §3). It was the oldest of its type when it left and
        anything of its type queued since is newer, so it also heads its type's FIFO. Rare: may cost
        O(n) (a renumbering, or a list insert at 0)."""
        if not self.qnum:
            self.append(blob, mtype, msgsz)
            return
        head = self.head
        if head:
            head -= 1  # every slot before ``head`` is a hole
            self.slots[head] = blob
            self.head = head
        else:
            if not self.base:
                self._renumber()  # new seqs start above 0, so one below the oldest is free (>= 0)
            self.slots.insert(0, blob)
            self.base -= 1  # keeps every other message's seq
        seq = self.base + self.head
        self.qnum += 1
        self.cbytes += msgsz
        self._copy_at = None  # may have re-filled a hole behind MSG_COPY's last position
        fifo = self.fifos.get(mtype)
        if fifo is None:
            fifo = self.fifos[mtype] = deque()
            heapq.heappush(self.types, mtype)
        if not fifo:
            self.nonempty += 1
        fifo.appendleft(seq)
        # The type's previous head is still in ``heads`` but no longer a head: rebuild lazily.
        self.heads = None

    # -- selection -----------------------------------------------------------------------------------
    def find(self, msgtyp: int, mode: int) -> int:
        """The seq of the message ``find_msg`` would pick for (msgtyp, mode), or -1.

        ``mode`` is not SEARCH_NUMBER (see :meth:`at_index`); for SEARCH_LESSEQUAL ``msgtyp`` is
        already the absolute bound.
        """
        if self.qnum == 0:
            return -1
        if mode == SEARCH_ANY:
            return self.base + self.head
        if mode == SEARCH_EQUAL:
            fifo = self.fifos.get(msgtyp)
            return fifo[0] if fifo else -1
        if mode == SEARCH_LESSEQUAL:
            low = self._lowest_type()
            return self.fifos[low][0] if low <= msgtyp else -1
        # SEARCH_NOTEQUAL: the oldest message whose type differs.
        first = self.base + self.head
        if _mtype_of(self.slots[self.head])[0] != msgtyp:  # type: ignore[arg-type]
            return first
        heads = self.heads
        if heads is None:
            heads = self._rebuild_heads()
        self._clean_heads()
        top = heapq.heappop(heads)  # == first: the oldest message, of the excluded type
        self._clean_heads()
        found = heads[0] if heads else -1
        heapq.heappush(heads, top)
        return found

    def blob(self, seq: int) -> bytes:
        return self.slots[seq - self.base]  # type: ignore[return-value]

    def at_index(self, index: int) -> bytes | None:
        """MSG_COPY: the ``index``-th queued message in arrival order (0-based), or None."""
        if index < 0 or index >= self.qnum:
            return None
        slots, head = self.slots, self.head
        holes = len(slots) - head - self.qnum
        if not holes:
            return slots[head + index]
        key = (self.base, head, holes)
        at = self._copy_at
        if at is not None and at[:3] == key and at[3] <= index:
            i, pos = at[3], at[4]
        else:
            i, pos = 0, head
            while slots[pos] is None:
                pos += 1
        # Invariant: slots[pos] is the i-th queued message.
        while i < index:
            pos += 1
            while slots[pos] is None:
                pos += 1
            i += 1
        self._copy_at = (*key, i, pos)
        return slots[pos]

    def _lowest_type(self) -> int:
        # Caller made sure qnum > 0, so a non-empty type exists.
        types, fifos = self.types, self.fifos
        while not fifos[types[0]]:
            del fifos[heapq.heappop(types)]
        return types[0]

    def _clean_heads(self) -> None:
        heads, slots, base = self.heads, self.slots, self.base
        assert heads is not None
        while heads:
            i = heads[0] - base
            if i >= 0 and slots[i] is not None:
                return
            heapq.heappop(heads)

    def _rebuild_heads(self) -> list[int]:
        heads = [f[0] for f in self.fifos.values() if f]
        heapq.heapify(heads)
        self.heads = heads
        return heads

    # -- removal -------------------------------------------------------------------------------------
    def remove(self, seq: int, mtype: int, msgsz: int) -> bytes:
        """Unlink message ``seq`` of type ``mtype`` and ``msgsz`` text bytes (the head of its type's
        FIFO) and return it."""
        slots = self.slots
        i = seq - self.base
        blob = slots[i]
        assert blob is not None
        fifo = self.fifos[mtype]
        fifo.popleft()
        self.cbytes -= msgsz
        qnum = self.qnum = self.qnum - 1
        if not qnum:
            # Now empty: start over, which keeps a ping-pong queue's list at one element.
            self.nonempty = 0
            self.base += len(slots)
            slots.clear()
            self.head = 0
            if self.heads:
                self.heads.clear()
            return blob
        slots[i] = None
        if fifo:
            heads = self.heads
            if heads is not None:
                heapq.heappush(heads, fifo[0])
                if len(heads) > 2 * self.nonempty + _EMPTY_FIFO_SLACK:
                    self._rebuild_heads()
        else:
            self.nonempty -= 1
        if i == self.head:
            head = i + 1
            while slots[head] is None:
                head += 1
            self.head = head
            if head > _SLACK and 2 * head > len(slots):
                del slots[:head]
                self.base += head
                self.head = 0
        elif len(slots) - self.head - qnum > qnum + _SLACK:
            self._renumber()
        return blob

    def _drop_empty_types(self) -> None:
        self.fifos = {m: f for m, f in self.fifos.items() if f}
        self.types = list(self.fifos)
        heapq.heapify(self.types)

    def _renumber(self) -> None:
        """Squeeze the holes out of ``slots`` and give every queued message a new seq (O(n))."""
        live = [b for b in self.slots[self.head:] if b is not None]
        base = self.base + len(self.slots)  # new seqs above every old one
        fifos: dict[int, deque[int]] = {}
        for seq, blob in enumerate(live, base):
            mtype = _mtype_of(blob)[0]
            fifo = fifos.get(mtype)
            if fifo is None:
                fifo = fifos[mtype] = deque()
            fifo.append(seq)
        self.slots = cast("list[bytes | None]", live)  # a new list: no alias of it holds None
        self.base = base
        self.head = 0
        self.fifos = fifos
        self.types = list(fifos)
        heapq.heapify(self.types)
        self.nonempty = len(fifos)
        if self.heads is not None:
            self._rebuild_heads()

    def __iter__(self) -> Iterator[bytes]:
        """Queued messages in arrival order."""
        return (b for b in self.slots[self.head:] if b is not None)
