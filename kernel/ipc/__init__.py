"""Shared SysV IPC scaffolding: objects, permission checks and the per-namespace id/key registry.

Linux counterpart: ipc/util.c and ipc/util.h. gVisor counterpart: pkg/sentry/kernel/ipc.

The registry is generic over the object type so that message queues (``mqsentry.kernel.msgqueue``) and,
later, semaphore sets and shared-memory segments share one implementation of Linux's id allocation,
key table and permission rules.

Lock order: a mechanism's registry lock (``Registry.mu``) -> an object's lock (``Object.mu``).
"""

from mqsentry.kernel.ipc.object import S_IRUGO, S_IRWXUGO, S_IWUGO, Object, ipcperms, may_control
from mqsentry.kernel.ipc.registry import IPC_MIN_CYCLE, Registry

__all__ = ["Object", "Registry", "ipcperms", "may_control", "S_IRUGO", "S_IWUGO", "S_IRWXUGO",
           "IPC_MIN_CYCLE"]
