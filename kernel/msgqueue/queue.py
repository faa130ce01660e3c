"""One SysV message queue: send, receive, pipelining, wake-ups, IPC_SET and removal.

Linux counterpart: ``struct msg_queue`` and ipc/msg.c (``do_msgsnd``, ``do_msgrcv``,
``pipelined_send``, ``ss_wakeup``, ``expunge_all``, ``freeque``, ``msgctl_down``). gVisor counterpart:
pkg/sentry/kernel/msgqueue/msgqueue.go (``Queue``, ``Send``, ``Receive``), with Linux's behaviour where
gVisor differs: direct hand-off to a waiting receiver, FIFO sender wake-ups of only the senders that
now fit, IPC_SET waking waiters (D6, D8), and -ERESTARTNOHAND on interruption (D4); the codes are
defined in docs/gvisor-divergences.md.

Blocking follows gVisor's pattern with Linux's records: under ``Queue.mu`` try the operation; if it
would block, put a waiter record (:class:`Receiver` / :class:`Sender`) at the tail of the queue's
FIFO, drop the lock and sleep; the other side completes a receiver's record (a message, E2BIG or
EIDRM) or just pokes the record's ``waker``. The primitives ``*_locked`` never sleep, so an event
loop that parks real processes can drive them with any object that has ``wake()`` as the waker;
:meth:`Queue.send` and :meth:`Queue.receive` are the drivers for in-process tasks.
:meth:`Queue.unreceive` undoes a receive whose caller never got the message (the platform's
commit/undo around its reply, kernel/platform/loop.py).
"""

from __future__ import annotations

from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Final

from mqsentry.abi.linux.errno import E2BIG, EACCES, EAGAIN, EIDRM, EINTR, EINVAL, ENOMSG, ERESTARTNOHAND
from mqsentry.abi.linux.ipc import IPC_NOWAIT
from mqsentry.abi.linux.msgqueue import MSG_NOERROR, MTYPE
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ipc import Object, ipcperms
from mqsentry.kernel.ipc.object import S_IRUGO, S_IRWXUGO, S_IWUGO
from mqsentry.kernel.ktime import Clock, RealtimeClock
from mqsentry.kernel.msgqueue.store import SEARCH_ANY, SEARCH_EQUAL, MessageStore, testmsg
from mqsentry.kernel.waiter import Waker

if TYPE_CHECKING:
    from mqsentry.kernel.auth.credentials import Credentials
    from mqsentry.kernel.context import TaskContext

INT_MAX: Final = 0x7FFF_FFFF
MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF
_mtype_of: Final = MTYPE.unpack_from


class Receiver:
    """A receiver sleeping in msgrcv (``struct msg_receiver``).

    Immutable: ``waker``, ``tid``, ``msgtyp``, ``mode``, ``maxsize``. ``result`` is None while
    pending; the waking side sets it, under ``Queue.mu``, to the message (bytes) or an errno (int),
    then calls ``waker.wake()``. The sleeper may read it without the lock (Linux's lockless receive).
    """

    __slots__ = ("waker", "tid", "msgtyp", "mode", "maxsize", "result")

    def __init__(self, waker: Waker, tid: int, msgtyp: int, mode: int, maxsize: int) -> None:
        self.waker = waker
        self.tid = tid
        self.msgtyp = msgtyp
        self.mode = mode
        self.maxsize = maxsize
        self.result: bytes | int | None = None


class Sender:
    """A sender sleeping in msgsnd because its message does not fit (``struct msg_sender``).

    Immutable. Senders are only poked: they retry the whole send themselves.
    """

    __slots__ = ("waker", "msgsz")

    def __init__(self, waker: Waker, msgsz: int) -> None:
        self.waker = waker
        self.msgsz = msgsz


