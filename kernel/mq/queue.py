"""One POSIX message queue: messages by priority, blocked senders and receivers, notification.

Linux counterpart: ipc/mqueue.c — ``struct mqueue_inode_info``, ``msg_insert``/``msg_get`` (an rbtree of
per-priority FIFO lists), ``wq_add``/``wq_sleep`` (``struct ext_wait_queue``), ``pipelined_send``,
``pipelined_receive``, ``__do_notify``, ``remove_notification``, ``mqueue_read_file`` and
``mqueue_poll_file``. gVisor counterpart: pkg/sentry/kernel/mq/mq.go (``Queue``, ``View``) and the
unmerged send/receive of PR 6458.

Blocking is gVisor's discipline with Linux's hand-off semantics. :meth:`Queue.send` and
:meth:`Queue.receive` either complete at once or register a :class:`Waiter` (under the queue lock,
so no wake-up can be lost) and return it; whoever later completes the operation on the waiter's
behalf — a receiver taking the blocked sender's message into the queue, or a sender handing its
message straight to a blocked receiver — marks it ready and calls ``waker.wake()``. A sleeper then
only has to look at ``ready`` (:meth:`Queue.wait_send`/:meth:`Queue.wait_receive` do that for an
in-process :class:`~mqsentry.kernel.task.Task`); a platform that parks real processes can supply any waker
and call :meth:`Queue.cancel_send`/:meth:`Queue.cancel_receive` on timeout or signal instead.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections import deque
from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Union

from sortedcontainers import SortedList

from mqsentry.abi.linux.errno import EAGAIN, EBUSY, ERESTARTSYS, ETIMEDOUT
from mqsentry.abi.linux.signal import SIGEV_SIGNAL
from mqsentry.kernel import waiter
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ktime import RealtimeClock
from mqsentry.kernel.mq.notify import Notification

if TYPE_CHECKING:
    from mqsentry.kernel.context import KernelContext, TaskContext

_READABLE: Final = waiter.EVENT_IN | waiter.EVENT_RDNORM
_WRITABLE: Final = waiter.EVENT_OUT | waiter.EVENT_WRNORM

#: Priorities per bucket of the index: a bucket's priorities that have a node are the set bits of one
#: word in ``Queue._words``. 32 keeps a word well inside the ints the compiled build handles unboxed
#: (63 bits) and divides MQ_PRIO_MAX (32768) into 1024 buckets.
_BUCKET_SHIFT: Final = 5
_BUCKET_MASK: Final = (1 << _BUCKET_SHIFT) - 1

#: Most buckets held in ``Queue._high`` (the top of the bucket index, outside the SortedList): it is a
#: plain list kept sorted by insertion, so this bounds that O(k) work; the lowest spills into the
#: SortedList.
_HIGH_MAX: Final = 16

#: A bucket's slots, one per priority: its node (the one message's bytes, or a deque of them) or None.
_Slots = list[Union[bytes, "deque[bytes]", None]]


class Waiter:
    """A blocked send or receive (Linux ``struct ext_wait_queue``).

    ``waker`` is immutable. ``msg``/``prio`` (the message a blocked sender offers, or the one handed
    to a blocked receiver) and ``ready`` are written under the queue's ``mu``; ``ready`` flips once,
    to True, and is read by the sleeper without the lock afterwards.
    """

    __slots__ = ("waker", "msg", "prio", "ready")

    def __init__(self, waker: waiter.Waker, msg: bytes = b"", prio: int = 0) -> None:
        self.waker = waker
        self.msg = msg
        self.prio = prio
        self.ready = False


class Queue:
    """A message queue's state (Linux ``struct mqueue_inode_info`` minus the inode).

    Immutable: ``kernel``, ``maxmsg``, ``msgsize``, ``poll`` (its own leaf lock). Guarded by ``mu``:
    ``curmsgs``, ``qsize``, ``_nodes``, ``_words``, ``_buckets``, ``_high``, ``_top``, ``_empty``,
    ``_spare_slots``, ``_senders``, ``_receivers``, ``notification``, and the times of
    ``inode`` when set (``inode`` itself is set once by the filesystem, before the queue is shared).

    Messages live in nodes, one per priority that has messages (Linux's ``posix_msg_tree_node``):
    a node is the message's own ``bytes`` while it holds one, and a deque of them, oldest first, from
    its second on (a deque costs about 600 bytes, and with many priorities most nodes hold one
    message). A queue that drains keeps its last node as an empty deque, named by ``_empty``, until
    the next message: one of the same priority joins it, one of another frees it first. So a
    send/receive ping-pong on one priority never touches the index, and the kept node is the only
    node while it exists.

    Priorities are grouped in buckets of ``1 << _BUCKET_SHIFT`` (bucket ``prio >> _BUCKET_SHIFT``),
    and the nodes and their index are kept per bucket (Linux keeps an rbtree of nodes and caches its
    rightmost one):

    - ``_nodes[b]`` is bucket ``b``'s slots, one per priority (its node, or None), or None when the
      bucket has no node; ``_words[b]`` is the bucket's word, whose set bits are the priorities with
      a node, so the highest is ``word.bit_length() - 1`` (0: no node). Both lists grow on demand to
      the highest bucket used and keep that length, at most ``MQ_PRIO_MAX >> _BUCKET_SHIFT`` entries
      (16 KiB for the two); a bucket's slots are freed when its last node goes, so there are never
      more of them than nodes, plus ``_spare_slots``;
    - the buckets with a word are ordered by ``_buckets``, a sortedcontainers ``SortedList``, and
      ``_high``, an ascending plain list of at most ``_HIGH_MAX`` buckets, all above every element of
      ``_buckets``: the top of the index. Each bucket with a word is in exactly one of the two;
      ``_high`` is non-empty whenever any node exists.

    ``_top`` caches the highest priority with a node (in bucket ``_high[-1]``), -1 when there is none.
    Most sends and receives only set or clear a bit of the top buckets' words: the SortedList is
    touched when a bucket below ``_high`` gains its first priority or when ``_high`` spills or runs
    empty, so per-operation cost stays flat however many distinct priorities are in use. (The former
    index, a SortedList of priorities over a dict of deques, touched the SortedList on most
    operations once thousands of priorities were queued; its pure-Python add and pop were then most
    of a send+receive: ``mqsentry bench``'s priorities row measures this.)

    The two hot methods take the lock with ``acquire``/``try``/``finally``/``release`` rather than
    ``with``: on CPython 3.11 that costs about half as much, a visible share of a send/receive.
    """

    __slots__ = ("mu", "kernel", "maxmsg", "msgsize", "curmsgs", "qsize", "_nodes", "_words", "_buckets", "_high",
                 "_top", "_senders", "_receivers", "_empty", "_spare_slots", "poll", "notification", "inode")

    def __init__(self, kernel: KernelContext, maxmsg: int, msgsize: int) -> None:
        self.mu = threading.Lock()
        self.kernel = kernel
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.curmsgs = 0
        self.qsize = 0
        # Lists indexed by bucket, not dicts keyed by priority: indexing needs no hashing and no boxed
        # key, a visible share of a send+receive once most messages have a node of their own.
        self._nodes: list[_Slots | None] = []  # bucket -> its slots (see above)
        self._words: list[int] = []  # bucket -> its priorities with a node, as bits
        self._buckets: SortedList = SortedList()  # the buckets with a word below _high
        self._high: list[int] = []  # the top buckets with a word, ascending (see the class docstring)
        self._top = -1  # highest priority with a node (in bucket _high[-1]), -1 when there is none
        self._senders: deque[Waiter] = deque()
        self._receivers: deque[Waiter] = deque()
        self._empty: int | None = None
        # The last freed bucket's slots (all None), reused by the next bucket that gains a node
        # (as Linux's node_cache keeps one freed node): one at most, so a queue keeps no more than
        # the memory it just used.
        self._spare_slots: _Slots | None = None
        self.poll = waiter.Queue()
        self.notification: Notification | None = None
        self.inode: Any = None

    # -- helpers (caller holds mu) ---------------------------------------------------------------------
    def _insert(self, data: bytes, prio: int, front: bool = False) -> None:
        """``msg_insert``: ``data`` joins the FIFO of ``prio`` (at its head if ``front``: the undo of a
        receive), creating the node if needed."""
        kept = self._empty
        if kept is not None:
            if kept != prio:
                self._free_kept()
            self._empty = None
        node = self._node(prio)
        if node is None:
            self._link(prio, data)
        elif isinstance(node, bytes):
            self._set_node(prio, deque((data, node) if front else (node, data)))
        elif front:
            node.appendleft(data)
        else:
            node.append(data)
        self.curmsgs += 1
        self.qsize += len(data)

    def _free_kept(self) -> None:
        """Free the node the queue kept when it drained (``_empty``): the queue is about to take a
        message of another priority. Being the only node, its bucket is the only one indexed, so
        the index is emptied rather than searched. The caller clears ``_empty``."""
        kept = self._empty
        assert kept is not None
        b = kept >> _BUCKET_SHIFT
        nodes = self._nodes
        slots = nodes[b]
        assert slots is not None  # the kept node is a node
        slots[kept & _BUCKET_MASK] = None
        self._spare_slots = slots
        nodes[b] = None
        self._words[b] = 0
        self._high.clear()
        self._top = -1

    def _node(self, prio: int) -> bytes | deque[bytes] | None:
        """The node of ``prio``, None if it has none."""
        nodes = self._nodes
        b = prio >> _BUCKET_SHIFT
        if b < len(nodes):
            slots = nodes[b]
            if slots is not None:
                return slots[prio & _BUCKET_MASK]
        return None

    def _set_node(self, prio: int, node: bytes | deque[bytes]) -> None:
        """Replace the node of ``prio`` (which has one) by ``node``, holding the same messages."""
        slots = self._nodes[prio >> _BUCKET_SHIFT]
        assert slots is not None  # prio has a node, so its bucket has slots
        slots[prio & _BUCKET_MASK] = node

    def _link(self, prio: int, node: bytes | deque[bytes]) -> None:
        """Make ``node`` the node of ``prio``, which has none, and index it."""
        words = self._words
        b = prio >> _BUCKET_SHIFT
        if b >= len(words):
            grow = b + 1 - len(words)
            words.extend([0] * grow)
            self._nodes.extend([None] * grow)
        w = words[b]
        words[b] = w | (1 << (prio & _BUCKET_MASK))
        if w:
            self._set_node(prio, node)
            # The bucket is indexed already; only the top bucket can hold a priority above _top.
            if prio > self._top:
                self._top = prio
            return
        new = self._spare_slots
        if new is None:
            new = [None] * (1 << _BUCKET_SHIFT)
        else:
            self._spare_slots = None
        new[prio & _BUCKET_MASK] = node
        self._nodes[b] = new
        high = self._high
        if not high or b > high[-1]:
            # The new top bucket (an empty _high means no node at all, so _buckets is empty too).
            high.append(b)
            self._top = prio
        elif b > high[0]:
            insort(high, b)
        else:
            self._buckets.add(b)
            return
        if len(high) > _HIGH_MAX:
            self._buckets.add(high.pop(0))  # above every SortedList element: it lands at the end

    def _drop_top_bucket(self) -> None:
        """Unindexing the top node (in :meth:`receive`) left its bucket without a node: free the
        bucket's slots, unindex it and find the new top. Another node must be left (a queue that
        drains keeps its last node)."""
        high = self._high
        b = high.pop()
        nodes = self._nodes
        slots = nodes[b]
        assert slots is not None  # a bucket with a word has its slots
        slots[self._top & _BUCKET_MASK] = None  # its last node: the slots are all None now
        self._spare_slots = slots
        nodes[b] = None
        if not high:
            high.append(self._buckets.pop())
        b = high[-1]
        self._top = (b << _BUCKET_SHIFT) | (self._words[b].bit_length() - 1)

    def _pipelined_send_locked(self, data: bytes, prio: int) -> None:
        """``pipelined_send``: the message goes straight to the longest-waiting receiver (the queue is
        empty, so it never enters it and no notification fires)."""
        r = self._receivers.popleft()
        r.msg = data
        r.prio = prio
        r.ready = True
        r.waker.wake()

    # -- send ------------------------------------------------------------------------------------------
    def send(self, t: TaskContext, data: bytes, prio: int, nonblock: int,
             waker: waiter.Waker | None = None) -> Waiter | None:
        """Queue ``data`` at ``prio`` on behalf of ``t``.

        Returns None when the message was delivered. A full queue gives SysError(EAGAIN) if
        ``nonblock``; otherwise a :class:`Waiter` (for ``waker``, default ``t``) is registered and
        returned: the send completes when a receiver marks it ready.
        """
        mu = self.mu
        mu.acquire()
        try:
            if self.curmsgs >= self.maxmsg:
                if nonblock:
                    raise SysError(EAGAIN)
                if waker is None:
                    t.clear_wakeup()
                    waker = t
                w = Waiter(waker, data, prio)
                self._senders.append(w)
                return w
            if self._receivers:
                self._pipelined_send_locked(data, prio)
            else:
                # msg_insert, inlined: this is the hot path. A ping-pong on one priority finds its
                # node (kept while empty, see receive) and never touches the index.
                kept = self._empty
                if kept is not None:
                    # The queue is empty: the node it kept takes the message if it is prio's.
                    if kept != prio:
                        self._free_kept()
                    self._empty = None
                nodes = self._nodes
                b = prio >> _BUCKET_SHIFT
                slots = nodes[b] if b < len(nodes) else None
                if slots is None:
                    self._link(prio, data)
                else:
                    node = slots[prio & _BUCKET_MASK]
                    if node is None:
                        # _link, inlined for the usual case with many priorities: the bucket is
                        # indexed already (it has slots), so only its word and _top change.
                        slots[prio & _BUCKET_MASK] = data
                        self._words[b] |= 1 << (prio & _BUCKET_MASK)
                        if prio > self._top:
                            self._top = prio
                    elif isinstance(node, bytes):
                        slots[prio & _BUCKET_MASK] = deque((node, data))  # a FIFO from now on
                    else:
                        node.append(data)
                self.qsize += len(data)
                cur = self.curmsgs = self.curmsgs + 1
                if cur == 1 and self.notification is not None:
                    # __do_notify: empty -> non-empty with nobody waiting; one-shot.
                    n = self.notification
                    self.notification = None
                    n.fire(self.kernel, t)
                if self.poll._entries:  # skip the call when nobody polls (the common case)
                    self.poll.notify(_READABLE)
            ino = self.inode
            if ino is not None:
                # atime = mtime = ctime = now. The host may replace the clock at any time, so it is
                # looked up on each call; the usual real-time clock is read without a method call.
                clock = self.kernel.clock
                ino.atime_ns = ino.mtime_ns = ino.ctime_ns = (
                    _time_ns() if clock.__class__ is RealtimeClock else clock.now_ns())
            return None
        finally:
            mu.release()

    def unreceive(self, data: bytes, prio: int) -> None:
        """Undo a receive whose caller never got the message (a platform's target was killed between
        the dequeue and its reply: docs/platform-rules.md §3), as if it had never
        been taken: a waiting receiver gets it (only possible on an empty queue), otherwise it goes
        back to the head of its priority's FIFO, being the oldest of the highest priority. No
        notification fires (the queue never went empty -> non-empty from the owner's view) and the
        inode times stay.

        If a sender's message took the freed slot meanwhile, the message is dropped: others have seen
        the slot freed, and the only Linux history that shows that is the one where the receiver was
        killed *after* its dequeue, which loses the message. Putting it back would show a state Linux
        never has (``curmsgs`` above ``maxmsg``)."""
        with self.mu:
            if self._receivers:
                self._pipelined_send_locked(data, prio)
                return
            if self.curmsgs >= self.maxmsg:
                return
            self._insert(data, prio, front=True)
            if self.poll._entries:
                self.poll.notify(_READABLE)

    def cancel_send(self, w: Waiter) -> bool:
        """Withdraw a blocked send; True if it completed meanwhile (then it must count as done)."""
        with self.mu:
            if w.ready:
                return True
            try:
                self._senders.remove(w)
            except ValueError:
                pass
            return False

    def wait_send(self, t: TaskContext, w: Waiter, deadline_ns: int | None) -> None:
        """Sleep ``t`` until its registered send completes (``wq_sleep``): ETIMEDOUT at the absolute
        CLOCK_REALTIME deadline, ERESTARTSYS on a signal.

        If the sleep itself raises (a host exception such as KeyboardInterrupt, or a sentry bug), the
        record is withdrawn first, so no receiver completes a send whose caller has gone. A send
        that completed meanwhile stands: an Exception is then counted as an internal error and the
        send reports success; a BaseException propagates (the message is queued)."""
        while True:
            try:
                err = t.block(deadline_ns)
            except BaseException as e:
                if self.cancel_send(w) and isinstance(e, Exception):
                    self.kernel.note_internal_error("mq send sleep (the send completed)", e)
                    return
                raise
            if w.ready:
                return
            if err:
                if self.cancel_send(w):
                    return
                raise SysError(ERESTARTSYS if t.sigpending or err != ETIMEDOUT else ETIMEDOUT)

    def timed_send(self, t: TaskContext, data: bytes, prio: int, nonblock: int, deadline_ns: int | None) -> None:
        """The whole of mq_timedsend's queue part for an in-process task."""
        w = self.send(t, data, prio, nonblock)
        if w is not None:
            self.wait_send(t, w, deadline_ns)

    # -- receive ---------------------------------------------------------------------------------------
    def receive(self, t: TaskContext, nonblock: int, waker: waiter.Waker | None = None) -> tuple[bytes, int] | Waiter:
        """Take the oldest message of the highest priority: ``(data, prio)``.

        An empty queue gives SysError(EAGAIN) if ``nonblock``; otherwise a registered
        :class:`Waiter` is returned, which a sender fills (``msg``, ``prio``) and marks ready.
        """
        mu = self.mu
        mu.acquire()
        try:
            if not self.curmsgs:
                if nonblock:
                    raise SysError(EAGAIN)
                if waker is None:
                    t.clear_wakeup()
                    waker = t
                w = Waiter(waker)
                self._receivers.append(w)
                return w
            # msg_get, inlined (hot path). A node that runs empty is freed at once unless the queue
            # is now empty: then it stays, as an empty deque named by ``_empty``, so a send/receive
            # ping-pong on one priority never touches the index (the next send reuses or frees it).
            nodes = self._nodes
            prio = self._top
            slots = nodes[prio >> _BUCKET_SHIFT]
            assert slots is not None  # curmsgs > 0: the top has a node
            node = slots[prio & _BUCKET_MASK]
            if isinstance(node, bytes):
                data = node
                gone = True
            else:
                assert node  # not None, not empty: an empty node is only kept while the queue is empty
                data = node.popleft()
                gone = not node
            cur = self.curmsgs = self.curmsgs - 1
            self.qsize -= len(data)
            if gone:
                if cur:
                    # Unindex the node: clear its bit; the new top is in the same bucket unless
                    # that was the bucket's last priority.
                    words = self._words
                    b = prio >> _BUCKET_SHIFT
                    word = words[b] = words[b] & ~(1 << (prio & _BUCKET_MASK))
                    if word:
                        slots[prio & _BUCKET_MASK] = None
                        self._top = (b << _BUCKET_SHIFT) | (word.bit_length() - 1)
                    else:
                        self._drop_top_bucket()
                else:
                    if isinstance(node, bytes):
                        slots[prio & _BUCKET_MASK] = deque()
                    self._empty = prio
            ino = self.inode
            if ino is not None:
                clock = self.kernel.clock  # as in send
                ino.atime_ns = ino.mtime_ns = ino.ctime_ns = (
                    _time_ns() if clock.__class__ is RealtimeClock else clock.now_ns())
            senders = self._senders
            if senders:
                # pipelined_receive: the freed slot goes to the first blocked sender, whose message
                # this receiver inserts (no notification, state stays "full").
                s = senders.popleft()
                self._insert(s.msg, s.prio)
                s.ready = True
                s.waker.wake()
            elif self.poll._entries:
                self.poll.notify(_WRITABLE)
            return data, prio
        finally:
            mu.release()

    def cancel_receive(self, w: Waiter) -> bool:
        """Withdraw a blocked receive; True if a message was handed over meanwhile (in ``w.msg``)."""
        with self.mu:
            if w.ready:
                return True
            try:
                self._receivers.remove(w)
            except ValueError:
                pass
            return False

    def wait_receive(self, t: TaskContext, w: Waiter, deadline_ns: int | None) -> tuple[bytes, int]:
        """Sleep ``t`` until a sender hands it a message (see :meth:`wait_send`).

        If the sleep raises, the record is withdrawn; a message handed over meanwhile is returned
        (an Exception is counted as an internal error) or, when a BaseException propagates, put
        back at the head of the queue (:meth:`unreceive`), so it is never lost."""
        while True:
            try:
                err = t.block(deadline_ns)
            except BaseException as e:
                if self.cancel_receive(w):
                    if isinstance(e, Exception):
                        self.kernel.note_internal_error("mq receive sleep (a message was handed over)", e)
                        return w.msg, w.prio
                    self.unreceive(w.msg, w.prio)
                raise
            if w.ready:
                return w.msg, w.prio
            if err:
                if self.cancel_receive(w):
                    return w.msg, w.prio
                raise SysError(ERESTARTSYS if t.sigpending or err != ETIMEDOUT else ETIMEDOUT)

    def timed_receive(self, t: TaskContext, nonblock: int, deadline_ns: int | None) -> tuple[bytes, int]:
        """The whole of mq_timedreceive's queue part for an in-process task."""
        r = self.receive(t, nonblock)
        if r.__class__ is Waiter:
            return self.wait_receive(t, r, deadline_ns)
        return r  # type: ignore[return-value]

    # -- notification ----------------------------------------------------------------------------------
    def register_notification(self, n: Notification) -> None:
        """mq_notify(sevp): EBUSY if anyone (the caller included) is registered."""
        with self.mu:
            if self.notification is not None:
                raise SysError(EBUSY)
            self.notification = n
            self.touch_attr()

    def remove_notification(self, tgid: int) -> bool:
        """mq_notify(NULL) and close: drop the registration if process ``tgid`` owns it."""
        with self.mu:
            n = self.notification
            if n is None or n.owner_tgid != tgid:
                return False
            self.notification = None
            n.removed()
            self.touch_attr()
            return True

    def touch_attr(self) -> None:
        """mq_notify/mq_getsetattr set atime and ctime (caller holds mu)."""
        ino = self.inode
        if ino is not None:
            ino.atime_ns = ino.ctime_ns = self.kernel.clock.now_ns()

    # -- introspection ---------------------------------------------------------------------------------
    def attr(self) -> tuple[int, int, int]:
        """(maxmsg, msgsize, curmsgs) for mq_getsetattr."""
        with self.mu:
            return self.maxmsg, self.msgsize, self.curmsgs

    def status(self) -> str:
        """The line ``read()`` of a queue descriptor returns (``mqueue_read_file``)."""
        with self.mu:
            n = self.notification
            notify = n.notify if n is not None else 0
            signo = n.signo if n is not None and n.notify == SIGEV_SIGNAL else 0
            pid = n.owner_tgid if n is not None else 0
            return f"QSIZE:{self.qsize:<10} NOTIFY:{notify:<5} SIGNO:{signo:<5} NOTIFY_PID:{pid:<6}\n"

    def state_locked(self) -> QueueState:
        """A copy of the message store and waiter counts (caller holds ``mu``; consistency checkers
        read the queue through this, never through its private fields)."""
        nodes: dict[int, tuple[bytes, ...]] = {}
        for b, slots in enumerate(self._nodes):
            if slots is not None:
                for i, node in enumerate(slots):
                    if node is not None:
                        nodes[(b << _BUCKET_SHIFT) | i] = (node,) if isinstance(node, bytes) else tuple(node)
        return QueueState(nodes, self._indexed_locked(),
                          self._top, self._empty, len(self._senders), len(self._receivers))

    def _indexed_locked(self) -> tuple[int, ...]:
        """The priorities the index holds, in its order: each bucket of ``_buckets`` then of ``_high``,
        expanded bit by bit; a word whose bucket is in neither list comes last, so an inconsistent
        index never reads as a sorted one."""
        words = self._words
        order = list(self._buckets) + self._high
        order += sorted({b for b, w in enumerate(words) if w} - set(order))
        out: list[int] = []
        for b in order:
            w = words[b] if b < len(words) else 0
            base = b << _BUCKET_SHIFT
            while w:
                low = w & -w
                out.append(base + low.bit_length() - 1)
                w ^= low
        return tuple(out)

    def readiness(self, mask: int) -> int:
        """``mqueue_poll_file``: readable while messages are queued, writable while not full."""
        ready = 0
        cur = self.curmsgs
        if cur:
            ready = _READABLE
        if cur < self.maxmsg:
            ready |= _WRITABLE
        return ready & mask

    def destroy(self) -> None:
        """The queue is freed (unlinked and closed): drop messages and any leftover registration."""
        with self.mu:
            n, self.notification = self.notification, None
            self._nodes.clear()
            self._words.clear()
            self._buckets.clear()
            self._high.clear()
            self._top = -1
            self._empty = None
            self._spare_slots = None
            self.curmsgs = 0
            self.qsize = 0
            if n is not None and n.sock is not None:
                sock, n.sock = n.sock, None
                sock.decref()


class QueueState(NamedTuple):
    """What :meth:`Queue.state_locked` returns: ``nodes`` (priority -> its FIFO of payloads, an empty
    one being the cached node), ``prios`` (the priorities with a node, ascending), ``top`` (the cached
    highest, -1 if none), ``cached_empty`` (the priority whose empty node is kept, or None) and the
    numbers of blocked senders and receivers."""

    nodes: dict[int, tuple[bytes, ...]]
    prios: tuple[int, ...]
    top: int
    cached_empty: int | None
    senders: int
    receivers: int


__all__ = ["Queue", "QueueState", "Waiter"]
