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
from typing import TYPE_CHECKING, Any, Final, NamedTuple

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

#: Most priorities held in ``Queue._high`` (the top of the index, outside the SortedList): it is a plain
#: list kept sorted by insertion, so this bounds that O(k) work; the lowest spills into the SortedList.
_HIGH_MAX: Final = 16


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
    ``curmsgs``, ``qsize``, ``_prios``, ``_high``, ``_top``, ``_by_prio``, ``_empty``, ``_spare``, ``_senders``,
    ``_receivers``, ``notification``, and the times of ``inode`` when set (``inode`` itself is set once by the
    filesystem, before the queue is shared).

    Messages live in ``_by_prio`` (priority -> FIFO deque of payloads: a node) and the priorities
    that have a node are indexed by ``_prios``, a sortedcontainers ``SortedList`` (Linux's rbtree of
    ``posix_msg_tree_node`` lists), and ``_high``, an ascending plain list of at most ``_HIGH_MAX``
    priorities, all above every element of ``_prios``: the top of the index. Each priority with a node
    is in exactly one of the two; ``_high`` is non-empty whenever any node exists, and ``_top`` caches
    its last element (Linux caches the rightmost node too), -1 when there is none. A new priority
    above ``_high[0]`` goes into ``_high`` (an append when it is the new top, the common case when a
    receiver drains the top) and a freed top is a list pop, refilled with one ``SortedList.pop`` when
    ``_high`` runs empty, so a priority that is sent above the rest and received next never touches
    the SortedList; otherwise the SortedList does an O(log n) add or pop of its last element, so
    per-operation cost stays flat however many distinct priorities are in use.

    The two hot methods take the lock with ``acquire``/``try``/``finally``/``release`` rather than
    ``with``: on CPython 3.11 that costs about half as much, a visible share of a send/receive.
    """

    __slots__ = ("mu", "kernel", "maxmsg", "msgsize", "curmsgs", "qsize", "_prios", "_high", "_top", "_by_prio",
                 "_senders", "_receivers", "_empty", "_spare", "poll", "notification", "inode")

    def __init__(self, kernel: KernelContext, maxmsg: int, msgsize: int) -> None:
        self.mu = threading.Lock()
        self.kernel = kernel
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.curmsgs = 0
        self.qsize = 0
        self._prios: SortedList = SortedList()
        self._high: list[int] = []  # the top of the index, ascending (see the class docstring)
        self._top = -1  # highest priority with a node (_high[-1]), -1 when there is none
        self._by_prio: dict[int, deque[bytes]] = {}
        self._senders: deque[Waiter] = deque()
        self._receivers: deque[Waiter] = deque()
        self._empty: int | None = None
        # The last freed node's (empty) deque, reused by the next new node (Linux's node_cache):
        # one at most, so a queue keeps no more than the memory it just used.
        self._spare: deque[bytes] | None = None
        self.poll = waiter.Queue()
        self.notification: Notification | None = None
        self.inode: Any = None

    # -- helpers (caller holds mu) ---------------------------------------------------------------------
    def _insert(self, data: bytes, prio: int) -> None:
        """``msg_insert``: append to the FIFO of ``prio``, creating the priority node if needed."""
        d = self._by_prio.get(prio)
        if d is None:
            d = self._new_node(prio)
        d.append(data)
        self.curmsgs += 1
        self.qsize += len(data)

    def _new_node(self, prio: int) -> deque[bytes]:
        """Create the (empty) FIFO of ``prio`` and index it."""
        d = self._spare
        if d is None:
            d = deque()
        else:
            self._spare = None
        self._by_prio[prio] = d
        high = self._high
        if not high or prio > high[-1]:
            # The new top (an empty _high means no node at all, so the SortedList is empty too).
            high.append(prio)
            self._top = prio
        elif prio > high[0]:
            insort(high, prio)
        else:
            self._prios.add(prio)
            return d
        if len(high) > _HIGH_MAX:
            self._prios.add(high.pop(0))  # above every SortedList element: it lands at the end
        return d

    def _drop_top(self) -> int:
        """Unindex the top priority (its node is already gone); return the new top, -1 if none."""
        high = self._high
        high.pop()
        if not high:
            prios = self._prios
            if prios:
                high.append(prios.pop())
            else:
                self._top = -1
                return -1
        top = self._top = high[-1]
        return top

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
                # node (kept while empty, see receive) and never touches the SortedList.
                d = self._by_prio.get(prio)
                if d is None:
                    d = self._new_node(prio)
                d.append(data)
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
            d = self._by_prio.get(prio)
            if d is None:
                d = self._new_node(prio)
            elif not d and prio == self._empty:
                self._empty = None  # the cached empty node is in use again
            d.appendleft(data)
            self.qsize += len(data)
            self.curmsgs += 1
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
            # msg_get, inlined (hot path). A priority node that runs empty is freed at once (it is
            # the top: the last of ``_high``; its deque is kept in ``_spare``) unless the queue is now empty: then, like
            # Linux's ``node_cache``, it stays as an empty deque named by ``_empty`` so a
            # send/receive ping-pong on one priority never touches the SortedList. There is at most
            # one empty node; it is freed when it surfaces on top of a non-empty queue.
            by_prio = self._by_prio
            prio = self._top
            d = by_prio[prio]
            if not d:
                self._empty = None
                del by_prio[prio]
                prio = self._drop_top()
                d = by_prio[prio]
            data = d.popleft()
            cur = self.curmsgs = self.curmsgs - 1
            self.qsize -= len(data)
            if not d:
                if cur:
                    del by_prio[prio]
                    self._spare = d
                    # _drop_top, inlined for the usual case: the next priority is still in _high.
                    high = self._high
                    high.pop()
                    if high:
                        self._top = high[-1]
                    else:
                        high.append(self._prios.pop())  # cur > 0: some node is left
                        self._top = high[-1]
                    if prio == self._empty:
                        self._empty = None  # it had been refilled since it was cached
                else:
                    cached = self._empty
                    if cached is not None and cached != prio:
                        # Every node is empty now: drop the older one. Only ``prio`` is left (the
                        # top, last of _high), so the index is rebuilt rather than searched.
                        del by_prio[cached]
                        prios = self._prios
                        if prios:
                            prios.clear()
                        del self._high[:-1]
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
        return QueueState({p: tuple(d) for p, d in self._by_prio.items()}, tuple(self._prios) + tuple(self._high),
                          self._top, self._empty, len(self._senders), len(self._receivers))

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
            self._by_prio.clear()
            self._prios.clear()
            self._high.clear()
            self._top = -1
            self._empty = None
            self._spare = None
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
