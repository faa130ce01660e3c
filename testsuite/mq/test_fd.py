"""The mq descriptor as a file: the read() status line (offset-aware), write() EINVAL, poll/epoll
readiness and wake-ups, fstat (S_IFREG, st_size 80, nlink 1), fchmod, FD_CLOEXEC, O_NONBLOCK shared
between fcntl and mq_getsetattr, dup, close.

Linux counterpart: ipc/mqueue.c mqueue_read_file/mqueue_poll_file/mqueue_file_operations,
mqueue_get_inode (i_size = FILENT_SIZE). gVisor counterpart: test/syscalls/linux/mq.cc ReadEmpty,
PollEmpty and the refs/pull/6458 Read.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EACCES, EAGAIN, EBADF, EINVAL, EPERM
from mqsentry.abi.linux.file import (
    FD_CLOEXEC,
    O_ACCMODE,
    O_CLOEXEC,
    O_CREAT,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    S_IFREG,
)
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.libc.posix import (
    EPOLL_CTL_ADD,
    EPOLLIN,
    EPOLLOUT,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    POLLIN,
    POLLOUT,
    POLLRDNORM,
    POLLWRNORM,
    MqAttr,
)
from mqsentry.testsuite.mq import MSG, MSGSIZE, NAME, create, fill, status, user
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import WAIT, start_blocked

ALL = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM

# -- gVisor ----------------------------------------------------------------------------------------------------


def test_read_empty(proc: Proc) -> None:
    fd = create(proc, mode=0o777)
    assert proc.read_fd(fd, 59) == b"QSIZE:0          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     "


def test_read(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"Message.", 1)
    assert proc.read_fd(fd, 59) == b"QSIZE:8          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     "


def test_poll_empty(proc: Proc) -> None:
    fd = create(proc)
    assert proc.poll([(fd, ALL)], timeout=None) == [POLLOUT | POLLWRNORM]


# -- read/write --------------------------------------------------------------------------------------------------


def test_read_whole_line_then_eof(proc: Proc) -> None:
    fd = create(proc)
    line = proc.read_fd(fd, 4096)
    assert line == status()
    assert len(line) == 60
    assert proc.read_fd(fd, 4096) == b""


def test_read_is_offset_aware(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"x" * 1234)
    line = status(1234)
    assert proc.read_fd(fd, 10) == line[:10]
    assert proc.read_fd(fd, 10) == line[10:20]
    assert proc.pread(fd, 100, 6) == line[6:]
    assert proc.pread(fd, 100, len(line)) == b""
    assert proc.read_fd(fd, 100) == line[20:]
    assert proc.lseek(fd, 0, 0) == 0
    assert proc.read_fd(fd, 100) == line


def test_read_reflects_current_state(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"abcd")
    assert proc.pread(fd, 100, 0) == status(4)
    proc.mq_send(fd, b"efg")
    assert proc.pread(fd, 100, 0) == status(7)


def test_read_needs_read_access(proc: Proc) -> None:
    fd = create(proc, oflag=O_WRONLY)
    with expect_errno(EBADF):
        proc.read_fd(fd, 100)


def test_write_is_einval(proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EINVAL):
        proc.write_fd(fd, b"QSIZE:0")
    wr = proc.mq_open(NAME, O_WRONLY)
    with expect_errno(EINVAL):
        proc.write_fd(wr, b"x")
    assert proc.mq_getattr(fd).curmsgs == 0


# -- poll/epoll ----------------------------------------------------------------------------------------------------


def test_poll_bits_follow_queue_state(proc: Proc) -> None:
    fd = create(proc, attr=(2, 16))
    assert proc.poll([(fd, ALL)]) == [POLLOUT | POLLWRNORM]
    proc.mq_send(fd, b"a")
    assert proc.poll([(fd, ALL)]) == [POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM]
    proc.mq_send(fd, b"b")
    assert proc.poll([(fd, ALL)]) == [POLLIN | POLLRDNORM]
    # Only the requested bits are reported.
    assert proc.poll([(fd, POLLOUT)]) == [0]
    proc.mq_receive(fd, 16)
    assert proc.poll([(fd, POLLOUT)]) == [POLLOUT]


def test_poll_ignores_access_mode(proc: Proc) -> None:
    create(proc)
    rd = proc.mq_open(NAME, O_RDONLY)
    wr = proc.mq_open(NAME, O_WRONLY)
    assert proc.poll([(rd, ALL), (wr, ALL)]) == [POLLOUT | POLLWRNORM] * 2


def test_blocking_poll_woken_by_send(proc: Proc) -> None:
    fd = create(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.poll([(fd, POLLIN)], timeout=None))
    proc.mq_send(fd, MSG)
    assert fut.result(WAIT) == [POLLIN]


def test_blocking_poll_woken_by_receive(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.poll([(fd, POLLOUT)], timeout=None))
    proc.mq_receive(fd, MSGSIZE)
    assert fut.result(WAIT) == [POLLOUT]


def test_epoll_readiness(proc: Proc) -> None:
    fd = create(proc, attr=(1, 16))
    ep = proc.epoll_create()
    proc.epoll_ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, 77)
    assert proc.epoll_wait(ep) == [(EPOLLOUT, 77)]
    proc.mq_send(fd, b"x")
    assert proc.epoll_wait(ep) == [(EPOLLIN, 77)]
    proc.mq_receive(fd, 16)
    assert proc.epoll_wait(ep) == [(EPOLLOUT, 77)]


def test_epoll_wait_woken_by_send(proc: Proc) -> None:
    fd = create(proc)
    ep = proc.epoll_create()
    proc.epoll_ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, 5)
    assert proc.epoll_wait(ep) == []
    t = proc.thread()
    fut = start_blocked(t, lambda: t.epoll_wait(ep, 4, int(WAIT * 1000)))
    proc.mq_send(fd, MSG)
    assert fut.result(WAIT) == [(EPOLLIN, 5)]


def test_close_drops_only_that_files_epoll_interests(proc: Proc) -> None:
    """Closing the last fd of a watched queue description removes its interests from every epoll set
    (eventpoll_release) and no other interest: the rest keep their data and readiness. An fd whose
    description lives on through a dup keeps its interest."""
    create(proc)
    fds = [proc.mq_open(NAME, O_RDWR) for _ in range(40)]
    ep, ep2 = proc.epoll_create(), proc.epoll_create()
    for i, fd in enumerate(fds):
        proc.epoll_ctl(ep, EPOLL_CTL_ADD, fd, EPOLLOUT, 1000 + i)
    proc.epoll_ctl(ep2, EPOLL_CTL_ADD, fds[3], EPOLLOUT, 3)
    proc.epoll_ctl(ep2, EPOLL_CTL_ADD, fds[4], EPOLLOUT, 4)
    kept = proc.dup(fds[7])
    closed = {3, 7, 20, 39}
    for i in sorted(closed):
        proc.close(fds[i])
    got = proc.epoll_wait(ep, 64)
    assert sorted(data for _, data in got) == [1000 + i for i in range(40) if i not in closed - {7}]
    assert all(ev == EPOLLOUT for ev, _ in got)
    assert proc.epoll_wait(ep2, 8) == [(EPOLLOUT, 4)]
    proc.close(kept)  # now fds[7]'s description is released too
    assert 1007 not in [data for _, data in proc.epoll_wait(ep, 64)]


# -- fstat/fchmod ----------------------------------------------------------------------------------------------------


def test_fstat(target: Target) -> None:
    p = user(target)
    p.umask(0)
    fd = p.mq_open(NAME, O_RDWR | O_CREAT, 0o640)
    st = p.fstat(fd)
    assert st.mode == S_IFREG | 0o640
    assert st.size == 80
    assert st.nlink == 1
    assert (st.uid, st.gid) == (p.getuid(), p.getgid())
    # st_size does not follow the queue's contents.
    p.mq_send(fd, b"x" * 100)
    assert p.fstat(fd).size == 80


def test_fstat_after_unlink(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_unlink(NAME)
    assert proc.fstat(fd).nlink == 0


def test_fchmod(target: Target) -> None:
    owner = user(target)
    fd = create(owner, mode=0o600)
    other = user(target)
    with expect_errno(EACCES):
        other.mq_open(NAME, O_RDONLY)
    owner.fchmod(fd, 0o604)
    assert owner.fstat(fd).mode == S_IFREG | 0o604
    other.mq_open(NAME, O_RDONLY)
    with expect_errno(EACCES):
        other.mq_open(NAME, O_WRONLY)


def test_fchmod_needs_ownership(target: Target) -> None:
    owner = user(target)
    owner.umask(0)
    create(owner, mode=0o666)
    other = user(target)
    fd = other.mq_open(NAME, O_RDWR)
    with expect_errno(EPERM):
        other.fchmod(fd, 0o777)


# -- descriptor flags ------------------------------------------------------------------------------------------------


def test_cloexec_always_set(proc: Proc) -> None:
    fd = proc.mq_open("/a", O_RDWR | O_CREAT, 0o600)
    assert proc.fcntl(fd, F_GETFD) == FD_CLOEXEC
    fd = proc.mq_open("/b", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    assert proc.fcntl(fd, F_GETFD) == FD_CLOEXEC
    fd = proc.mq_open("/a", O_RDONLY)
    assert proc.fcntl(fd, F_GETFD) == FD_CLOEXEC
    # It is an ordinary descriptor flag afterwards.
    proc.fcntl(fd, F_SETFD, 0)
    assert proc.fcntl(fd, F_GETFD) == 0
    # dup does not copy it.
    assert proc.fcntl(proc.dup(proc.mq_open("/a", O_RDONLY)), F_GETFD) == 0


def test_getfl_access_mode_and_nonblock(proc: Proc) -> None:
    create(proc)
    for acc in (O_RDONLY, O_WRONLY, O_RDWR):
        fd = proc.mq_open(NAME, acc)
        fl = proc.fcntl(fd, F_GETFL)
        assert fl & O_ACCMODE == acc
        assert not fl & O_NONBLOCK
        fd = proc.mq_open(NAME, acc | O_NONBLOCK)
        assert proc.fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK) == acc | O_NONBLOCK


def test_nonblock_shared_between_fcntl_and_getsetattr(proc: Proc) -> None:
    fd = create(proc)
    proc.fcntl(fd, F_SETFL, proc.fcntl(fd, F_GETFL) | O_NONBLOCK)
    assert proc.mq_getattr(fd).flags == O_NONBLOCK
    with expect_errno(EAGAIN):
        proc.mq_receive(fd, MSGSIZE)
    proc.mq_setattr(fd, MqAttr(0, 0, 0, 0))
    assert not proc.fcntl(fd, F_GETFL) & O_NONBLOCK
    proc.mq_setattr(fd, MqAttr(O_NONBLOCK, 0, 0, 0))
    assert proc.fcntl(fd, F_GETFL) & O_NONBLOCK


def test_dup_shares_the_queue(proc: Proc) -> None:
    fd = create(proc)
    d = proc.dup(fd)
    proc.mq_send(d, b"via dup", 2)
    proc.mq_close(fd)
    assert proc.mq_receive(d, MSGSIZE) == (b"via dup", 2)


def test_close_then_ebadf(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_close(fd)
    with expect_errno(EBADF):
        proc.mq_close(fd)
    with expect_errno(EBADF):
        proc.read_fd(fd, 10)


def test_lseek_set(proc: Proc) -> None:
    fd = create(proc)
    assert proc.lseek(fd, 5, 0) == 5
    assert proc.read_fd(fd, 5) == status()[5:10]



def test_mq_open_keeps_unknown_oflag_bits_and_getfl_is_unsigned(proc: Proc) -> None:
    """Found by the fuzzer: mq_open(2) keeps ``oflag`` in f_flags (dentry_open drops only O_CREAT,
    O_EXCL, O_NOCTTY and O_TRUNC), and fcntl(F_GETFL) returns f_flags, an *unsigned* int, as a long:
    bit 31 comes back as a large positive value, never as a "negative errno"."""
    name = proc.cstr("fuzz-getfl")
    fd = proc.sys("mq_open", name, 0x8000_0000 | 0o102, 0o600, 0)  # O_RDWR|O_CREAT|bit 31
    assert fd >= 0
    assert proc.sys("fcntl", fd, 3, 0) == 0x8000_0002  # F_GETFL: O_CREAT dropped
