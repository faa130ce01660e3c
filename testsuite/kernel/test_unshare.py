"""unshare(2) of the IPC namespace: the capability check, flag validation, and that the caller's
SysV objects are those of its new namespace only.

Linux counterpart: kernel/fork.c (``ksys_unshare``, ``check_unshare_flags``), kernel/nsproxy.c
(``unshare_nsproxy_namespaces``: CAP_SYS_ADMIN) and ipc/namespace.c (``copy_ipcs``). gVisor counterpart:
pkg/sentry/kernel/task_clone.go ``Unshare`` and test/syscalls/linux/msgqueue.cc (namespace ideas).

msgget is called by number so these tests do not depend on the SysV wrappers; on the sentry they
skip while the SysV engine is not registered (msgget gives ENOSYS).
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EINVAL, ENOENT, ENOSYS, EPERM
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target

KEY = 0x6B65726E  # "kern"
IPC_CREAT = 0o1000


def msgget(p: Proc, key: int, flags: int) -> int:
    ret = p.sys("msgget", key, flags)
    if ret == -ENOSYS and p.target.name == "sentry":
        pytest.skip("the sentry has no SysV message queues registered yet")
    return ret


def test_unshare_newipc_needs_cap_sys_admin(target: Target) -> None:
    user = Proc(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        user.unshare(CLONE_NEWIPC)
    root = Proc(target.spawn())
    root.drop_cap(CAP_SYS_ADMIN)
    with expect_errno(EPERM):
        root.unshare(CLONE_NEWIPC)
    capable = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_SYS_ADMIN))
    capable.unshare(CLONE_NEWIPC)


def test_unshare_flag_validation(proc: Proc) -> None:
    proc.unshare(0)
    with expect_errno(EINVAL):
        proc.unshare(0x1)  # a CSIGNAL bit: not an unshare flag
    with expect_errno(EINVAL):
        proc.call("unshare", 1 << 40)  # flags is an unsigned long: the high bits are invalid too


def test_key_from_the_old_namespace_is_not_visible(proc: Proc, target: Target) -> None:
    qid = msgget(proc, KEY, IPC_CREAT | 0o600)
    assert qid >= 0
    other = Proc(target.spawn())
    proc.unshare(CLONE_NEWIPC)
    assert msgget(proc, KEY, 0) == -ENOENT
    assert msgget(other, KEY, 0) == qid  # everyone else keeps the old namespace
    # The same key names a different queue in the new namespace.
    assert msgget(proc, KEY, IPC_CREAT | 0o600) >= 0
    assert msgget(proc, KEY, 0) >= 0
    assert msgget(other, KEY, 0) == qid


def test_ipc_namespace_is_per_thread_and_inherited(proc: Proc) -> None:
    qid = msgget(proc, KEY, IPC_CREAT | 0o600)
    th = proc.thread()
    proc.unshare(CLONE_NEWIPC)
    assert msgget(proc, KEY, 0) == -ENOENT
    assert msgget(th, KEY, 0) == qid  # unshare changed only the calling thread's namespace
    child = proc.fork()
    th2 = proc.thread()
    assert msgget(child, KEY, 0) == -ENOENT
    assert msgget(th2, KEY, 0) == -ENOENT


def test_fresh_namespace_starts_with_default_limits(proc: Proc, target: Target) -> None:
    # The per-namespace sysctls of the test's namespace can be changed without touching the new one.
    msgget(proc, KEY, IPC_CREAT | 0o600)
    default = int(target.read_file("/proc/sys/kernel/msgmax"))
    target.write_file("/proc/sys/kernel/msgmax", b"%d" % (default // 2))
    assert int(target.read_file("/proc/sys/kernel/msgmax")) == default // 2
    proc.unshare(CLONE_NEWIPC)
    assert int(target.read_file("/proc/sys/kernel/msgmax")) == default // 2  # the test's namespace
