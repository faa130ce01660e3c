"""poll/ppoll and epoll: readiness of files without events, timeouts, argument errors, epoll_ctl
rules, and interruption by signals.

Linux counterpart: fs/select.c (do_sys_poll, do_poll, poll_select_finish) and fs/eventpoll.c
(do_epoll_ctl, ep_poll, do_epoll_wait). gVisor counterpart: test/syscalls/linux/poll.cc, ppoll.cc,
epoll.cc (ideas only).
"""

from __future__ import annotations

import os
import struct
import time

from mqsentry.abi.linux.errno import EBADF, EEXIST, EFAULT, EINTR, EINVAL, ELOOP, ENOENT, EPERM
from mqsentry.abi.linux.file import (
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLL_CTL_MOD,
    EPOLL_EVENT,
    EPOLLET,
    EPOLLEXCLUSIVE,
    EPOLLIN,
    EPOLLOUT,
    O_CREAT,
    O_RDWR,
    POLLFD,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    POLLRDNORM,
    POLLWRNORM,
)
from mqsentry.abi.linux.limits import RLIMIT_NOFILE
from mqsentry.abi.linux.signal import SA_RESTART, SA_SIGINFO, SIGUSR1
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.testsuite.fs import reg, scratch
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import background, wait_blocked


def _pollfds(proc: Proc, fds: list[tuple[int, int]]) -> int:
    return proc.buf(b"".join(POLLFD.pack(fd, ev, 0) for fd, ev in fds))


def _revents(proc: Proc, arr: int, n: int) -> list[int]:
    raw = proc.read(arr, n * POLLFD.size)
    return [POLLFD.unpack_from(raw, i * POLLFD.size)[2] & 0xFFFF for i in range(n)]


