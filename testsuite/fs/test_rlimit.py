"""getrlimit/setrlimit/prlimit64: the do_prlimit rules for RLIMIT_NOFILE and RLIMIT_MSGQUEUE.

Linux counterpart: kernel/sys.c (prlimit64, do_prlimit, check_prlimit_permission, getrlimit,
setrlimit). gVisor counterpart: test/syscalls/linux/prlimit64.cc, rlimits.cc (ideas only).
"""

from __future__ import annotations

from mqsentry.abi.linux.capability import CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EFAULT, EINVAL, EPERM, ESRCH
from mqsentry.abi.linux.limits import NR_OPEN, RLIM_INFINITY, RLIMIT64, RLIMIT_MSGQUEUE, RLIMIT_NOFILE
from mqsentry.testsuite.fs import pack_rlimit
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target


def _has_sys_resource(proc: Proc) -> bool:
    """Whether the process may raise hard limits (a container's root may lack CAP_SYS_RESOURCE)."""
    return bool(proc.capget()[0] >> CAP_SYS_RESOURCE & 1)


def _getrlimit(proc: Proc, res: int) -> tuple[int, int]:
    p = proc.alloc(16)
    proc.call("getrlimit", res, p)
    return RLIMIT64.unpack(proc.read(p, 16))


def test_prlimit_roundtrip(proc: Proc) -> None:
    old = proc.prlimit(RLIMIT_NOFILE)
    assert old == _getrlimit(proc, RLIMIT_NOFILE)
    assert proc.prlimit(RLIMIT_NOFILE, (100, 200)) == old
    assert proc.prlimit(RLIMIT_NOFILE) == (100, 200)
    assert _getrlimit(proc, RLIMIT_NOFILE) == (100, 200)
    proc.call("setrlimit", RLIMIT_NOFILE, proc.buf(pack_rlimit(50, 150)))
    assert proc.prlimit(RLIMIT_NOFILE) == (50, 150)


def test_msgqueue_limit(proc: Proc) -> None:
    proc.prlimit(RLIMIT_MSGQUEUE, (4096, 8192))
    assert proc.prlimit(RLIMIT_MSGQUEUE) == (4096, 8192)
    if _has_sys_resource(proc):
        proc.prlimit(RLIMIT_MSGQUEUE, (RLIM_INFINITY, RLIM_INFINITY))
        assert _getrlimit(proc, RLIMIT_MSGQUEUE) == (RLIM_INFINITY, RLIM_INFINITY)
    else:
        with expect_errno(EPERM):
            proc.prlimit(RLIMIT_MSGQUEUE, (RLIM_INFINITY, RLIM_INFINITY))
        assert _getrlimit(proc, RLIMIT_MSGQUEUE) == (4096, 8192)


def test_soft_above_hard_einval(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.prlimit(RLIMIT_NOFILE, (300, 200))
    with expect_errno(EINVAL):
        proc.call("setrlimit", RLIMIT_MSGQUEUE, proc.buf(pack_rlimit(2, 1)))


def test_nofile_above_nr_open_eperm(proc: Proc) -> None:
    with expect_errno(EPERM):
        proc.prlimit(RLIMIT_NOFILE, (1024, NR_OPEN + 1))
    with expect_errno(EPERM):
        proc.prlimit(RLIMIT_NOFILE, (RLIM_INFINITY, RLIM_INFINITY))
    # soft > hard is checked first
    with expect_errno(EINVAL):
        proc.prlimit(RLIMIT_NOFILE, (NR_OPEN + 2, NR_OPEN + 1))
    if _has_sys_resource(proc):
        proc.prlimit(RLIMIT_NOFILE, (NR_OPEN, NR_OPEN))
        assert proc.prlimit(RLIMIT_NOFILE) == (NR_OPEN, NR_OPEN)


def test_raise_hard_needs_cap_sys_resource(proc: Proc) -> None:
    proc.prlimit(RLIMIT_NOFILE, (100, 200))
    proc.drop_cap(CAP_SYS_RESOURCE)
    # Lowering, and moving the soft limit up to the hard one, are allowed.
    proc.prlimit(RLIMIT_NOFILE, (150, 180))
    proc.prlimit(RLIMIT_NOFILE, (180, 180))
    with expect_errno(EPERM):
        proc.prlimit(RLIMIT_NOFILE, (180, 181))
    proc.prlimit(RLIMIT_MSGQUEUE, (10, 10))
    with expect_errno(EPERM):
        proc.prlimit(RLIMIT_MSGQUEUE, (10, 11))
    assert proc.prlimit(RLIMIT_NOFILE) == (180, 180)


def test_bad_resource_and_pointers(target: Target, proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.prlimit(16)
    with expect_errno(EINVAL):
        proc.call("getrlimit", 16, proc.alloc(16))
    with expect_errno(EFAULT):
        proc.call("prlimit64", 0, RLIMIT_NOFILE, target.bad_addr, 0)
    with expect_errno(EFAULT):
        proc.call("prlimit64", 0, RLIMIT_NOFILE, 0, target.bad_addr)
    with expect_errno(EFAULT):
        proc.call("getrlimit", RLIMIT_NOFILE, target.bad_addr)
    with expect_errno(EFAULT):
        proc.call("setrlimit", RLIMIT_NOFILE, target.bad_addr)
    # setrlimit copies the struct in before it looks at the resource.
    with expect_errno(EFAULT):
        proc.call("setrlimit", 99, target.bad_addr)
    with expect_errno(EINVAL):
        proc.call("setrlimit", 99, proc.buf(pack_rlimit(1, 1)))
    # A failed set changes nothing and leaves old_rlim untouched.
    before = proc.prlimit(RLIMIT_NOFILE)
    out = proc.buf(b"\xaa" * 16)
    assert proc.sys("prlimit64", 0, RLIMIT_NOFILE, proc.buf(pack_rlimit(9, 8)), out) == -EINVAL
    assert proc.read(out, 16) == b"\xaa" * 16
    assert proc.prlimit(RLIMIT_NOFILE) == before


def test_prlimit_other_process(target: Target, proc: Proc) -> None:
    child = proc.fork()
    proc.prlimit(RLIMIT_NOFILE, (64, 128), pid=child.pid)
    assert child.prlimit(RLIMIT_NOFILE) == (64, 128)
    # fork copies the limits
    proc.prlimit(RLIMIT_MSGQUEUE, (1000, 2000))
    child2 = proc.fork()
    assert child2.prlimit(RLIMIT_MSGQUEUE) == (1000, 2000)
    with expect_errno(ESRCH):
        proc.prlimit(RLIMIT_NOFILE, pid=0x3FFFFFF0)
    # Another user's process needs CAP_SYS_RESOURCE.
    alice = proc.__class__(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        alice.prlimit(RLIMIT_NOFILE, pid=proc.pid)
    if _has_sys_resource(proc):
        assert proc.prlimit(RLIMIT_NOFILE, pid=alice.pid)[0] > 0
    else:
        with expect_errno(EPERM):
            proc.prlimit(RLIMIT_NOFILE, pid=alice.pid)
    # A process with the same ids may touch it without the capability.
    bob = proc.__class__(target.spawn(uid=1000, gid=1000))
    assert bob.prlimit(RLIMIT_NOFILE, pid=alice.pid) == alice.prlimit(RLIMIT_NOFILE)


def test_rlimit_shared_by_threads(proc: Proc) -> None:
    th = proc.thread()
    th.prlimit(RLIMIT_NOFILE, (77, 99))
    assert proc.prlimit(RLIMIT_NOFILE) == (77, 99)
