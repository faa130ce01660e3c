"""Commit/undo around SEND: a receiver killed between the dequeue and the reply loses no message.

Linux counterpart: ipc/msg.c ``do_msgrcv`` -- a receiver killed before it dequeued leaves the message
queued (killed.c checks that natively). gVisor counterpart: none (gVisor's sentry never replies to a
host kernel). The platform cannot tell "killed just before the dequeue" from "just after", so it
puts the message back whenever the reply fails and the message still fits (docs/platform-rules.md §3).

Three levels: the engine's undo (``Queue.unreceive`` through the handler's undo log, in process),
the platform's ``_dispatch`` with a listener stub whose SEND fails (no seccomp needed), and a real
program whose receivers are SIGKILLed right before their reply (``undo_driver``).
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from mqsentry.abi.linux.errno import E2BIG, ENOMSG
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_EXCEPT, MSG_NOERROR
from mqsentry.boot import Kernel
from mqsentry.kernel.platform import seccomp
from mqsentry.testsuite.platform.helpers import PYTHON_M, TIMEOUT
from mqsentry.tools.invariants import check_sysv_store

MSGGET, MSGSND, MSGRCV, MSGCTL = 68, 69, 70, 71


def _msg(mtype: int, text: bytes) -> bytes:
    return struct.pack("<q", mtype) + text


# -- the engine, in process ------------------------------------------------------------------------------
class Sentry:
    """An in-process task whose msgrcv records undo actions, as a platform task's does."""

    def __init__(self) -> None:
        self.k = Kernel(arch="amd64")
        self.t = self.k.new_task(uid=0, gid=0)
        self.undo: list[Callable[[], None]] = []
        self.t.undo = self.undo
        self.buf = self.t.mm.alloc(4096)
        self.id = self.t.syscall(MSGGET, IPC_PRIVATE, IPC_CREAT | 0o600)
        assert self.id >= 0

    def send(self, mtype: int, text: bytes) -> None:
        self.t.mm.write(self.buf, _msg(mtype, text))
        assert self.t.syscall(MSGSND, self.id, self.buf, len(text), 0) == 0

    def recv(self, msgtyp: int = 0, flags: int = IPC_NOWAIT, size: int = 64) -> tuple[int, bytes] | int:
        n = self.t.syscall(MSGRCV, self.id, self.buf, size, msgtyp & 0xFFFF_FFFF_FFFF_FFFF, flags)
        if n < 0:
            return -n
        raw = self.t.mm.read(self.buf, 8 + n)
        return struct.unpack_from("<q", raw)[0], raw[8:]

    def drain(self) -> list[tuple[int, bytes] | int]:
        out: list[tuple[int, bytes] | int] = []
        while True:
            r = self.recv()
            if r == ENOMSG:
                return out
            out.append(r)

    def queue(self) -> Any:
        return self.t.ipc_ns.msgqueues.by_idx[self.id & 0x7FFF]

    def check(self) -> None:
        q = self.queue()
        with q.mu:
            assert check_sysv_store(q, "queue") == []

    def undo_all(self) -> None:
        for action in reversed(self.undo):
            action()
        self.undo.clear()


def test_undo_of_the_oldest_message_restores_the_queue() -> None:
    s = Sentry()
    for i in range(3):
        s.send(1, b"m%d" % i)
    assert s.recv() == (1, b"m0")
    assert len(s.undo) == 1
    s.undo_all()
    s.check()
    q = s.queue()
    assert (q.store.qnum, q.store.cbytes) == (3, 6)
    assert s.drain() == [(1, b"m0"), (1, b"m1"), (1, b"m2")]


def test_undone_typed_receive_heads_its_type_and_the_queue() -> None:
    """The documented rule: the message goes back ahead of every queued message, and heads its
    type's FIFO (it was the oldest of its type when it left)."""
    s = Sentry()
    s.send(1, b"a1")
    s.send(2, b"b1")
    s.send(2, b"b2")
    s.send(3, b"c1")
    assert s.recv(2) == (2, b"b1")  # a hole in the middle, head and base still 0
    s.undo_all()
    s.check()
    assert s.recv(2) == (2, b"b1")  # still first of its type
    s.undo_all()
    assert s.recv(-2) == (1, b"a1")  # lowest type first, unchanged
    s.undo_all()
    assert s.recv(1, IPC_NOWAIT | MSG_EXCEPT) == (2, b"b1")  # MSG_EXCEPT sees the new order
    s.undo_all()
    s.check()
    assert s.drain() == [(2, b"b1"), (1, b"a1"), (2, b"b2"), (3, b"c1")]
    s.check()


