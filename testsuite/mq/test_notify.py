"""mq_notify: validation order, registration ownership (EBUSY, NULL by a non-owner), when a
notification fires (empty -> non-empty insert with no waiting receiver, one shot), what it carries
(SI_MESGQ siginfo with the sender's pid/uid, the SIGEV_THREAD netlink cookie), and when a registration
is dropped (owner's mq_notify(NULL), owner's close of any descriptor of the queue, owner's exit).

Linux counterpart: ipc/mqueue.c do_mq_notify/__do_notify/remove_notification/mqueue_flush_file,
net/netlink/af_netlink.c netlink_getsockbyfilp/netlink_attachskb. gVisor counterpart: the refs/pull/6458
mq.cc ReadWithNotify, NotifyNone, NotifySignal, NotifyBusy, RemoveNotification, NotifyNotEmpty,
NotifyOnce, NotifyInvalid.
"""

from __future__ import annotations

import time

from mqsentry.abi.linux.errno import EAGAIN, EBADF, EBUSY, EFAULT, EINTR, EINVAL, ENOTSOCK
from mqsentry.abi.linux.file import O_RDONLY, O_RDWR, O_WRONLY
from mqsentry.abi.linux.mqueue import NOTIFY_COOKIE_LEN, NOTIFY_REMOVED, NOTIFY_WOKENUP
from mqsentry.abi.linux.signal import SA_SIGINFO, SI_MESGQ, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.libc.posix import MSG_DONTWAIT
from mqsentry.testsuite.mq import MSG, MSGSIZE, NAME, RTSIG, SIG, create, status, text, user
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import WAIT, errno_of, start_blocked, wait_until

NONE = {"notify": SIGEV_NONE}


def signal_event(signo: int = SIG, value: int = 0) -> dict[str, int]:
    return {"notify": SIGEV_SIGNAL, "signo": signo, "value": value}


def registered(proc: Proc, fd: int, notify: int = SIGEV_NONE, signo: int = 0, pid: int | None = None) -> bool:
    """Whether the status line shows the registration (pid defaults to ``proc``'s)."""
    qsize = int(text(proc, fd).split()[0].split(b":")[1])
    return text(proc, fd) == status(qsize, notify, signo, proc.pid if pid is None else pid)


def unregistered(proc: Proc, fd: int) -> bool:
    return text(proc, fd).split()[1:] == status().split()[1:]


def settle(*procs: Proc) -> None:
    """Give already-queued signals a chance to be handled before asserting that none came."""
    time.sleep(0.05)
    for p in procs:
        p.getpid()


# -- gVisor (unmerged stack) --------------------------------------------------------------------------------------


def test_read_with_notify(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"Message.", 1)
    proc.mq_notify(fd, NONE)
    assert proc.read_fd(fd, 59) == status(8, SIGEV_NONE, 0, proc.pid)[:59]


def test_notify_none(proc: Proc) -> None:
    """SIGEV_NONE registers but sends nothing: a thread blocked on another queue stays blocked."""
    nq = create(proc, "/notify")
    bq = create(proc, "/block")
    proc.sigaction(SIG, flags=SA_SIGINFO)
    t = proc.thread()
    t.mq_notify(nq, NONE)
    fut = start_blocked(t, lambda: t.mq_receive(bq, MSGSIZE))
    proc.mq_send(nq, MSG, 1)
    settle(proc)
    assert not fut.done()
    proc.mq_send(bq, MSG, 1)
    assert fut.result(WAIT) == (MSG, 1)
    assert proc.deliveries() == []
    # The registration fired (and is gone) even though nothing was sent.
    assert unregistered(proc, nq)


def test_notify_signal(proc: Proc) -> None:
    """The notification signal interrupts a thread blocked in mq_receive on another queue."""
    nq = create(proc, "/notify")
    bq = create(proc, "/block")
    proc.sigaction(SIG, flags=SA_SIGINFO)
    proc.block_signals(SIG)
    t = proc.thread()
    t.unblock_signals(SIG)
    t.mq_notify(nq, signal_event(SIG))
    fut = start_blocked(t, lambda: t.mq_receive(bq, MSGSIZE))
    proc.mq_send(nq, MSG, 1)
    assert errno_of(fut) == EINTR
    assert [(d.signo, d.code) for d in proc.deliveries()] == [(SIG, SI_MESGQ)]


