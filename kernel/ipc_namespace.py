"""IPC namespaces: the per-namespace SysV registries, POSIX queue registry and their sysctls.

Linux counterpart: ``struct ipc_namespace`` (include/linux/ipc_namespace.h), ipc/namespace.c,
ipc/ipc_sysctl.c and ipc/mq_sysctl.c. gVisor counterpart: pkg/sentry/kernel/ipc_namespace.go.

Sysctls are plain integer attributes guarded by ``sysctl_mu``; readers on hot paths read them
without the lock (a single attribute read is atomic in CPython, and Linux reads them with
READ_ONCE semantics too). Registries are created by their packages (``kernel.msgqueue``,
``kernel.mq``) so this module stays free of engine imports at class-definition time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mqsentry.abi.linux.errno import EACCES, EINVAL
from mqsentry.abi.linux.mqueue import (DFLT_MSG, DFLT_MSGMAX, DFLT_MSGSIZE, DFLT_MSGSIZEMAX, DFLT_QUEUESMAX, HARD_MSGMAX,
                              HARD_MSGSIZEMAX, MIN_MSGMAX, MIN_MSGSIZEMAX)
from mqsentry.abi.linux.msgqueue import MSGMAX, MSGMNB, MSGMNI
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.kernel.kernel import Kernel

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


class IPCNamespace:
    """One IPC namespace.

    Guarded by ``sysctl_mu``: writes of the sysctl attributes. Immutable after construction:
    ``kernel``, ``creator_uid``, ``msgqueues``. ``posix_queues`` is set once by
    ``kernel.mq`` on first use (guarded by ``sysctl_mu`` for that one assignment).
    """

    #: Factories other packages register: name -> fn(ns) -> registry (keeps this module engine-free).
    _registry_factories: dict[str, Callable[["IPCNamespace"], Any]] = {}

    def __init__(self, kernel: "Kernel", creator_uid: int = 0) -> None:
        self.kernel = kernel
        self.creator_uid = creator_uid
        self.sysctl_mu = threading.Lock()
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
        self.dead = False
        for name, factory in self._registry_factories.items():
            setattr(self, name, factory(self))

    @classmethod
    def register_factory(cls, attr: str, factory: Callable[["IPCNamespace"], Any]) -> None:
        """Let an IPC package attach its per-namespace registry as ``ns.<attr>``."""
        cls._registry_factories[attr] = factory

    # -- sysctls -----------------------------------------------------------------------------------
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
