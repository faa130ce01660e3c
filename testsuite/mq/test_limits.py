"""Queue-count and memory limits: fs.mqueue.queues_max (ENOSPC, checked before the attributes,
bypassed by CAP_SYS_RESOURCE), RLIMIT_MSGQUEUE (EMFILE, cost maxmsg*(msgsize+96), equality allowed,
charged per user, released at unlink + last close, no capability bypass), RLIMIT_NOFILE.

Linux counterpart: ipc/mqueue.c mqueue_create_attr/mqueue_get_inode/mqueue_evict_inode,
do_mq_open (get_unused_fd_flags first). gVisor counterpart: none (gVisor enforces neither limit:
divergence D9 of docs/gvisor-divergences.md).

On native, RLIMIT_MSGQUEUE charges are per user across the whole machine, so every test here that
creates queues under a lowered limit uses a uid of its own (:func:`mqsentry.testsuite.mq.unique_uid`).
"""

from __future__ import annotations

import os

from mqsentry.abi.linux.capability import ALL_CAPS, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EINVAL, EMFILE, ENOENT, ENOSPC
from mqsentry.abi.linux.file import O_CREAT, O_RDONLY, O_RDWR
from mqsentry.abi.linux.limits import RLIMIT_MSGQUEUE, RLIMIT_NOFILE
from mqsentry.abi.linux.mqueue import MQ_BYTES_MAX
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSGSIZE, cost, create, mountpoint, require_cap, unique_uid, user
from mqsentry.testsuite.targets.base import Target

# -- queues_max -------------------------------------------------------------------------------------------------


def test_queues_max_enospc(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"2\n")
    proc.drop_cap(CAP_SYS_RESOURCE)
    create(proc, "/a")
    create(proc, "/b")
    with expect_errno(ENOSPC):
        create(proc, "/c")
    # The count is checked before the attributes.
    with expect_errno(ENOSPC):
        create(proc, "/c", attr=(0, 0))
    with expect_errno(ENOSPC):
        create(proc, "/c", attr=(MAXMSG + 1, MSGSIZE + 1))
    # Opening an existing queue, even with O_CREAT, is not a creation.
    proc.mq_open("/a", O_RDWR | O_CREAT, 0o600)
    # Missing queue without O_CREAT: ENOENT comes first.
    with expect_errno(ENOENT):
        proc.mq_open("/c", O_RDWR)


def test_queues_max_counts_until_last_close(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"1\n")
    proc.drop_cap(CAP_SYS_RESOURCE)
    fd = create(proc, "/a")
    proc.mq_unlink("/a")
    with expect_errno(ENOSPC):
        create(proc, "/b")
    proc.mq_close(fd)
    proc.mq_close(create(proc, "/b"))


def test_queues_max_zero(target: Target) -> None:
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"0\n")
    p = user(target)
    with expect_errno(ENOSPC):
        create(p)


def test_queues_max_bypassed_by_cap_sys_resource(target: Target, proc: Proc) -> None:
    require_cap(proc, CAP_SYS_RESOURCE)
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"1\n")
    for i in range(4):
        create(proc, f"/q{i}", attr=(1, 16))


# -- RLIMIT_MSGQUEUE --------------------------------------------------------------------------------------------


def limited_user(target: Target, limit: int, caps: int | None = None) -> Proc:
    p = user(target, caps=caps)
    p.prlimit(RLIMIT_MSGQUEUE, (limit, limit))
    return p


def test_rlimit_cost_and_equality(target: Target) -> None:
    assert cost(4, 16) == 448 and cost(1, 1) == 97
    p = limited_user(target, cost(4, 16) + cost(1, 1))
    create(p, "/a", attr=(4, 16))
    create(p, "/b", attr=(1, 1))  # exactly at the limit
    with expect_errno(EMFILE):
        create(p, "/c", attr=(1, 1))


def test_rlimit_one_byte_short(target: Target) -> None:
    p = user(target)
    p.prlimit(RLIMIT_MSGQUEUE, (cost(2, 1000) - 1, cost(2, 1000)))
    with expect_errno(EMFILE):
        create(p, attr=(2, 1000))
    with expect_errno(ENOENT):
        p.mq_open("/q", O_RDONLY)
    p.prlimit(RLIMIT_MSGQUEUE, (cost(2, 1000), cost(2, 1000)))
    create(p, attr=(2, 1000))


def test_rlimit_default_fits_nine_default_queues(target: Target) -> None:
    p = limited_user(target, MQ_BYTES_MAX)
    assert cost(MAXMSG, MSGSIZE) == 82880
    for i in range(9):
        create(p, f"/q{i}")
    with expect_errno(EMFILE):
        create(p, "/q9")