class Queue(Object):
    """A message queue (``struct msg_queue``); the identity part is :class:`mqsentry.kernel.ipc.Object`.

    Guarded by ``mu``: ``store`` (messages, ``qnum``, ``cbytes``), ``receivers`` and ``senders``
    (insertion-ordered dicts used as FIFOs with O(1) removal), ``stime``, ``rtime``, ``ctime``,
    ``qbytes``, ``lspid``, ``lrpid``, and the Object fields IPC_SET changes. Immutable: ``registry``
    plus Object's immutable fields.
    """

    __slots__ = ("registry", "store", "receivers", "senders", "stime", "rtime", "ctime", "qbytes", "lspid",
                 "lrpid")

    def __init__(self, registry: object, key: int, creds: Credentials, mode: int, qbytes: int,
                 now: int) -> None:
        super().__init__(key, creds, mode)
        self.registry = registry
        self.store = MessageStore()
        self.receivers: dict[Receiver, None] = {}
        self.senders: dict[Sender, None] = {}
        self.stime = 0
        self.rtime = 0
        self.ctime = now
        self.qbytes = qbytes
        self.lspid = 0
        self.lrpid = 0

    # -- non-blocking primitives (caller holds mu) ---------------------------------------------------
    def check_locked(self, creds: Credentials, flag: int) -> None:
        """The checks at the top of every msgsnd/msgrcv attempt: ``ipcperms(flag)`` -> EACCES, then
        removal -> EIDRM (``flag`` is S_IWUGO for send, S_IRUGO for receive)."""
        if not ipcperms(creds, self, flag):
            raise SysError(EACCES)
        if self.deleted:
            raise SysError(EIDRM)

    def fits_locked(self, msgsz: int) -> bool:
        """``msg_fits_inqueue``: msg_qbytes limits both the bytes and the number of messages."""
        s = self.store
        return msgsz + s.cbytes <= self.qbytes and s.qnum + 1 <= self.qbytes

    def commit_send_locked(self, blob: bytes, mtype: int, tgid: int, now: int) -> None:
        """The message fits: stamp the queue, hand it to a waiting receiver or append it."""
        self.lspid = tgid
        self.stime = now
        if not self.receivers or not self._pipelined_send_locked(blob, mtype, now):
            self.store.append(blob, mtype, len(blob) - 8)

    def _pipelined_send_locked(self, blob: bytes, mtype: int, now: int) -> bool:
        msgsz = len(blob) - 8
        receivers = self.receivers
        for r in list(receivers):
            if testmsg(mtype, r.msgtyp, r.mode):
                del receivers[r]
                if r.maxsize < msgsz:
                    r.result = E2BIG
                    r.waker.wake()
                    continue
                self.lrpid = r.tid  # Linux records the receiving *thread* here
                self.rtime = now
                r.result = blob
                r.waker.wake()
                return True
        return False

    def try_receive_locked(self, tgid: int, bufsz: int, msgtyp: int, mode: int, msgflg: int,
                           now: int) -> bytes | None:
        """Dequeue the selected message (None if there is none); E2BIG if it is longer than ``bufsz``
        and MSG_NOERROR is not set (the message stays queued)."""
        s = self.store
        if mode == SEARCH_ANY:
            if not s.qnum:
                return None
            seq = s.base + s.head
        else:
            seq = s.find(msgtyp, mode)
            if seq < 0:
                return None
        blob = s.slots[seq - s.base]
        assert blob is not None
        msgsz = len(blob) - 8
        if bufsz < msgsz and not msgflg & MSG_NOERROR:
            raise SysError(E2BIG)
        s.remove(seq, msgtyp if mode == SEARCH_EQUAL else _mtype_of(blob)[0], msgsz)
        self.rtime = now
        self.lrpid = tgid
        if self.senders:
            self.ss_wakeup_locked()
        return blob

    def unreceive(self, blob: bytes, now: int) -> None:
        """Undo a receive whose result never reached its receiver (the platform's reply failed: the
        target was killed; docs/platform-rules.md §3), as if the message had
        never left: a waiting receiver that wants it gets it exactly as from msgsnd, otherwise it is
        queued ahead of every message. ``blob`` is the whole message as received (before any
        MSG_NOERROR truncation). A removed queue drops it, as IPC_RMID would have.

        Not restored: ``rtime``/``lrpid`` keep the failed receive's stamp. If the message no longer
        fits (a sender filled the freed room meanwhile, or IPC_SET lowered ``qbytes``), it is dropped:
        a receiver killed after its dequeue loses the message on Linux, and that is the history
        consistent with what the others have seen; putting it back would show a queue over its
        limits, which Linux never does.
        """
        mtype = _mtype_of(blob)[0]
        with self.mu:
            if self.deleted:
                return
            if not self.receivers or not self._pipelined_send_locked(blob, mtype, now):
                if self.fits_locked(len(blob) - 8):
                    self.store.push_front(blob, mtype, len(blob) - 8)

    def copy_locked(self, index: int, bufsz: int, msgflg: int, copy_cap: int) -> bytes:
        """MSG_COPY: the ``index``-th message, left queued and with no counter or time changed.
        ``copy_cap`` is the scratch size ``min(bufsz, msgmax)`` that Linux copies into."""
        blob = self.store.at_index(index)
        if blob is None:
            raise SysError(ENOMSG)
        size = len(blob) - 8
        if bufsz < size and not msgflg & MSG_NOERROR:
            raise SysError(E2BIG)
        if size > copy_cap:
            raise SysError(EINVAL)  # copy_msg: the scratch message is smaller
        return blob

    def add_receiver_locked(self, waker: Waker, tid: int, msgtyp: int, mode: int, maxsize: int) -> Receiver:
        r = Receiver(waker, tid, msgtyp, mode, maxsize)
        self.receivers[r] = None
        return r

    def add_sender_locked(self, waker: Waker, msgsz: int) -> Sender:
        w = Sender(waker, msgsz)
        self.senders[w] = None
        return w

    def cancel_locked(self, rec: Receiver | Sender) -> None:
        """Take a waiter record off its FIFO (no-op if a waker already took it off)."""
        if isinstance(rec, Receiver):
            self.receivers.pop(rec, None)
        else:
            self.senders.pop(rec, None)  # narrowed to Sender by the isinstance test above

    def ss_wakeup_locked(self) -> None:
        """``ss_wakeup``: poke, in FIFO order, the senders whose message now fits; move the others to
        the tail (they stay queued, in their order, behind the woken ones)."""
        senders = self.senders
        for w in list(senders):
            if self.fits_locked(w.msgsz):
                w.waker.wake()
            else:
                del senders[w]
                senders[w] = None

    def set_locked(self, uid: int, gid: int, mode: int, qbytes: int, now: int) -> None:
        """The IPC_SET update after its checks: owner, mode bits, msg_qbytes, ctime; receivers
        re-check (they may have lost permission) and senders that now fit retry."""
        self.uid = uid
        self.gid = gid
        self.mode = (self.mode & ~S_IRWXUGO) | (mode & S_IRWXUGO)
        self.qbytes = qbytes
        self.ctime = now
        for r in self.receivers:
            r.waker.wake()  # expunge_all(-EAGAIN): result stays pending, the sleeper loops
        if self.senders:
            self.ss_wakeup_locked()

    def destroy_locked(self) -> None:
        """``freeque``'s waking part: waiting receivers get EIDRM, every sender is poked (and finds
        the queue deleted), messages are dropped. The caller unpublishes the queue."""
        receivers, self.receivers = self.receivers, {}
        for r in receivers:
            r.result = EIDRM
            r.waker.wake()
        senders, self.senders = self.senders, {}
        for w in senders:
            w.waker.wake()
        self.store = MessageStore()

    # -- drivers for in-process tasks ---------------------------------------------------------------
    # send() and receive() are do_msgsnd's and do_msgrcv's locked parts. Each is split in two: a
    # straight-line fast path for the common case (the caller owns the queue with the permission, the
    # message fits / one is there, nobody to hand over to), which takes the caller's euid, tgid and
    # clock as plain values, and the *_slow loop, which is the reference implementation of Linux's
    # loop and re-does every check itself. The syscall handlers call the two halves directly with
    # values read from the concrete Task (compiled, those are field reads; through the TaskContext
    # protocol each would be a generic attribute lookup: measured, a tenth of a compiled pair). The
    # fast paths take ``mu`` with acquire/try/finally/release: on CPython 3.11 a ``with`` costs
    # twice as much, a visible share of a send or receive. The usual real-time clock is read
    # without a method call (the host may replace the clock at any time, so its class is checked).
    def send(self, t: TaskContext, blob: bytes, mtype: int, nowait: int) -> None:
        """The locked part of ``do_msgsnd``: permission, removal, fit, sleep, send."""
        if not self.send_fast(t.creds.euid, t.tg.tgid, t.kernel.clock, blob, mtype):
            self.send_slow(t, blob, mtype, nowait)

    def send_fast(self, euid: int, tgid: int, clock: Clock, blob: bytes, mtype: int) -> bool:
        """:meth:`send`'s common case in one lock hold: True if the message was queued; False, with
        nothing changed, when anything needs the full loop (:meth:`send_slow`)."""
        msgsz = len(blob) - 8
        mu = self.mu
        mu.acquire()
        try:
            if (euid == self.uid or euid == self.cuid) and self.mode & 0o200 and not self.deleted \
                    and not self.receivers:
                s = self.store
                if msgsz + s.cbytes <= self.qbytes and s.qnum < self.qbytes:
                    self.lspid = tgid
                    self.stime = (_time_ns() // 1_000_000_000 if type(clock) is RealtimeClock
                                  else clock.now_s())
                    s.append(blob, mtype, msgsz)
                    return True
            return False
        finally:
            mu.release()

    def send_slow(self, t: TaskContext, blob: bytes, mtype: int, nowait: int) -> None:
        """:meth:`send`'s complete loop (``do_msgsnd`` from ``ipc_lock_object`` on)."""
        with self.mu:
            self._send_slow_locked(t, blob, mtype, len(blob) - 8, nowait)

    def _send_slow_locked(self, t: TaskContext, blob: bytes, mtype: int, msgsz: int, nowait: int) -> None:
        mu = self.mu
        while True:
            self.check_locked(t.creds, S_IWUGO)
            if self.fits_locked(msgsz):
                break
            if nowait:
                raise SysError(EAGAIN)
            w = Sender(t, msgsz)
            self.senders[w] = None
            t.clear_wakeup()  # any earlier, stale wake-up must not end this sleep
            mu.release()
            try:
                ret = t.block()
            finally:
                mu.acquire()
                # Whatever happened (even a host exception out of the sleep), the record goes.
                self.senders.pop(w, None)
            if self.deleted:
                raise SysError(EIDRM)
            if ret == EINTR or t.sigpending:
                raise SysError(ERESTARTNOHAND)
        self.commit_send_locked(blob, mtype, t.tg.tgid, t.kernel.clock.now_s())

    def receive(self, t: TaskContext, bufsz: int, msgtyp: int, mode: int, msgflg: int) -> bytes:
        """The locked part of ``do_msgrcv`` without MSG_COPY: returns the dequeued message."""
        blob = self.receive_fast(t.creds.euid, t.tg.tgid, t.kernel.clock, bufsz, msgtyp, mode, msgflg)
        if blob is None:
            blob = self.receive_slow(t, bufsz, msgtyp, mode, msgflg)
        return blob

    def receive_fast(self, euid: int, tgid: int, clock: Clock, bufsz: int, msgtyp: int, mode: int,
                     msgflg: int) -> bytes | None:
        """:meth:`receive`'s common case in one lock hold: the dequeued message, or None, with nothing
        changed, when anything needs the full loop (:meth:`receive_slow`)."""
        mu = self.mu
        mu.acquire()
        try:
            s = self.store
            if (euid == self.uid or euid == self.cuid) and self.mode & 0o400 and s.qnum and not self.deleted:
                seq = s.base + s.head if mode == SEARCH_ANY else s.find(msgtyp, mode)
                if seq >= 0:
                    blob: bytes = s.slots[seq - s.base]  # type: ignore[assignment]  # a live seq's slot is set
                    msgsz = len(blob) - 8
                    if bufsz >= msgsz or msgflg & MSG_NOERROR:
                        s.remove(seq, msgtyp if mode == SEARCH_EQUAL else _mtype_of(blob)[0], msgsz)
                        self.rtime = (_time_ns() // 1_000_000_000 if type(clock) is RealtimeClock
                                      else clock.now_s())
                        self.lrpid = tgid
                        if self.senders:
                            self.ss_wakeup_locked()
                        return blob
            return None
        finally:
            mu.release()

    def receive_slow(self, t: TaskContext, bufsz: int, msgtyp: int, mode: int, msgflg: int) -> bytes:
        """:meth:`receive`'s complete loop (``do_msgrcv`` from ``ipc_lock_object`` on, sleeps included)."""
        mu = self.mu
        while True:
            with mu:
                self.check_locked(t.creds, S_IRUGO)
                blob = self.try_receive_locked(t.tg.tgid, bufsz, msgtyp, mode, msgflg, t.kernel.clock.now_s())
                if blob is not None:
                    return blob
                if msgflg & IPC_NOWAIT:
                    raise SysError(ENOMSG)
                r = Receiver(t, t.tid, msgtyp, mode, INT_MAX if msgflg & MSG_NOERROR else bufsz)
                self.receivers[r] = None
                t.clear_wakeup()
            try:
                ret = t.block()
            except BaseException as e:
                self._receive_sleep_failed(t, r, e)
                raise
            res = r.result  # lockless: a completed record is never changed again
            if res is None:
                with mu:
                    res = r.result
                    if res is None:
                        del self.receivers[r]
                        if ret == EINTR or t.sigpending:
                            raise SysError(ERESTARTNOHAND)
                if res is None:
                    continue  # woken to re-check (IPC_SET) or spuriously
            if isinstance(res, int):
                raise SysError(res)
            return res

    def _receive_sleep_failed(self, t: TaskContext, r: Receiver, e: BaseException) -> None:
        """The sleep of a blocked msgrcv raised (a host exception or a sentry bug): withdraw the
        record so no sender hands a message to it; a message already handed over goes back to the
        head of the queue (:meth:`unreceive`), so it is not lost."""
        with self.mu:
            self.receivers.pop(r, None)
            res = r.result
        if type(res) is bytes:
            self.unreceive(res, t.kernel.clock.now_s())

    def copy(self, t: TaskContext, index: int, bufsz: int, msgflg: int, copy_cap: int) -> bytes:
        """``do_msgrcv`` with MSG_COPY (always IPC_NOWAIT)."""
        with self.mu:
            self.check_locked(t.creds, S_IRUGO)
            return self.copy_locked(index, bufsz, msgflg, copy_cap)

    def stat_locked(self) -> tuple[int, ...]:
        """The ``msqid64_ds`` field values (MSQID64_DS order)."""
        s = self.store
        return (self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode, self.seq & 0xFFFF, 0, 0,
                self.stime, self.rtime, self.ctime, s.cbytes, s.qnum, self.qbytes, self.lspid, self.lrpid, 0, 0)
