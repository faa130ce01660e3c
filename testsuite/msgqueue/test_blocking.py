"""Blocking msgsnd/msgrcv: wake-ups, pipelined sends, FIFO waiters, EIDRM on removal, IPC_SET wake-ups,
signals (EINTR even with SA_RESTART; transparent restart across SIGSTOP/SIGCONT).

Linux counterpart: ipc/msg.c do_msgsnd/do_msgrcv/pipelined_send/ss_wakeup/expunge_all/freeque, the
-ERESTARTNOHAND handling in arch/x86/kernel/signal.c. gVisor counterpart:
test/syscalls/linux/msgqueue.cc MsgRcvBlocking, MsgRcvTypeBlocking, MsgSndBlocking,
MsgSndRmWhileBlocking, MsgRcvRmWhileBlocking, MsgOpGeneral, InterruptRecv, InterruptSend.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Any

import pytest

from mqsentry.abi.linux.errno import E2BIG, EACCES, EIDRM, EINTR
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT
from mqsentry.abi.linux.msgqueue import MSG_EXCEPT, MSG_NOERROR, MSGMAX
from mqsentry.abi.linux.signal import SA_RESTART, SA_SIGINFO, SI_USER, SIGALRM, SIGCONT, SIGKILL, SIGSTOP
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.msgqueue import KEY, MSG_SIZE, TEXT, fill, new_queue, text
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import WAIT, background, errno_of, start_blocked, wait_blocked, wait_until

Future = concurrent.futures.Future




def first_done(*futs: Future[Any]) -> None:
    wait_until(lambda: any(f.done() for f in futs), what="a background call to finish")


# -- gVisor blocking tests --------------------------------------------------------------------------------

def test_rcv_blocking(proc: Proc) -> None:
    q = new_queue(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgrcv(q, MSG_SIZE + 1))
    proc.msgsnd(q, 1, TEXT)
    assert fut.result(WAIT) == (1, TEXT)


def test_rcv_type_blocking(proc: Proc) -> None:
    q = new_queue(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgrcv(q, MSG_SIZE + 1, 2))
    for _ in range(4):
        proc.msgsnd(q, 1, TEXT)
    assert not fut.done()
    proc.msgsnd(q, 2, text(2))
    assert fut.result(WAIT) == (2, text(2))
    assert proc.msgstat(q).qnum == 4


def test_snd_blocking(proc: Proc) -> None:
    q = new_queue(proc)
    fill(proc, q)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgsnd(q, 1, b"z" * MSGMAX))
    assert proc.msgrcv(q, MSGMAX) == (1, b"x" * MSGMAX)
    assert fut.result(WAIT) is None
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes) == (2, 2 * MSGMAX)


def test_snd_rm_while_blocking(proc: Proc) -> None:
    q = new_queue(proc)
    fill(proc, q)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgsnd(q, 1, b"z" * MSGMAX))
    proc.msgctl_rmid(q)
    assert errno_of(fut) == EIDRM  # Linux: exactly EIDRM, never EINVAL


def test_rcv_rm_while_blocking(proc: Proc) -> None:
    q = new_queue(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgrcv(q, 1, 2))
    proc.msgctl_rmid(q)
    assert errno_of(fut) == EIDRM


def test_op_general(proc: Proc) -> None:
    q = new_queue(proc)
    types = [1, 2, 3, 4, 5] * 2
    receivers = [proc.thread() for _ in types]
    senders = [proc.thread() for _ in types]
    rfuts = [background(functools.partial(r.msgrcv, q, MSG_SIZE + 1, t)) for r, t in zip(receivers, types)]
    sfuts = [background(functools.partial(s.msgsnd, q, t, text(t))) for s, t in zip(senders, types)]
    for f in sfuts:
        assert f.result(WAIT) is None
    for f, t in zip(rfuts, types):
        assert f.result(WAIT) == (t, text(t))
    assert proc.msgstat(q).qnum == 0


@pytest.mark.parametrize("restart", [False, True], ids=["no_restart", "sa_restart"])
def test_interrupt_recv(proc: Proc, restart: bool) -> None:
    q = new_queue(proc)
    # Only the blocked thread may take the process-directed signal.
    proc.block_signals(SIGALRM)
    proc.sigaction(SIGALRM, flags=SA_SIGINFO | (SA_RESTART if restart else 0))
    t = proc.thread()
    t.unblock_signals(SIGALRM)
    fut = start_blocked(t, lambda: t.msgrcv(q, 64))
    proc.kill(proc.pid, SIGALRM)
    # -ERESTARTNOHAND: EINTR whenever a handler runs, SA_RESTART or not.
    assert errno_of(fut) == EINTR
    wait_until(lambda: any(d.signo == SIGALRM for d in proc.deliveries()), what="the SIGALRM handler")
    d = next(d for d in proc.deliveries() if d.signo == SIGALRM)
    assert (d.code, d.pid) == (SI_USER, proc.pid)
    assert proc.msgstat(q).qnum == 0


@pytest.mark.parametrize("restart", [False, True], ids=["no_restart", "sa_restart"])
def test_interrupt_send(proc: Proc, restart: bool) -> None:
    q = new_queue(proc)
    fill(proc, q)
    proc.block_signals(SIGALRM)
    proc.sigaction(SIGALRM, flags=SA_SIGINFO | (SA_RESTART if restart else 0))
    t = proc.thread()
    t.unblock_signals(SIGALRM)
    fut = start_blocked(t, lambda: t.msgsnd(q, 1, b"z" * MSGMAX))
    proc.kill(proc.pid, SIGALRM)
    assert errno_of(fut) == EINTR
    wait_until(lambda: any(d.signo == SIGALRM for d in proc.deliveries()), what="the SIGALRM handler")
    assert proc.msgstat(q).qnum == 2  # the interrupted message was not sent


# -- signals without a handler --------------------------------------------------------------------------

def test_rcv_restarts_across_sigstop_sigcont(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    child = proc.fork()
    fut = start_blocked(child, lambda: child.msgrcv(q, 64))
    proc.kill(child.pid, SIGSTOP)
    wait_until(lambda: not child.is_blocked() or fut.done(), what="the child to stop")
    assert not fut.done()
    proc.kill(child.pid, SIGCONT)
    wait_until(lambda: child.is_blocked() or fut.done(), what="the child to sleep again")
    assert not fut.done()  # restarted transparently, no EINTR
    proc.msgsnd(q, 5, b"after")
    assert fut.result(WAIT) == (5, b"after")
    assert proc.msgstat(q).lrpid == child.pid


def test_snd_restarts_across_sigstop_sigcont(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    fill(proc, q)
    child = proc.fork()
    fut = start_blocked(child, lambda: child.msgsnd(q, 3, b"late"))
    proc.kill(child.pid, SIGSTOP)
    wait_until(lambda: not child.is_blocked() or fut.done(), what="the child to stop")
    proc.kill(child.pid, SIGCONT)
    wait_until(lambda: child.is_blocked() or fut.done(), what="the child to sleep again")
    assert not fut.done()
    proc.msgrcv(q, MSGMAX)
    assert fut.result(WAIT) is None
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.lspid) == (2, child.pid)


# -- pipelined sends and receiver order ---------------------------------------------------------------------

def test_pipelined_lrpid_is_receiver_thread(proc: Proc) -> None:
    q = new_queue(proc)
    t = proc.thread()
    assert t.tid != proc.pid
    fut = start_blocked(t, lambda: t.msgrcv(q, 64))
    proc.msgsnd(q, 1, b"hand-over")
    assert fut.result(WAIT) == (1, b"hand-over")
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes, ds.lspid, ds.lrpid) == (0, 0, proc.pid, t.tid)
    assert ds.rtime > 0 and ds.stime > 0


def test_direct_receive_lrpid_is_tgid(proc: Proc) -> None:
    q = new_queue(proc)
    sender = proc.thread()
    sender.msgsnd(q, 1, b"queued")
    assert proc.msgstat(q).lspid == proc.pid  # lspid is the sender's thread group id
    receiver = proc.thread()
    assert receiver.msgrcv(q, 64) == (1, b"queued")
    assert proc.msgstat(q).lrpid == proc.pid  # a queued message: the receiver's thread group id


def test_pipelined_e2big_goes_to_next_waiter(proc: Proc) -> None:
    q = new_queue(proc)
    small, big = proc.thread(), proc.thread()
    f_small = start_blocked(small, lambda: small.msgrcv(q, MSG_SIZE - 1))
    f_big = start_blocked(big, lambda: big.msgrcv(q, MSG_SIZE))
    proc.msgsnd(q, 1, TEXT)
    assert errno_of(f_small) == E2BIG
    assert f_big.result(WAIT) == (1, TEXT)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.lrpid) == (0, big.tid)


def test_pipelined_e2big_then_queued(proc: Proc) -> None:
    q = new_queue(proc)
    small = proc.thread()
    f_small = start_blocked(small, lambda: small.msgrcv(q, MSG_SIZE - 1))
    proc.msgsnd(q, 1, TEXT)
    assert errno_of(f_small) == E2BIG
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes, ds.lrpid, ds.rtime) == (1, MSG_SIZE, 0, 0)
    assert proc.msgrcv(q, MSG_SIZE) == (1, TEXT)


def test_pipelined_noerror_truncates(proc: Proc) -> None:
    q = new_queue(proc)
    small, big = proc.thread(), proc.thread()
    f_small = start_blocked(small, lambda: small.msgrcv(q, 4, 0, MSG_NOERROR))
    f_big = start_blocked(big, lambda: big.msgrcv(q, MSG_SIZE))
    proc.msgsnd(q, 1, TEXT)
    assert f_small.result(WAIT) == (1, TEXT[:4])
    assert not f_big.done()
    proc.msgsnd(q, 2, text(2))
    assert f_big.result(WAIT) == (2, text(2))


def test_blocked_receivers_are_fifo(proc: Proc) -> None:
    q = new_queue(proc)
    r1, r2 = proc.thread(), proc.thread()
    f1 = start_blocked(r1, lambda: r1.msgrcv(q, 64))
    f2 = start_blocked(r2, lambda: r2.msgrcv(q, 64))
    proc.msgsnd(q, 1, b"first")
    first_done(f1, f2)
    assert f1.done() and not f2.done()
    assert f1.result() == (1, b"first")
    proc.msgsnd(q, 1, b"second")
    assert f2.result(WAIT) == (1, b"second")


def test_blocked_receivers_match_by_type(proc: Proc) -> None:
    q = new_queue(proc)
    want2, want1, want_le3 = proc.thread(), proc.thread(), proc.thread()
    f2 = start_blocked(want2, lambda: want2.msgrcv(q, 64, 2))
    f1 = start_blocked(want1, lambda: want1.msgrcv(q, 64, 1))
    f3 = start_blocked(want_le3, lambda: want_le3.msgrcv(q, 64, -3))
    proc.msgsnd(q, 5, b"nobody")  # no waiter matches: queued
    proc.msgsnd(q, 1, b"one")  # the first matching waiter in FIFO order is want1
    assert f1.result(WAIT) == (1, b"one")
    assert not f2.done() and not f3.done()
    proc.msgsnd(q, 3, b"three")
    assert f3.result(WAIT) == (3, b"three")
    proc.msgsnd(q, 2, b"two")
    assert f2.result(WAIT) == (2, b"two")
    assert proc.msgrcv(q, 64, 0, IPC_NOWAIT) == (5, b"nobody")


# -- sender wake-ups ---------------------------------------------------------------------------------------

def test_ipc_set_raising_qbytes_wakes_sender(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=100)
    proc.msgsnd(q, 1, b"x" * 100)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgsnd(q, 2, b"y" * 50))
    proc.msgctl_set(q, qbytes=200)
    assert fut.result(WAIT) is None
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes) == (2, 150)


def test_sender_that_does_not_fit_keeps_waiting(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=100)
    proc.msgsnd(q, 1, b"a" * 50)
    proc.msgsnd(q, 2, b"b" * 45)
    s1, s2 = proc.thread(), proc.thread()
    f1 = start_blocked(s1, lambda: s1.msgsnd(q, 3, b"c" * 60))
    f2 = start_blocked(s2, lambda: s2.msgsnd(q, 4, b"d" * 10))
    assert proc.msgrcv(q, 64, 1) == (1, b"a" * 50)  # 55 bytes free: only s2 fits
    assert f2.result(WAIT) is None
    assert not f1.done()
    wait_blocked(s1)
    assert proc.msgrcv(q, 64, 2) == (2, b"b" * 45)  # 90 bytes free: s1 fits now
    assert f1.result(WAIT) is None
    assert [proc.msgrcv(q, 64, 0, IPC_NOWAIT)[0] for _ in range(2)] == [4, 3]


def test_count_limit_blocks_and_wakes_sender(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=2)
    proc.msgsnd(q, 1, b"")
    proc.msgsnd(q, 1, b"")
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgsnd(q, 2, b""))  # 0 bytes, but the count is at qbytes
    proc.msgrcv(q, 0)
    assert fut.result(WAIT) is None
    assert proc.msgstat(q).qnum == 2


def test_ipc_set_rechecks_blocked_receiver_permission(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o666)
    other = Proc(target.spawn(uid=1000, gid=1000))
    fut = start_blocked(other, lambda: other.msgrcv(q, 64))
    proc.msgctl_set(q, mode=0o600)
    assert errno_of(fut) == EACCES


def test_ipc_set_keeps_permitted_receiver_waiting(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o666)
    other = Proc(target.spawn(uid=1000, gid=1000))
    fut = start_blocked(other, lambda: other.msgrcv(q, 64))
    proc.msgctl_set(q, mode=0o644)
    wait_blocked(other)
    assert not fut.done()
    proc.msgsnd(q, 1, b"still here")
    assert fut.result(WAIT) == (1, b"still here")



# -- waiters that went away ------------------------------------------------------------------------------

def test_interrupted_receiver_leaves_the_wait_queue(proc: Proc) -> None:
    q = new_queue(proc)
    proc.block_signals(SIGALRM)
    proc.sigaction(SIGALRM, flags=SA_SIGINFO)
    t = proc.thread()
    t.unblock_signals(SIGALRM)
    fut = start_blocked(t, lambda: t.msgrcv(q, 64))
    proc.kill(proc.pid, SIGALRM)
    assert errno_of(fut) == EINTR
    proc.msgsnd(q, 1, b"for the queue")  # nobody waits any more: the message is queued
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.lrpid, ds.rtime) == (1, 0, 0)


def test_killed_receiver_leaves_the_wait_queue(proc: Proc) -> None:
    q = new_queue(proc)
    child = proc.fork()
    fut = start_blocked(child, lambda: child.msgrcv(q, 64))
    proc.kill(child.pid, SIGKILL)
    wait_until(fut.done, what="the killed child's call to end")
    proc.msgsnd(q, 1, b"for the queue")
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.lrpid) == (1, 0)


def test_killed_sender_sends_nothing(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=10)
    proc.msgsnd(q, 1, b"x" * 10)
    child = proc.fork()
    fut = start_blocked(child, lambda: child.msgsnd(q, 2, b"dead"))
    proc.kill(child.pid, SIGKILL)
    wait_until(fut.done, what="the killed child's call to end")
    assert proc.msgrcv(q, 64) == (1, b"x" * 10)
    proc.msgsnd(q, 3, b"y" * 10, IPC_NOWAIT)  # the room is still free
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.lspid) == (1, proc.pid)


def test_blocked_signal_does_not_interrupt(proc: Proc) -> None:
    q = new_queue(proc)
    proc.block_signals(SIGALRM)
    proc.sigaction(SIGALRM, flags=SA_SIGINFO)
    t = proc.thread()  # inherits the blocked mask
    fut = start_blocked(t, lambda: t.msgrcv(q, 64))
    proc.kill(proc.pid, SIGALRM)  # stays pending: every thread blocks it
    wait_blocked(t)
    assert not fut.done()
    proc.msgsnd(q, 1, b"still waiting")
    assert fut.result(WAIT) == (1, b"still waiting")
    assert proc.deliveries() == []


def test_blocked_msg_except_receiver(proc: Proc) -> None:
    q = new_queue(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.msgrcv(q, 64, 1, MSG_EXCEPT))
    proc.msgsnd(q, 1, b"excluded")
    wait_blocked(t)
    assert not fut.done()
    proc.msgsnd(q, 4, b"taken")
    assert fut.result(WAIT) == (4, b"taken")
    assert proc.msgrcv(q, 64, 0, IPC_NOWAIT) == (1, b"excluded")


def test_rmid_wakes_every_waiter_with_eidrm(proc: Proc) -> None:
    q = new_queue(proc)
    fill(proc, q)  # type-1 messages only
    r1, r2, s = proc.thread(), proc.thread(), proc.thread()
    f1 = start_blocked(r1, lambda: r1.msgrcv(q, 64, 9))
    f2 = start_blocked(r2, lambda: r2.msgrcv(q, 64, 9))
    f3 = start_blocked(s, lambda: s.msgsnd(q, 9, b"z" * MSGMAX))
    proc.msgctl_rmid(q)
    assert [errno_of(f) for f in (f1, f2, f3)] == [EIDRM, EIDRM, EIDRM]


def test_blocked_sender_rechecks_permission_when_woken(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o666)
    proc.msgctl_set(q, qbytes=10)
    proc.msgsnd(q, 1, b"x" * 10)
    other = Proc(target.spawn(uid=1000, gid=1000))
    fut = start_blocked(other, lambda: other.msgsnd(q, 2, b"y" * 10))
    # Taking write permission away does not wake a sender whose message still does not fit...
    proc.msgctl_set(q, mode=0o600)
    wait_blocked(other)
    assert not fut.done()
    # ...but once room appears it wakes, re-checks permissions and fails.
    proc.msgrcv(q, 64)
    assert errno_of(fut) == EACCES
    assert proc.msgstat(q).qnum == 0