def test_rlimit_released_at_unlink_and_last_close(target: Target) -> None:
    c = cost(4, 16)
    p = limited_user(target, c)
    fd = create(p, "/a", attr=(4, 16))
    # Closed but still linked: still charged.
    p.mq_close(fd)
    with expect_errno(EMFILE):
        create(p, "/b", attr=(4, 16))
    p.mq_unlink("/a")
    fd = create(p, "/b", attr=(4, 16))
    # Unlinked but still open: still charged.
    p.mq_unlink("/b")
    with expect_errno(EMFILE):
        create(p, "/c", attr=(4, 16))
    p.mq_close(fd)
    create(p, "/c", attr=(4, 16))


def test_rlimit_charged_to_the_user(target: Target) -> None:
    """Two processes of one user share one charge; the creator, not the opener, pays."""
    uid = unique_uid()
    c = cost(4, 16)
    p1 = user(target, uid)
    p1.umask(0)
    p1.prlimit(RLIMIT_MSGQUEUE, (c, c))
    p2 = user(target, uid)
    p2.prlimit(RLIMIT_MSGQUEUE, (c, c))
    create(p1, "/a", attr=(4, 16))
    with expect_errno(EMFILE):
        create(p2, "/b", attr=(4, 16))
    # Another user is charged separately, and may open the first user's queue.
    p3 = limited_user(target, c)
    p3.mq_open("/a", O_RDWR)
    create(p3, "/b", attr=(4, 16))


def test_rlimit_no_capability_bypass(target: Target) -> None:
    p = limited_user(target, 1000, caps=ALL_CAPS)
    with expect_errno(EMFILE):
        create(p)
    create(p, attr=(1, 100))


def test_root_is_limited_too(proc: Proc) -> None:
    proc.prlimit(RLIMIT_MSGQUEUE, (1000, 1000))
    with expect_errno(EMFILE):
        create(proc)


def test_rlimit_checked_after_attributes_and_queues_max(target: Target) -> None:
    p = limited_user(target, 100)
    with expect_errno(EINVAL):
        create(p, attr=(0, 1))
    with expect_errno(EINVAL):
        create(p, attr=(MAXMSG + 1, 1))
    with expect_errno(EMFILE):
        create(p, attr=(2, 1))
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"0\n")
    with expect_errno(ENOSPC):
        create(p, attr=(2, 1))


# -- RLIMIT_NOFILE ----------------------------------------------------------------------------------------------


def test_nofile_limit_comes_first(proc: Proc) -> None:
    """The descriptor is allocated before the name is looked up."""
    fd = create(proc)
    # Every descriptor below fd is in use (it was the lowest free one), so fd + 1 slots are full.
    proc.prlimit(RLIMIT_NOFILE, (fd + 1, 4096))
    with expect_errno(EMFILE):
        proc.mq_open("/q", O_RDONLY)
    with expect_errno(EMFILE):
        proc.mq_open("/missing", O_RDONLY)
    with expect_errno(EMFILE):
        create(proc, "/new")
    proc.mq_close(fd)
    proc.mq_open("/q", O_RDONLY)


# -- the fs.mqueue sysctls --------------------------------------------------------------------------------------

SYSCTL = "/proc/sys/fs/mqueue/"


def test_sysctl_defaults(target: Target) -> None:
    want = {"queues_max": 256, "msg_max": 10, "msgsize_max": 8192, "msg_default": 10, "msgsize_default": 8192}
    for name, value in want.items():
        assert target.read_file(SYSCTL + name) == b"%d\n" % value


def test_sysctl_ranges(target: Target) -> None:
    ranges = {"msg_max": (1, 65536), "msg_default": (1, 65536),
              "msgsize_max": (128, 16 << 20), "msgsize_default": (128, 16 << 20)}
    for name, (lo, hi) in ranges.items():
        for bad in (lo - 1, hi + 1):
            with expect_errno(EINVAL):
                target.write_file(SYSCTL + name, b"%d\n" % bad)
        for good in (lo, hi):
            target.write_file(SYSCTL + name, b"%d\n" % good)
            assert target.read_file(SYSCTL + name) == b"%d\n" % good


def test_queues_max_applies_to_fs_create(target: Target, proc: Proc) -> None:
    m = mountpoint(target, proc)
    target.write_file(SYSCTL + "queues_max", b"0\n")
    proc.drop_cap(CAP_SYS_RESOURCE)
    with expect_errno(ENOSPC):
        proc.openat(os.path.join(m, "new"), O_RDWR | O_CREAT, 0o600)
