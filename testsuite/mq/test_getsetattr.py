"""mq_getsetattr (glibc mq_getattr/mq_setattr): old attributes, only O_NONBLOCK of the open file
description can change, EINVAL for other flag bits before EBADF, EFAULT both ways.

Linux counterpart: ipc/mqueue.c SYSCALL mq_getsetattr/do_mq_getsetattr. gVisor counterpart: the
refs/pull/6458 mq.cc GetAttrDefault, GetAttrNonDefault, SetAttr, AttrInvalid.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EAGAIN, EBADF, EFAULT, EINVAL
from mqsentry.abi.linux.file import O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.libc.posix import MqAttr
from mqsentry.testsuite.mq import MAXMSG, MSGSIZE, NAME, create
from mqsentry.testsuite.targets.base import Target

# -- gVisor (unmerged stack) ---------------------------------------------------------------------------------


def test_get_attr_default(proc: Proc) -> None:
    fd = create(proc)
    assert proc.mq_getattr(fd) == MqAttr(0, MAXMSG, MSGSIZE, 0)


def test_get_attr_non_default(proc: Proc) -> None:
    fd = create(proc, oflag=O_RDWR | O_NONBLOCK, attr=(5, 500))
    proc.mq_send(fd, b"", 0)
    assert proc.mq_getattr(fd) == MqAttr(O_NONBLOCK, 5, 500, 1)


def test_set_attr(proc: Proc) -> None:
    fd = create(proc)
    old = proc.mq_setattr(fd, MqAttr(O_NONBLOCK, 5, 500, 500))
    assert old == MqAttr(0, MAXMSG, MSGSIZE, 0)
    assert proc.mq_getattr(fd) == MqAttr(O_NONBLOCK, MAXMSG, MSGSIZE, 0)
    with expect_errno(EAGAIN):
        proc.mq_receive(fd, MSGSIZE)
    old = proc.mq_setattr(fd, MqAttr(0, 1, 1, 1))
    assert old == MqAttr(O_NONBLOCK, MAXMSG, MSGSIZE, 0)
    assert proc.mq_getattr(fd).flags == 0


def test_attr_invalid(proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EINVAL):
        proc.mq_getsetattr(fd, MqAttr(~O_NONBLOCK, 0, 0, 0), want_old=False)
    proc.mq_close(fd)
    proc.mq_unlink(NAME)
    with expect_errno(EBADF):
        proc.mq_getsetattr(fd, MqAttr(O_NONBLOCK, 0, 0, 0), want_old=False)
    with expect_errno(EBADF):
        proc.mq_getattr(fd)


# -- Linux rules -----------------------------------------------------------------------------------------------


def test_flags_other_than_nonblock_are_einval(proc: Proc) -> None:
    fd = create(proc)
    for flags in (O_NONBLOCK | O_RDWR, O_WRONLY, 0o100, 1 << 40, -1):
        with expect_errno(EINVAL):
            proc.mq_setattr(fd, MqAttr(flags, MAXMSG, MSGSIZE, 0))
    assert proc.mq_getattr(fd).flags == 0


def test_einval_before_ebadf(proc: Proc) -> None:
    for bad_fd in (-1, 0x7FFF):
        with expect_errno(EINVAL):
            proc.mq_getsetattr(bad_fd, MqAttr(O_NONBLOCK | O_RDWR, 0, 0, 0))
        with expect_errno(EBADF):
            proc.mq_getsetattr(bad_fd, MqAttr(O_NONBLOCK, 0, 0, 0))
        with expect_errno(EBADF):
            proc.mq_getsetattr(bad_fd, None, want_old=False)


def test_efault(target: Target, proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EFAULT):
        proc.mq_getsetattr(fd, target.bad_addr)
    with expect_errno(EFAULT):
        proc.mq_getsetattr(fd, proc.end_of_mapping(MQ_ATTR.size))
    # The new attributes are copied in before the descriptor is looked up.
    with expect_errno(EFAULT):
        proc.mq_getsetattr(-1, target.bad_addr)
    with expect_errno(EFAULT):
        proc.mq_getsetattr(fd, None, want_old=target.bad_addr)
    # A failed copy-out of the old attributes does not undo the change.
    with expect_errno(EFAULT):
        proc.mq_getsetattr(fd, MqAttr(O_NONBLOCK, 0, 0, 0), want_old=target.bad_addr)
    assert proc.mq_getattr(fd).flags == O_NONBLOCK


def test_both_null(proc: Proc) -> None:
    fd = create(proc)
    assert proc.mq_getsetattr(fd, None, want_old=False) is None


def test_old_attr_reserved_fields_zeroed(proc: Proc) -> None:
    fd = create(proc, attr=(3, 33))
    proc.mq_send(fd, b"abc", 1)
    p = proc.buf(b"\xff" * MQ_ATTR.size)
    proc.mq_getsetattr(fd, None, want_old=p)
    raw = proc.read(p, MQ_ATTR.size)
    assert MQ_ATTR.unpack(raw) == (0, 3, 33, 1)
    assert raw[32:] == bytes(32)


def test_reserved_input_fields_ignored(proc: Proc) -> None:
    fd = create(proc)
    new = proc.buf(MQ_ATTR.pack(O_NONBLOCK, 0, 0, 0)[:32] + b"\xff" * 32)
    proc.mq_getsetattr(fd, new, want_old=False)
    assert proc.mq_getattr(fd).flags == O_NONBLOCK


def test_curmsgs_tracks_queue(proc: Proc) -> None:
    fd = create(proc)
    for i in range(1, 4):
        proc.mq_send(fd, b"x", i)
        assert proc.mq_getattr(fd).curmsgs == i
    proc.mq_receive(fd, MSGSIZE)
    assert proc.mq_getattr(fd).curmsgs == 2


def test_nonblock_is_per_description(proc: Proc) -> None:
    fd = create(proc)
    dup = proc.dup(fd)
    other = proc.mq_open(NAME, O_RDONLY)
    proc.mq_setattr(fd, MqAttr(O_NONBLOCK, 0, 0, 0))
    assert proc.mq_getattr(dup).flags == O_NONBLOCK
    assert proc.mq_getattr(other).flags == 0
    with expect_errno(EAGAIN):
        proc.mq_receive(dup, MSGSIZE)


def test_getattr_works_on_any_access_mode(proc: Proc) -> None:
    create(proc, attr=(4, 40))
    for acc in (O_RDONLY, O_WRONLY, O_RDWR):
        fd = proc.mq_open(NAME, acc)
        assert proc.mq_getattr(fd) == MqAttr(0, 4, 40, 0)
        proc.mq_setattr(fd, MqAttr(O_NONBLOCK, 0, 0, 0))
        assert proc.mq_getattr(fd).flags == O_NONBLOCK
