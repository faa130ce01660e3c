"""The /proc files of the IPC subsystem: /proc/sys/kernel/msg*, /proc/sys/fs/mqueue/* and
/proc/sysvipc/msg.

Linux counterpart: ipc/ipc_sysctl.c, ipc/mq_sysctl.c (proc_dointvec_minmax text) and ipc/util.c
(``sysvipc_proc_show``). gVisor counterpart: pkg/sentry/fsimpl/proc/tasks_sys.go and sys.go.

Files are served as whole texts by :func:`read` and :func:`write`; the reader's IPC namespace decides
what is shown, as on Linux. The reader is a :class:`ProcTask` (what this package needs of a task).
"""

from __future__ import annotations

from typing import Protocol

from mqsentry.abi.linux.capability import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EINVAL, ENOENT
from mqsentry.kernel.context import TaskContext
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ipc_sysctl import SYSCTLS
from mqsentry.kernel.msgqueue.registry import Registry as MsgRegistry


class ProcNamespace(Protocol):
    """What /proc shows of an IPC namespace: its sysctls and SysV queues."""

    @property
    def msgqueues(self) -> MsgRegistry: ...

    def sysctl_get(self, name: str) -> int: ...

    def sysctl_set(self, name: str, value: int) -> None: ...

    def sysctl_check_write(self, name: str, euid: int, restore_capable: bool) -> None: ...


class ProcTask(TaskContext, Protocol):
    """The reading or writing task: its credentials and IPC namespace."""

    @property
    def ipc_ns(self) -> ProcNamespace: ...


#: The /proc/sysvipc files and how to produce them from the reader's namespace.
_SYSVIPC = {"/proc/sysvipc/msg": MsgRegistry.proc_text}


def _sysctl_name(path: str) -> str | None:
    if not path.startswith("/proc/sys/"):
        return None
    name = path[len("/proc/sys/"):].replace("/", ".")
    return name if name in SYSCTLS else None


def read(t: ProcTask, path: str) -> bytes:
    """The contents of ``path`` as ``t`` would read them; SysError(ENOENT) for unknown files."""
    name = _sysctl_name(path)
    if name is not None:
        return f"{t.ipc_ns.sysctl_get(name)}\n".encode()
    gen = _SYSVIPC.get(path)
    if gen is None:
        raise SysError(ENOENT)
    return gen(t.ipc_ns.msgqueues, t.creds.user_ns).encode()


def write(t: ProcTask, path: str, data: bytes) -> None:
    """Write a sysctl as ``t`` would (``echo N > path``): EACCES without permission, EINVAL for a
    value that is not an integer or is out of range (proc_dointvec_minmax)."""
    name = _sysctl_name(path)
    if name is None:
        raise SysError(ENOENT)
    c = t.creds
    t.ipc_ns.sysctl_check_write(name, c.euid, c.has_cap(CAP_SYS_ADMIN) or c.has_cap(CAP_CHECKPOINT_RESTORE))
    try:
        value = int(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise SysError(EINVAL) from None
    t.ipc_ns.sysctl_set(name, value)


__all__ = ["ProcNamespace", "ProcTask", "read", "write"]