def test_undo_into_an_emptied_queue_and_after_the_head_moved() -> None:
    s = Sentry()
    s.send(5, b"only")
    assert s.recv() == (5, b"only")  # the store starts over (empty)
    s.undo_all()
    s.check()
    s.send(6, b"later")
    assert s.recv() == (5, b"only")
    assert s.recv() == (6, b"later")
    assert s.undo and len(s.undo) == 2
    s.undo_all()  # newest first: "later" goes back, then "only" ahead of it
    s.check()
    assert s.drain() == [(5, b"only"), (6, b"later")]


def test_undo_restores_the_whole_message_after_msg_noerror() -> None:
    s = Sentry()
    s.send(1, b"0123456789")
    assert s.recv(0, IPC_NOWAIT | MSG_NOERROR, size=3) == (1, b"012")
    s.undo_all()
    s.check()
    assert s.queue().store.cbytes == 10
    assert s.recv() == (1, b"0123456789")


def test_nothing_is_recorded_for_failed_receives_or_msg_copy() -> None:
    s = Sentry()
    assert s.recv() == ENOMSG
    s.send(1, b"long text")
    assert s.recv(0, IPC_NOWAIT, size=2) == E2BIG
    assert s.recv(0, IPC_NOWAIT | MSG_COPY, size=64) == (1, b"long text")  # MSG_COPY, index 0
    assert s.undo == []


def test_undo_hands_over_to_a_waiting_receiver_like_msgsnd() -> None:
    s = Sentry()
    s.send(7, b"wanted")
    assert s.recv() == (7, b"wanted")
    other = s.k.new_task(uid=0, gid=0)
    obuf = other.mm.alloc(4096)
    got: list[int] = []
    th = threading.Thread(target=lambda: got.append(other.syscall(MSGRCV, s.id, obuf, 64, 7, 0)), daemon=True)
    th.start()
    deadline = time.monotonic() + 5
    while not s.queue().receivers and time.monotonic() < deadline:
        time.sleep(0.001)
    assert s.queue().receivers
    s.undo_all()
    th.join(5)
    assert got == [6]
    assert other.mm.read(obuf + 8, 6) == b"wanted"
    assert s.queue().store.qnum == 0
    s.check()


def test_undo_after_removal_drops_the_message() -> None:
    s = Sentry()
    s.send(1, b"x")
    assert s.recv() == (1, b"x")
    q = s.queue()
    assert s.t.syscall(MSGCTL, s.id, IPC_RMID, 0) == 0
    s.undo_all()  # no error, nothing resurrected
    assert q.store.qnum == 0 and not q.receivers


def test_in_process_tasks_record_nothing() -> None:
    k = Kernel(arch="amd64")
    t = k.new_task(uid=0, gid=0)
    buf = t.mm.alloc(4096)
    qid = t.syscall(MSGGET, IPC_PRIVATE, IPC_CREAT | 0o600)
    t.mm.write(buf, _msg(1, b"hi"))
    assert t.syscall(MSGSND, qid, buf, 2, 0) == 0
    assert t.syscall(MSGRCV, qid, buf, 64, 0, IPC_NOWAIT) == 2
    assert t.undo is None


