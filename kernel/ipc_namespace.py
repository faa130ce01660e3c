"""IPC namespaces: the per-namespace SysV registries, POSIX queue registry and their sysctls.

Linux counterpart: ``struct ipc_namespace`` (include/linux/ipc_namespace.h), ipc/namespace.c
(``create_ipc_ns``), ipc/msg.c ``msg_init_ns`` and ipc/mqueue.c ``mq_init_ns``. gVisor counterpart:
pkg/sentry/kernel/ipc_namespace.go (``IPCNamespace`` with its ``queues`` and ``posixQueues``).

The sysctls are the :class:`~mqsentry.kernel.ipc_sysctl.IPCSysctls` this class extends (the engines
read them through that type). The registries are typed fields created with the namespace: the SysV
message queues (``msgqueues``) directly, the POSIX queues (``posix_queues``, the
:class:`mqsentry.kernel.mq.Registry` interface) by the factory the kernel was given by the
composition root (``mqsentry.fs.mqfs.MqueueFilesystem`` in :mod:`mqsentry.boot`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mqsentry.kernel.ipc_sysctl import INT_MAX, IPC_MNI, SYSCTLS, IPCSysctls, SysctlSpec
from mqsentry.kernel.mq.registry import Registry as PosixRegistry
from mqsentry.kernel.msgqueue.registry import Registry as MsgRegistry

if TYPE_CHECKING:
    from mqsentry.kernel.kernel import Kernel

#: Builds the POSIX queue registry of a new namespace (``mq_init_ns``).
PosixRegistryFactory = Callable[["IPCNamespace"], PosixRegistry]


class IPCNamespace(IPCSysctls):
    """One IPC namespace.

    Guarded by ``sysctl_mu``: writes of the sysctl attributes (see :class:`IPCSysctls`). Immutable
    after construction: ``kernel``, ``creator_uid``, ``msgqueues``, ``posix_queues``. ``dead`` is set
    once, by :meth:`Kernel.ipc_ns_released <mqsentry.kernel.kernel.Kernel.ipc_ns_released>`.
    """

    def __init__(self, kernel: Kernel, creator_uid: int, posix_registry: PosixRegistryFactory) -> None:
        super().__init__()
        self.kernel = kernel
        self.creator_uid = creator_uid
        self.dead = False
        #: References a host holds for members the sentry does not see (the platform pins a namespace
        #: while host processes are in it); a pinned namespace outlives its last sentry task.
        self.pins = 0
        self.msgqueues = MsgRegistry(self)
        self.posix_queues: PosixRegistry = posix_registry(self)


__all__ = ["IPCNamespace", "PosixRegistryFactory", "SYSCTLS", "SysctlSpec", "INT_MAX", "IPC_MNI"]
