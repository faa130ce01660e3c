"""File descriptor tables: lowest-free allocation, EMFILE under RLIMIT_NOFILE, dup/dup2/dup3/fcntl,
close-on-exec flags, sharing between threads and copying at fork.

Linux counterpart: fs/file.c (alloc_fd, do_dup2, ksys_dup3, close_fd, dup_fd) and fs/fcntl.c.
gVisor counterpart: test/syscalls/linux/dup.cc, fcntl.cc, close_range.cc (ideas only).
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EBADF, EINVAL, EMFILE
from mqsentry.abi.linux.file import (
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDWR,
)
from mqsentry.abi.linux.limits import RLIMIT_NOFILE
from mqsentry.testsuite.fs import fd_is_open, reg
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target


def _ep(proc: Proc, flags: int = 0) -> int:
    return proc.call("epoll_create1", flags)


def test_lowest_free_fd(proc: Proc) -> None:
    a, b, c = _ep(proc), _ep(proc), _ep(proc)
    assert a < b < c
    proc.close(a)
    assert _ep(proc) == a
    proc.close(b)
    assert proc.dup(c) == b


def test_close_bad_fd(proc: Proc) -> None:
    fd = _ep(proc)
    proc.close(fd)
    with expect_errno(EBADF):
        proc.close(fd)
    with expect_errno(EBADF):
        proc.call("close", reg(-1))
    with expect_errno(EBADF):
        proc.call("close", 1 << 20)


def test_emfile_under_rlimit_nofile(proc: Proc) -> None:
    top = _ep(proc)
    limit = top + 3
    proc.prlimit(RLIMIT_NOFILE, (limit, limit))
    got = []
    while True:
        r = proc.sys("epoll_create1", 0)
        if r < 0:
            assert r == -EMFILE
            break
        got.append(r)
        assert r < limit
    assert got and max(got) == limit - 1
    with expect_errno(EMFILE):
        proc.dup(top)
    # dup2/dup3 to an fd at or above the limit is EBADF; F_DUPFD from there is EINVAL.
    with expect_errno(EBADF):
        proc.call("dup3", top, limit, 0)
    with expect_errno(EINVAL):
        proc.fcntl(top, F_DUPFD, limit)
    # Closing one frees exactly that slot.
    proc.close(got[0])
    assert proc.dup(top) == got[0]


def test_lowering_rlimit_keeps_open_fds(proc: Proc) -> None:
    fd = _ep(proc)
    proc.prlimit(RLIMIT_NOFILE, (fd, fd))
    assert fd_is_open(proc, fd)
    with expect_errno(EMFILE):
        proc.dup(fd)


def test_dup_shares_description_clears_cloexec(proc: Proc) -> None:
    fd = _ep(proc, O_CLOEXEC)
    assert proc.fcntl(fd, F_GETFD) == FD_CLOEXEC
    d = proc.dup(fd)
    assert proc.fcntl(d, F_GETFD) == 0
    # One description: status flags set through one fd show through the other.
    proc.fcntl(d, F_SETFL, O_NONBLOCK)
    assert proc.fcntl(fd, F_GETFL) & O_NONBLOCK
    with expect_errno(EBADF):
        proc.dup(d + 1000)


def test_dup2_semantics(target: Target, proc: Proc) -> None:
    if "dup2" not in proc._nr:
        return
    a, b = _ep(proc), _ep(proc)
    # Same fd: returns it when valid, EBADF when not.
    assert proc.call("dup2", a, a) == a
    proc.close(b)
    with expect_errno(EBADF):
        proc.call("dup2", b, b)
    with expect_errno(EBADF):
        proc.call("dup2", b, a)
    # Onto an open fd: that fd is closed first and now names a's description.
    c = _ep(proc, O_CLOEXEC)
    assert proc.call("dup2", a, c) == c
    assert proc.fcntl(c, F_GETFD) == 0
    proc.fcntl(a, F_SETFL, O_NONBLOCK)
    assert proc.fcntl(c, F_GETFL) & O_NONBLOCK
    # A high target fd below the limit is fine and leaves lower fds free.
    assert proc.call("dup2", a, 900) == 900
    proc.close(900)


def test_dup3_semantics(proc: Proc) -> None:
    a = _ep(proc)
    with expect_errno(EINVAL):
        proc.call("dup3", a, a, 0)
    with expect_errno(EINVAL):
        proc.call("dup3", a, a + 1, O_NONBLOCK)
    # flags are checked before oldfd
    with expect_errno(EINVAL):
        proc.call("dup3", 999, 998, 1)
    with expect_errno(EBADF):
        proc.call("dup3", 999, 998, 0)
    assert proc.call("dup3", a, 800, O_CLOEXEC) == 800
    assert proc.fcntl(800, F_GETFD) == FD_CLOEXEC
    assert proc.call("dup3", a, 800, 0) == 800
    assert proc.fcntl(800, F_GETFD) == 0
    with expect_errno(EBADF):
        proc.call("dup3", a, reg(-1), 0)


def test_fcntl_fd_flags_and_dupfd(proc: Proc) -> None:
    a = _ep(proc)
    assert proc.fcntl(a, F_GETFD) == 0
    proc.fcntl(a, F_SETFD, FD_CLOEXEC | 0xF0)
    assert proc.fcntl(a, F_GETFD) == FD_CLOEXEC
    proc.fcntl(a, F_SETFD, 0)
    assert proc.fcntl(a, F_GETFD) == 0
    d = proc.fcntl(a, F_DUPFD, 500)
    assert d == 500 and proc.fcntl(d, F_GETFD) == 0
    d2 = proc.fcntl(a, F_DUPFD, 500)
    assert d2 == 501
    d3 = proc.fcntl(a, F_DUPFD_CLOEXEC, 500)
    assert d3 == 502 and proc.fcntl(d3, F_GETFD) == FD_CLOEXEC
    # A negative start is a huge unsigned value: EINVAL.
    with expect_errno(EINVAL):
        proc.fcntl(a, F_DUPFD, reg(-1))


def test_fcntl_errors(proc: Proc) -> None:
    a = _ep(proc)
    with expect_errno(EBADF):
        proc.fcntl(a + 100, F_GETFD)
    with expect_errno(EBADF):
        proc.fcntl(a + 100, F_GETFL)
    with expect_errno(EINVAL):
        proc.fcntl(a, 0x7777)


def test_fcntl_getfl_setfl(proc: Proc) -> None:
    ep = _ep(proc)
    assert proc.fcntl(ep, F_GETFL) == O_RDWR
    # F_SETFL cannot change the access mode.
    proc.fcntl(ep, F_SETFL, O_NONBLOCK | 0o1)
    assert proc.fcntl(ep, F_GETFL) == O_RDWR | O_NONBLOCK
    proc.fcntl(ep, F_SETFL, 0)
    assert proc.fcntl(ep, F_GETFL) == O_RDWR


def test_threads_share_table(proc: Proc) -> None:
    th = proc.thread()
    fd = th.call("epoll_create1", 0)
    assert fd_is_open(proc, fd)
    proc.close(fd)
    assert not fd_is_open(th, fd)


def test_fork_copies_table(proc: Proc) -> None:
    a = _ep(proc, O_CLOEXEC)
    child = proc.fork()
    # The child has the same fds with the same fd flags...
    assert child.fcntl(a, F_GETFD) == FD_CLOEXEC
    # ...sharing descriptions: status flags are per description.
    child.fcntl(a, F_SETFL, O_NONBLOCK)
    assert proc.fcntl(a, F_GETFL) & O_NONBLOCK
    # ...but the tables are separate.
    child.close(a)
    assert fd_is_open(proc, a)
    assert proc.call("dup3", a, 700, 0) == 700
    assert not fd_is_open(child, 700)