# -- the platform's dispatch with a listener stub --------------------------------------------------------
class StubListener:
    """Replies are recorded; those to ids in ``fail`` fail as SEND does for a killed target."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.fail: set[int] = set()
        self.sent: dict[int, tuple[int, int]] = {}

    def send(self, nid: int, val: int = 0, error: int = 0, flags: int = 0) -> bool:
        self.sent[nid] = (val, error)
        return nid not in self.fail

    def id_valid(self, nid: int) -> bool:
        return True

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def plat(platform_ok: None) -> Any:
    from mqsentry.kernel.platform.loop import Platform

    p = Platform(Kernel(arch="amd64"), StubListener())  # type: ignore[arg-type]
    yield p
    p.close()


class Caller:
    """Issues notifications for this OS thread (the platform reaches our memory by our TID)."""

    def __init__(self, plat: Any) -> None:
        self.plat = plat
        self.tid = threading.get_native_id()
        self.buf = ctypes.create_string_buffer(256)
        self.addr = ctypes.addressof(self.buf)

    def call(self, nid: int, nr: int, *args: int, fail: bool = False) -> int:
        lst = self.plat.listener
        if fail:
            lst.fail.add(nid)
        self.plat._dispatch(SimpleNamespace(id=nid, pid=self.tid, nr=nr, arch=seccomp.AUDIT_ARCH_X86_64,
                                            args=(*args, 0, 0, 0, 0, 0, 0)[:6]))
        val, err = lst.sent[nid]
        return err if err else val

    def put(self, mtype: int, text: bytes) -> None:
        ctypes.memmove(self.buf, _msg(mtype, text), 8 + len(text))


def test_failed_send_puts_the_message_back(plat: Any) -> None:
    c = Caller(plat)
    qid = c.call(1, MSGGET, IPC_PRIVATE, IPC_CREAT | 0o600)
    assert qid >= 0
    c.put(3, b"precious")
    assert c.call(2, MSGSND, qid, c.addr, 8, 0) == 0
    # The handler dequeues and writes our buffer; the reply fails: the target "died".
    assert c.call(3, MSGRCV, qid, c.addr, 64, 0, IPC_NOWAIT, fail=True) == 8
    assert plat.stats["lost_replies"] == 1 and plat.stats["undone"] == 1
    task = plat.tasks()[c.tid]
    assert task.undo == []
    q = task.ipc_ns.msgqueues.by_idx[qid & 0x7FFF]
    assert q.store.qnum == 1
    ctypes.memset(c.buf, 0, 16)
    assert c.call(4, MSGRCV, qid, c.addr, 64, 0, IPC_NOWAIT) == 8
    assert c.buf.raw[:16] == _msg(3, b"precious")
    assert q.store.qnum == 0
    # A delivered reply commits: nothing is undone.
    assert plat.stats["undone"] == 1
    assert c.call(5, MSGRCV, qid, c.addr, 64, 0, IPC_NOWAIT) == -ENOMSG


# -- a real program ----------------------------------------------------------------------------------
EXPECTED = """\
1. a queued message taken by a receiver that dies before the reply
child killed by signal 9
next: type 77, 6 bytes, "first"
next: type 5, 6 bytes, "newer"
next: -1 ENOMSG
2. a message handed straight to a waiting receiver that dies before the reply
child killed by signal 9
next: type 77, 7 bytes, "second"
3. the undo hands the message to the next waiting receiver, as msgsnd would
B got 6 bytes "third"
B exited 0
A killed by signal 9
next: -1 ENOMSG
4. MSG_NOERROR: the whole message comes back, not the truncated copy
child killed by signal 9
next: type 77, 14 bytes, "not truncated"
qnum 0 cbytes 0
"""


def test_receivers_killed_before_their_reply_lose_no_message(cprog: Callable[[str], str]) -> None:
    """Sentry only: natively nothing kills a receiver between the dequeue and the return to user
    space. Every case's outcome is what Linux gives when the receiver is killed before it dequeued."""
    exe = cprog("undo")
    r = subprocess.run([*PYTHON_M, "mqsentry.testsuite.platform.undo_driver", exe], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout == EXPECTED, r.stderr
    assert "'undone': 4" in r.stderr and "internal error" not in r.stderr


# -- POSIX mq_timedreceive ---------------------------------------------------------------------------------
def _mq_task() -> tuple[Any, Any, int, int, int]:
    """A served-like task (undo log on) with a fresh queue: (task, nr, fd, buffer, prio buffer)."""
    k = Kernel()
    t = k.new_task()
    nr = k.syscall_table.number
    name = t.mm.alloc(64)
    t.mm.write(name, b"undo-q\0")
    fd = t.syscall(nr("mq_open"), name, 0o102, 0o600, 0)  # O_RDWR|O_CREAT, default attributes
    assert fd >= 0
    return t, nr, fd, t.mm.alloc(8192), t.mm.alloc(8)


def _mq_send(t: Any, nr: Any, fd: int, data: bytes, prio: int) -> None:
    p = t.mm.alloc(max(len(data), 1))
    t.mm.write(p, data)
    assert t.syscall(nr("mq_timedsend"), fd, p, len(data), prio, 0) == 0


def _mq_receive(t: Any, nr: Any, fd: int, buf: int, pbuf: int) -> tuple[bytes, int]:
    n = t.syscall(nr("mq_timedreceive"), fd, buf, 8192, pbuf, 0)
    assert n >= 0
    return t.mm.read(buf, n), struct.unpack("<I", t.mm.read(pbuf, 4))[0]


def test_mq_undo_puts_the_message_back_at_the_head_of_its_priority() -> None:
    t, nr, fd, buf, pbuf = _mq_task()
    for data, prio in ((b"a5", 5), (b"b5", 5), (b"c1", 1)):
        _mq_send(t, nr, fd, data, prio)
    t.undo = []
    assert _mq_receive(t, nr, fd, buf, pbuf) == (b"a5", 5)
    (undo,), t.undo = t.undo or [], None
    undo()  # the reply never reached the target
    got = [_mq_receive(t, nr, fd, buf, pbuf) for _ in range(3)]
    assert got == [(b"a5", 5), (b"b5", 5), (b"c1", 1)]


def test_mq_undo_into_an_emptied_queue_reuses_the_cached_node() -> None:
    t, nr, fd, buf, pbuf = _mq_task()
    _mq_send(t, nr, fd, b"only", 3)
    t.undo = []
    assert _mq_receive(t, nr, fd, buf, pbuf) == (b"only", 3)
    log, t.undo = t.undo or [], None
    log[0]()
    q = t.fd_table.files[fd].queue
    assert (q.curmsgs, q.qsize) == (1, 4)
    _mq_send(t, nr, fd, b"next", 3)
    assert [_mq_receive(t, nr, fd, buf, pbuf) for _ in range(2)] == [(b"only", 3), (b"next", 3)]


def test_mq_undo_hands_over_to_a_waiting_receiver() -> None:
    t, nr, fd, buf, pbuf = _mq_task()
    _mq_send(t, nr, fd, b"msg", 2)
    t.undo = []
    assert _mq_receive(t, nr, fd, buf, pbuf) == (b"msg", 2)
    (undo,), t.undo = t.undo or [], None
    waiter = t.clone_thread()
    wbuf, wpbuf = t.mm.alloc(8192), t.mm.alloc(8)
    result: list[tuple[bytes, int]] = []
    th = threading.Thread(target=lambda: result.append(_mq_receive(waiter, nr, fd, wbuf, wpbuf)))
    th.start()
    deadline = time.monotonic() + TIMEOUT
    while waiter.state != "S":
        assert time.monotonic() < deadline
        time.sleep(0.001)
    undo()
    th.join(TIMEOUT)
    assert result == [(b"msg", 2)]


def test_mq_in_process_receives_record_nothing() -> None:
    t, nr, fd, buf, pbuf = _mq_task()
    _mq_send(t, nr, fd, b"x", 0)
    _mq_receive(t, nr, fd, buf, pbuf)
    assert t.undo is None


def test_undo_into_a_refilled_queue_drops_the_message_as_a_late_kill_does() -> None:
    """A sender took the room the dequeue freed: that history is Linux's kill *after* the dequeue, so
    the message is lost; the queue never holds more than msg_qbytes allows."""
    s = Sentry()
    q = s.queue()
    with q.mu:
        q.qbytes = 8  # as IPC_SET would: room for two 4-byte messages
    s.send(1, b"old1")
    s.send(1, b"old2")
    assert s.recv() == (1, b"old1")
    s.send(1, b"new1")  # fits in the freed room
    s.undo_all()
    s.check()
    assert (q.store.qnum, q.store.cbytes) == (2, 8)
    assert s.drain() == [(1, b"old2"), (1, b"new1")]


def test_mq_undo_into_a_refilled_queue_drops_the_message_as_a_late_kill_does() -> None:
    """POSIX: curmsgs never exceeds mq_maxmsg (the default 10 here)."""
    t, nr, fd, buf, pbuf = _mq_task()
    for i in range(10):
        _mq_send(t, nr, fd, b"m%d" % i, 1)
    t.undo = []
    assert _mq_receive(t, nr, fd, buf, pbuf) == (b"m0", 1)
    (undo,), t.undo = t.undo or [], None
    _mq_send(t, nr, fd, b"new", 1)
    undo()
    q = t.fd_table.files[fd].queue
    assert (q.curmsgs, q.maxmsg) == (10, 10)
    got = [_mq_receive(t, nr, fd, buf, pbuf)[0] for _ in range(10)]
    assert got == [b"m%d" % i for i in range(1, 10)] + [b"new"]