def test_poll_timeout_zero(proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    assert proc.poll([(ep, POLLIN)], 0) == [0]
    if "poll" in proc._nr:
        arr = _pollfds(proc, [(ep, POLLIN | POLLOUT)])
        assert proc.call("poll", arr, 1, 0) == 0
        assert _revents(proc, arr, 1) == [0]


def test_poll_nval_and_negative_fd(proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    arr = _pollfds(proc, [(-1, POLLIN), (900, POLLIN), (ep, POLLIN)])
    assert proc.call("ppoll", arr, 3, proc.buf(TIMESPEC.pack(0, 0)), 0, 8) == 1
    assert _revents(proc, arr, 3) == [0, POLLNVAL, 0]


def test_poll_regular_file_always_ready(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "pollf")
    fd = proc.openat(os.path.join(d, "f"), O_CREAT | O_RDWR, 0o600)
    # Files without a poll method report DEFAULT_POLLMASK, filtered by the requested events.
    assert proc.poll([(fd, POLLIN)], None) == [POLLIN]
    assert proc.poll([(fd, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)], 0) == \
        [POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM]


def test_poll_times_out(proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    t0 = time.monotonic()
    assert proc.poll([(ep, POLLIN)], 0.05) == [0]
    assert time.monotonic() - t0 >= 0.045
    ts = proc.buf(TIMESPEC.pack(0, 30_000_000))
    arr = _pollfds(proc, [(ep, POLLIN)])
    assert proc.call("ppoll", arr, 1, ts, 0, 8) == 0
    # ppoll writes back the time left (none after a timeout).
    assert TIMESPEC.unpack(proc.read(ts, 16)) == (0, 0)


def test_poll_argument_errors(target: Target, proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    lim = proc.prlimit(RLIMIT_NOFILE)[0]
    arr = proc.alloc(8)
    with expect_errno(EINVAL):
        proc.call("ppoll", arr, lim + 1, proc.buf(TIMESPEC.pack(0, 0)), 0, 8)
    with expect_errno(EFAULT):
        proc.call("ppoll", target.bad_addr, 1, proc.buf(TIMESPEC.pack(0, 0)), 0, 8)
    good = _pollfds(proc, [(ep, POLLIN)])
    with expect_errno(EINVAL):
        proc.call("ppoll", good, 1, proc.buf(TIMESPEC.pack(0, 1_000_000_000)), 0, 8)
    with expect_errno(EINVAL):
        proc.call("ppoll", good, 1, proc.buf(TIMESPEC.pack(-1, 0)), 0, 8)
    with expect_errno(EFAULT):
        proc.call("ppoll", good, 1, target.bad_addr, 0, 8)
    mask = proc.buf(struct.pack("<Q", 0))
    with expect_errno(EINVAL):
        proc.call("ppoll", good, 1, proc.buf(TIMESPEC.pack(0, 0)), mask, 4)
    assert proc.call("ppoll", good, 1, proc.buf(TIMESPEC.pack(0, 0)), mask, 8) == 0
    # nfds == 0 is a plain sleep
    assert proc.call("ppoll", 0, 0, proc.buf(TIMESPEC.pack(0, 1000)), 0, 8) == 0


def test_poll_interrupted_by_signal(target: Target, proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_RESTART | SA_SIGINFO)
    ep = proc.call("epoll_create1", 0)
    arr = _pollfds(proc, [(ep, POLLIN)])
    waiter = proc.thread()
    fut = background(lambda: waiter.sys("ppoll", arr, 1, 0, 0, 8))
    wait_blocked(waiter)
    proc.tgkill(proc.pid, waiter.tid, SIGUSR1)
    # poll is never restarted after a handler, even with SA_RESTART.
    assert fut.result(20) == -EINTR
    if "poll" in proc._nr:
        fut = background(lambda: waiter.sys("poll", arr, 1, reg(-1)))
        wait_blocked(waiter)
        proc.tgkill(proc.pid, waiter.tid, SIGUSR1)
        assert fut.result(20) == -EINTR


def test_epoll_create_errors(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.call("epoll_create1", 1)
    if "epoll_create" in proc._nr:
        with expect_errno(EINVAL):
            proc.call("epoll_create", 0)
        with expect_errno(EINVAL):
            proc.call("epoll_create", reg(-1))
        proc.close(proc.call("epoll_create", 1))


def test_epoll_wait_empty(proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    assert proc.epoll_wait(ep, 4, 0) == []
    t0 = time.monotonic()
    assert proc.epoll_wait(ep, 4, 30) == []
    assert time.monotonic() - t0 >= 0.025


def test_epoll_wait_errors(target: Target, proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    size = EPOLL_EVENT[target.arch].size
    buf = proc.alloc(size * 4)
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", ep, buf, 0, 0, 0, 8)
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", ep, buf, reg(-1), 0, 0, 8)
    with expect_errno(EBADF):
        proc.call("epoll_pwait", 900, buf, 4, 0, 0, 8)
    other = proc.call("dup", ep)
    proc.close(ep)
    with expect_errno(EBADF):
        proc.call("epoll_pwait", ep, buf, 4, 0, 0, 8)
    d = scratch(target, proc, "epw")
    f = proc.openat(os.path.join(d, "f"), O_CREAT | O_RDWR, 0o600)
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", f, buf, 4, 0, 0, 8)
    # Order (Linux 6.18): the fd, maxevents, the buffer's range, then "is it an epoll fd".
    with expect_errno(EBADF):
        proc.call("epoll_pwait", 900, buf, 0, 0, 0, 8)
    with expect_errno(EBADF):
        proc.call("epoll_pwait", 900, reg(-4096), 4, 0, 0, 8)
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", other, reg(-4096), 0, 0, 0, 8)
    with expect_errno(EFAULT):
        proc.call("epoll_pwait", other, reg(-4096), 4, 0, 0, 8)
    with expect_errno(EFAULT):
        proc.call("epoll_pwait", f, reg(-4096), 4, 0, 0, 8)
    # The signal mask size is checked first of all.
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", 900, buf, 4, 0, proc.buf(b"\0" * 8), 7)
    with expect_errno(EINVAL):
        proc.call("epoll_pwait", other, buf, 4, 0, proc.buf(b"\0" * 8), 7)
    if "epoll_wait" in proc._nr:
        assert proc.call("epoll_wait", other, buf, 4, 0) == 0


def test_epoll_ctl_errors(target: Target, proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    ep2 = proc.call("epoll_create1", 0)
    proc.epoll_ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN, 7)
    with expect_errno(EEXIST):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN)
    ep3 = proc.call("epoll_create1", 0)
    with expect_errno(ENOENT):
        proc.epoll_ctl(ep, EPOLL_CTL_MOD, ep3, EPOLLIN)
    with expect_errno(ENOENT):
        proc.call("epoll_ctl", ep, EPOLL_CTL_DEL, ep3, 0)
    with expect_errno(EINVAL):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, ep, EPOLLIN)
    with expect_errno(EBADF):
        proc.epoll_ctl(900, EPOLL_CTL_ADD, ep2, EPOLLIN)
    with expect_errno(EBADF):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, 900, EPOLLIN)
    with expect_errno(EINVAL):
        proc.epoll_ctl(ep, 99, ep3, EPOLLIN)
    # A non-epoll fd as epfd.
    d = scratch(target, proc, "epc")
    f = proc.openat(os.path.join(d, "f"), O_CREAT | O_RDWR, 0o600)
    with expect_errno(EINVAL):
        proc.epoll_ctl(f, EPOLL_CTL_ADD, ep3, EPOLLIN)
    # Regular files cannot be polled by epoll.
    with expect_errno(EPERM):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, f, EPOLLIN)
    # EPOLLEXCLUSIVE: not with MOD, not on an epoll target.
    with expect_errno(EINVAL):
        proc.epoll_ctl(ep, EPOLL_CTL_MOD, ep2, EPOLLIN | EPOLLEXCLUSIVE)
    with expect_errno(EINVAL):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, ep3, EPOLLIN | EPOLLEXCLUSIVE)
    # The event struct is read before the fds are looked up (except for DEL, which ignores it).
    with expect_errno(EFAULT):
        proc.call("epoll_ctl", 900, EPOLL_CTL_ADD, 901, target.bad_addr)
    proc.call("epoll_ctl", ep, EPOLL_CTL_DEL, ep2, target.bad_addr)
    proc.epoll_ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN | EPOLLOUT | EPOLLET, 7)
    proc.epoll_ctl(ep, EPOLL_CTL_MOD, ep2, EPOLLIN, 8)


def test_epoll_loop_detection(proc: Proc) -> None:
    a = proc.call("epoll_create1", 0)
    b = proc.call("epoll_create1", 0)
    proc.epoll_ctl(a, EPOLL_CTL_ADD, b, EPOLLIN)
    with expect_errno(ELOOP):
        proc.epoll_ctl(b, EPOLL_CTL_ADD, a, EPOLLIN)


def test_epoll_wait_interrupted_by_signal(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_RESTART | SA_SIGINFO)
    ep = proc.call("epoll_create1", 0)
    buf = proc.alloc(64)
    waiter = proc.thread()
    fut = background(lambda: waiter.sys("epoll_pwait", ep, buf, 4, reg(-1), 0, 8))
    wait_blocked(waiter)
    proc.tgkill(proc.pid, waiter.tid, SIGUSR1)
    # epoll_wait returns EINTR whatever SA_RESTART says.
    assert fut.result(20) == -EINTR
    assert [d.signo for d in proc.deliveries()] == [SIGUSR1]


def test_ppoll_sigmask_lets_signal_in(proc: Proc) -> None:
    """ppoll's temporary mask: a signal blocked outside the call is delivered during it."""
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    waiter = proc.thread()
    waiter.block_signals(SIGUSR1)
    ep = proc.call("epoll_create1", 0)
    arr = _pollfds(proc, [(ep, POLLIN)])
    empty = proc.buf(struct.pack("<Q", 0))
    fut = background(lambda: waiter.sys("ppoll", arr, 1, 0, empty, 8))
    wait_blocked(waiter)
    proc.tgkill(proc.pid, waiter.tid, SIGUSR1)
    assert fut.result(20) == -EINTR
    assert [d.signo for d in proc.deliveries()] == [SIGUSR1]
    # The old mask is back afterwards.
    old = waiter.sigprocmask(0, ())
    assert old & (1 << (SIGUSR1 - 1))