def test_notify_busy(target: Target, proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    with expect_errno(EBUSY):
        proc.mq_notify(fd, NONE)
    with expect_errno(EBUSY):
        proc.mq_notify(fd, signal_event())
    other = Proc(target.spawn())
    ofd = other.mq_open(NAME, O_RDONLY)
    with expect_errno(EBUSY):
        other.mq_notify(ofd, NONE)


def test_remove_notification(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    proc.mq_notify(fd, None)
    assert unregistered(proc, fd)
    proc.mq_notify(fd, NONE)
    assert registered(proc, fd)
    # Removing when nothing is registered is not an error.
    proc.mq_notify(fd, None)
    proc.mq_notify(fd, None)


def test_notify_not_empty(proc: Proc) -> None:
    """A registration fires only when a message makes an empty queue non-empty."""
    fd = create(proc)
    proc.mq_send(fd, b"", 1)
    proc.mq_notify(fd, NONE)
    proc.mq_send(fd, b"", 1)
    with expect_errno(EBUSY):
        proc.mq_notify(fd, NONE)
    assert registered(proc, fd)


def test_notify_once(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    proc.mq_send(fd, b"", 1)
    assert unregistered(proc, fd)
    proc.mq_notify(fd, NONE)


def test_notify_invalid(proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EINVAL):
        proc.mq_notify(fd, {"notify": SIGEV_THREAD_ID, "tid": proc.tid})
    with expect_errno(EINVAL):
        proc.mq_notify(fd, signal_event(70))
    proc.mq_unlink(NAME)
    proc.mq_close(fd)
    with expect_errno(EBADF):
        proc.mq_notify(fd, NONE)


# -- validation ------------------------------------------------------------------------------------------------


def test_notify_einval_before_ebadf(proc: Proc) -> None:
    for bad_fd in (-1, 0x7FFF):
        with expect_errno(EINVAL):
            proc.mq_notify(bad_fd, {"notify": -1})
        with expect_errno(EINVAL):
            proc.mq_notify(bad_fd, {"notify": 3})
        with expect_errno(EINVAL):
            proc.mq_notify(bad_fd, {"notify": SIGEV_THREAD_ID, "tid": proc.tid})
        with expect_errno(EINVAL):
            proc.mq_notify(bad_fd, signal_event(65))
        with expect_errno(EBADF):
            proc.mq_notify(bad_fd, NONE)
        with expect_errno(EBADF):
            proc.mq_notify(bad_fd, None)


def test_notify_signal_number_range(proc: Proc) -> None:
    fd = create(proc)
    for bad in (65, 1000, -1):
        with expect_errno(EINVAL):
            proc.mq_notify(fd, signal_event(bad))
    proc.mq_notify(fd, signal_event(64))
    assert registered(proc, fd, SIGEV_SIGNAL, 64)
    proc.mq_notify(fd, None)
    # An invalid signal number does not matter for SIGEV_NONE.
    proc.mq_notify(fd, {"notify": SIGEV_NONE, "signo": 1000})


def test_notify_signal_zero_registers_but_sends_nothing(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, signal_event(0))
    assert registered(proc, fd, SIGEV_SIGNAL, 0)
    with expect_errno(EBUSY):
        proc.mq_notify(fd, NONE)
    proc.mq_send(fd, MSG)
    settle(proc)
    assert proc.deliveries() == []
    assert unregistered(proc, fd)


def test_notify_efault(target: Target, proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EFAULT):
        proc.mq_notify(fd, target.bad_addr)
    with expect_errno(EFAULT):
        proc.mq_notify(fd, proc.end_of_mapping(64))
    # The sigevent is copied in before the descriptor is looked up.
    with expect_errno(EFAULT):
        proc.mq_notify(-1, target.bad_addr)
    assert unregistered(proc, fd)


# -- ownership -------------------------------------------------------------------------------------------------


def test_notify_null_by_non_owner_is_a_no_op(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    child = proc.fork()
    child.mq_notify(fd, None)
    assert registered(proc, fd)
    with expect_errno(EBUSY):
        child.mq_notify(fd, NONE)


def test_notify_null_by_owner_thread_removes(proc: Proc) -> None:
    """The owner is the thread group, not the registering thread."""
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    t = proc.thread()
    with expect_errno(EBUSY):
        t.mq_notify(fd, NONE)
    t.mq_notify(fd, None)
    assert unregistered(proc, fd)


def test_notify_status_line(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(RTSIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, NONE)
    assert text(proc, fd) == status(0, SIGEV_NONE, 0, proc.pid)
    proc.mq_notify(fd, None)
    proc.mq_notify(fd, signal_event(RTSIG))
    # SIGEV_SIGNAL is 0, so only SIGNO and NOTIFY_PID show the registration.
    assert text(proc, fd) == status(0, SIGEV_SIGNAL, RTSIG, proc.pid)
    proc.mq_send(fd, b"abc")
    assert text(proc, fd) == status(3)


# -- firing -----------------------------------------------------------------------------------------------------


def test_notify_signal_siginfo_from_other_sender(target: Target, proc: Proc) -> None:
    """si_code SI_MESGQ, si_pid/si_uid of the *sender*, si_value from the registration; sent even
    though the sender could not kill() the owner."""
    proc.umask(0)
    fd = create(proc, mode=0o666)
    proc.sigaction(RTSIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, signal_event(RTSIG, 0x1234_5678_9ABC))
    sender = user(target)
    wfd = sender.mq_open(NAME, O_WRONLY)
    sender.mq_send(wfd, MSG, 3)
    # The owner is idle between calls: it takes the signal when it next enters the kernel.
    wait_until(lambda: proc.getpid() > 0 and len(proc.deliveries()) >= 1, what="the notification signal")
    d = proc.deliveries()
    assert len(d) == 1
    assert (d[0].signo, d[0].code, d[0].pid, d[0].uid, d[0].value) == (
        RTSIG, SI_MESGQ, sender.getpid(), sender.getuid(), 0x1234_5678_9ABC)
    assert unregistered(proc, fd)


def test_notify_signal_from_owner_itself(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, signal_event(SIG, 7))
    proc.mq_send(fd, MSG)
    wait_until(lambda: len(proc.deliveries()) >= 1, what="the notification signal")
    d = proc.deliveries()[0]
    assert (d.signo, d.code, d.pid, d.uid, d.value) == (SIG, SI_MESGQ, proc.getpid(), 0, 7)


def test_notify_signal_once(proc: Proc) -> None:
    """One shot: neither a second message nor a later empty -> non-empty transition signals again."""
    fd = create(proc)
    proc.sigaction(RTSIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, signal_event(RTSIG, 1))
    proc.mq_send(fd, b"1")
    proc.mq_send(fd, b"2")
    wait_until(lambda: len(proc.deliveries()) >= 1, what="the notification signal")
    proc.mq_receive(fd, MSGSIZE)
    proc.mq_receive(fd, MSGSIZE)
    proc.mq_send(fd, b"3")
    settle(proc)
    assert len(proc.deliveries()) == 1
    # Re-registering arms it again.
    proc.mq_receive(fd, MSGSIZE)
    proc.mq_notify(fd, signal_event(RTSIG, 2))
    proc.mq_send(fd, b"4")
    wait_until(lambda: len(proc.deliveries()) >= 2, what="the second notification")
    assert [d.value for d in proc.deliveries()] == [1, 2]


def test_notify_not_fired_for_waiting_receiver(proc: Proc) -> None:
    """A message handed straight to a blocked receiver never enters the queue: no notification, and
    the registration stays armed for the next real insert."""
    fd = create(proc)
    proc.sigaction(RTSIG, flags=SA_SIGINFO)
    proc.mq_notify(fd, signal_event(RTSIG, 5))
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    proc.mq_send(fd, b"direct", 1)
    assert fut.result(WAIT) == (b"direct", 1)
    assert registered(proc, fd, SIGEV_SIGNAL, RTSIG)
    settle(proc, t)
    assert proc.deliveries() == []
    proc.mq_send(fd, b"queued", 1)
    wait_until(lambda: len(proc.deliveries()) == 1, what="the notification signal")
    assert proc.deliveries()[0].value == 5


def test_notify_not_fired_by_pipelined_receive(proc: Proc) -> None:
    """When a receive frees a slot, a blocked sender's message is inserted by the receiver without
    running the notification, even on a one-slot queue that was momentarily empty."""
    fd = create(proc, attr=(1, 64))
    proc.mq_send(fd, b"full")
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_send(fd, b"waiting"))
    proc.mq_notify(fd, NONE)
    assert proc.mq_receive(fd, 64) == (b"full", 0)
    fut.result(WAIT)
    assert proc.mq_getattr(fd).curmsgs == 1
    assert registered(proc, fd)


# -- removal ----------------------------------------------------------------------------------------------------


def test_owner_close_of_dup_drops_registration(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    proc.close(proc.dup(fd))
    assert unregistered(proc, fd)


def test_owner_close_of_other_descriptor_drops_registration(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, signal_event(SIG))
    other = proc.mq_open(NAME, O_RDONLY)
    proc.close(other)
    assert unregistered(proc, fd)


def test_non_owner_close_keeps_registration(target: Target, proc: Proc) -> None:
    fd = create(proc)
    proc.mq_notify(fd, NONE)
    child = proc.fork()
    child.close(fd)
    assert registered(proc, fd)
    other = Proc(target.spawn())
    other.close(other.mq_open(NAME, O_RDWR))
    assert registered(proc, fd)


def test_owner_exit_drops_registration(target: Target, proc: Proc) -> None:
    fd = create(proc)
    owner = Proc(target.spawn())
    ofd = owner.mq_open(NAME, O_RDONLY)
    owner.mq_notify(ofd, NONE)
    assert registered(proc, fd, pid=owner.pid)
    owner.exit()
    wait_until(lambda: unregistered(proc, fd), what="the owner's registration to go")
    proc.mq_notify(fd, NONE)


# -- SIGEV_THREAD (the netlink protocol glibc builds on) ------------------------------------------------------------


def _cookie() -> bytes:
    return bytes(range(1, NOTIFY_COOKIE_LEN)) + b"\xaa"


def _thread_event(proc: Proc, sock: int, cookie: bytes | None = None) -> dict[str, int]:
    return {"notify": SIGEV_THREAD, "signo": sock, "value": proc.buf(cookie or _cookie())}


def _no_message(proc: Proc, sock: int) -> bool:
    try:
        proc.recv(sock, 64, MSG_DONTWAIT)
    except Exception as e:
        return getattr(e, "errno", None) == EAGAIN
    return False


def test_sigev_thread_fires_cookie(proc: Proc) -> None:
    fd = create(proc)
    sock = proc.socket_netlink()
    proc.mq_notify(fd, _thread_event(proc, sock))
    assert registered(proc, fd, SIGEV_THREAD, 0)
    proc.mq_send(fd, MSG)
    assert proc.recv(sock, 64, MSG_DONTWAIT) == _cookie()[:31] + bytes([NOTIFY_WOKENUP])
    assert unregistered(proc, fd)
    # Firing consumed the registration: closing sends no NOTIFY_REMOVED.
    proc.close(fd)
    assert _no_message(proc, sock)


def test_sigev_thread_removal_by_null(proc: Proc) -> None:
    fd = create(proc)
    sock = proc.socket_netlink()
    proc.mq_notify(fd, _thread_event(proc, sock))
    proc.mq_notify(fd, None)
    assert proc.recv(sock, 64, MSG_DONTWAIT) == _cookie()[:31] + bytes([NOTIFY_REMOVED])
    assert unregistered(proc, fd)
    assert _no_message(proc, sock)


def test_sigev_thread_removal_by_owner_close(proc: Proc) -> None:
    fd = create(proc)
    sock = proc.socket_netlink()
    proc.mq_notify(fd, _thread_event(proc, sock))
    proc.close(fd)
    assert proc.recv(sock, 64, MSG_DONTWAIT) == _cookie()[:31] + bytes([NOTIFY_REMOVED])


def test_sigev_thread_errors(target: Target, proc: Proc) -> None:
    fd = create(proc)
    sock = proc.socket_netlink()
    with expect_errno(EFAULT):
        proc.mq_notify(fd, {"notify": SIGEV_THREAD, "signo": sock, "value": target.bad_addr})
    with expect_errno(EFAULT):
        proc.mq_notify(fd, {"notify": SIGEV_THREAD, "signo": sock, "value": proc.end_of_mapping(32)})
    # The cookie and the socket are resolved before the queue descriptor.
    with expect_errno(EFAULT):
        proc.mq_notify(-1, {"notify": SIGEV_THREAD, "signo": sock, "value": target.bad_addr})
    with expect_errno(EBADF):
        proc.mq_notify(fd, _thread_event(proc, -1))
    with expect_errno(EBADF):
        proc.mq_notify(fd, _thread_event(proc, 0x7FFF))
    with expect_errno(ENOTSOCK):
        proc.mq_notify(fd, _thread_event(proc, fd))
    assert unregistered(proc, fd)
    # A failed registration attempt on a busy queue sends nothing to the socket.
    proc.mq_notify(fd, NONE)
    with expect_errno(EBUSY):
        proc.mq_notify(fd, _thread_event(proc, sock))
    assert _no_message(proc, sock)
