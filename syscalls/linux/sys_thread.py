"""Thread and namespace syscalls: exit, exit_group, unshare.

Linux counterpart: kernel/exit.c (``do_exit``, ``do_group_exit``), kernel/fork.c (``ksys_unshare``)
and ipc/namespace.c (``copy_ipcs``). gVisor counterpart: pkg/sentry/syscalls/linux/sys_thread.go and
pkg/sentry/kernel/task_clone.go (``Unshare``).
"""

from __future__ import annotations

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EINVAL, EPERM
from mqsentry.abi.linux.sched import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWIPC,
    CLONE_NEWNS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VM,
    UNSHARE_VALID,
)
from mqsentry.fs.vfs.context import unshare_newns
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, uint64
from mqsentry.syscalls.linux.table import Syscall

#: Flags that are valid and need no work in this model (no-ops for a single-threaded caller).
_TRIVIAL = CLONE_FILES | CLONE_FS | CLONE_SYSVSEM | CLONE_THREAD | CLONE_VM | CLONE_SIGHAND


def exit_(t: Task, status: int, *_: int) -> int:
    t.exit(int32(status) & 0xFF)
    return 0


def exit_group(t: Task, status: int, *_: int) -> int:
    t.exit_group(int32(status) & 0xFF)
    return 0


def unshare(t: Task, flags: int, *_: int) -> int:
    f = uint64(flags)
    if f & ~UNSHARE_VALID or f >> 32:
        raise SysError(EINVAL)
    if f & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) and len([x for x in t.tg.tasks if not x.exited]) > 1:
        raise SysError(EINVAL)
    wanted_ns = f & ~_TRIVIAL
    unsupported = wanted_ns & ~(CLONE_NEWIPC | CLONE_NEWNS)
    if unsupported:
        # Namespace kinds the sentry does not model (UTS, net, pid, user, cgroup, time).
        raise SysError(EINVAL)
    if wanted_ns and not t.creds.has_cap(CAP_SYS_ADMIN):
        raise SysError(EPERM)
    if f & CLONE_NEWNS:
        unshare_newns(t)
    if f & CLONE_NEWIPC:
        old, t.ipc_ns = t.ipc_ns, t.kernel.new_ipc_namespace(t)
        t.kernel.ipc_ns_released(old)
    return 0


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("exit", exit_), Syscall("exit_group", exit_group),
    Syscall("unshare", unshare, "partial", "CLONE_NEWIPC and CLONE_NEWNS; other namespace kinds give EINVAL"),
)}

__all__ = ["SYSCALLS"]
