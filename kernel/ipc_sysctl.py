"""The per-IPC-namespace sysctls: SysV msg limits and POSIX mqueue limits, with their bounds.

Linux counterpart: the sysctl fields of ``struct ipc_namespace`` (include/linux/ipc_namespace.h),
ipc/ipc_sysctl.c and ipc/mq_sysctl.c (``proc_dointvec_minmax`` bounds, ``ipc_permissions``).
gVisor counterpart: the limits fields of pkg/sentry/kernel/ipc_namespace.go and
pkg/sentry/fsimpl/proc/tasks_sys.go.

:class:`IPCSysctls` is the part of an IPC namespace the engines read (``mqsentry.kernel.msgqueue``,
``mqsentry.kernel.mq`` and ``mqsentry.fs.mqfs``), so they need not import the namespace itself, which sits
above them and owns their registries. :class:`~mqsentry.kernel.ipc_namespace.IPCNamespace` extends it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mqsentry.abi.linux.errno import EACCES, EINVAL
from mqsentry.abi.linux.mqueue import (
    DFLT_MSG,
    DFLT_MSGMAX,
    DFLT_MSGSIZE,
    DFLT_MSGSIZEMAX,
    DFLT_QUEUESMAX,
    HARD_MSGMAX,
    HARD_MSGSIZEMAX,
    MIN_MSGMAX,
    MIN_MSGSIZEMAX,
)
from mqsentry.abi.linux.msgqueue import MSGMAX, MSGMNB, MSGMNI
from mqsentry.kernel.auth.user_namespace import ROOT_USER_NAMESPACE, UserNamespace
from mqsentry.kernel.errors import SysError

INT_MAX = 0x7FFF_FFFF
#: ipc_mni without the ``ipcmni_extend`` boot parameter.
IPC_MNI = 32768


@dataclass(frozen=True, slots=True)
class SysctlSpec:
    """One per-IPC-namespace sysctl: its attribute, bounds and /proc mode."""

    attr: str
    lo: int
    hi: int
    mode: int = 0o644


#: name -> spec. Bounds are Linux's ``extra1``/``extra2`` (proc_dointvec_minmax).
SYSCTLS: dict[str, SysctlSpec] = {
    "kernel.msgmax": SysctlSpec("msg_ctlmax", 0, INT_MAX),
    "kernel.msgmnb": SysctlSpec("msg_ctlmnb", 0, INT_MAX),
    "kernel.msgmni": SysctlSpec("msg_ctlmni", 0, IPC_MNI),
    "kernel.msg_next_id": SysctlSpec("msg_next_id", 0, INT_MAX, 0o444),  # reads -1 when unset; writes need >= 0
    "kernel.auto_msgmni": SysctlSpec("auto_msgmni", 0, 1),
    "fs.mqueue.queues_max": SysctlSpec("mq_queues_max", -(INT_MAX + 1), INT_MAX),
    "fs.mqueue.msg_max": SysctlSpec("mq_msg_max", MIN_MSGMAX, HARD_MSGMAX),
    "fs.mqueue.msgsize_max": SysctlSpec("mq_msgsize_max", MIN_MSGSIZEMAX, HARD_MSGSIZEMAX),
    "fs.mqueue.msg_default": SysctlSpec("mq_msg_default", MIN_MSGMAX, HARD_MSGMAX),
    "fs.mqueue.msgsize_default": SysctlSpec("mq_msgsize_default", MIN_MSGSIZEMAX, HARD_MSGSIZEMAX),
}


class IPCSysctls:
    """The sysctls of one IPC namespace.

    Sysctls are plain integer attributes guarded by ``sysctl_mu`` for writes; readers on hot paths read
    them without the lock (a single attribute read is atomic in CPython, and Linux reads them with
    READ_ONCE semantics too). ``sysctl_mu`` is a leaf lock.
    """

    def __init__(self) -> None:
        self.sysctl_mu = threading.Lock()
        #: The user namespace owning this IPC namespace (``ns->user_ns``); set before the namespace
        #: is used and not changed after.
        self.user_ns: UserNamespace = ROOT_USER_NAMESPACE
        # SysV msg (ipc/msg.c msg_init_ns).
        self.msg_ctlmax = MSGMAX
        self.msg_ctlmnb = MSGMNB
        self.msg_ctlmni = MSGMNI
        self.msg_next_id = -1
        self.auto_msgmni = 0
        # POSIX mqueue (ipc/mqueue.c mq_init_ns).
        self.mq_queues_max = DFLT_QUEUESMAX
        self.mq_msg_max = DFLT_MSGMAX
        self.mq_msgsize_max = DFLT_MSGSIZEMAX
        self.mq_msg_default = DFLT_MSG
        self.mq_msgsize_default = DFLT_MSGSIZE

    def sysctl_get(self, name: str) -> int:
        spec = SYSCTLS.get(name)
        if spec is None:
            raise KeyError(name)
        if name == "kernel.auto_msgmni":
            return 0  # Linux: the knob has no effect and always reads 0
        return int(getattr(self, spec.attr))

    def sysctl_set(self, name: str, value: int) -> None:
        """Set a sysctl as a privileged writer would; out-of-range -> SysError(EINVAL)."""
        spec = SYSCTLS.get(name)
        if spec is None:
            raise KeyError(name)
        if not spec.lo <= value <= spec.hi:
            raise SysError(EINVAL)
        if name == "kernel.auto_msgmni":
            return  # Linux only logs that the knob is obsolete
        with self.sysctl_mu:
            setattr(self, spec.attr, value)

    def sysctl_check_write(self, name: str, euid: int, restore_capable: bool) -> None:
        """/proc/sys write permission (ipc/ipc_sysctl.c ``ipc_permissions``): the namespace's root uid
        gets the owner bits of 0644; msg_next_id (0444) becomes 0666 for a task with CAP_SYS_ADMIN or
        CAP_CHECKPOINT_RESTORE. A denied open is EACCES."""
        spec = SYSCTLS[name]
        if spec.mode == 0o444:
            if not restore_capable:
                raise SysError(EACCES)
            return
        if euid != 0:  # the init user namespace's root uid
            raise SysError(EACCES)


__all__ = ["IPCSysctls", "SysctlSpec", "SYSCTLS", "INT_MAX", "IPC_MNI"]
