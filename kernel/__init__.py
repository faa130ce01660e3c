"""The sentry kernel (gVisor: pkg/sentry/kernel; Linux: kernel/ and ipc/).

Sub-packages and modules, from the bottom of the import order up: the primitives (``auth``
credentials, ``ktime`` clocks, ``waiter`` wait queues, ``memory`` guest memory, ``errors``,
``context`` and ``ipc_sysctl`` interfaces), the IPC engines (``ipc`` the shared SysV registry,
``msgqueue`` SysV message queues, ``mq`` POSIX message queues), the kernel core (``kernel``,
``task``, ``signals``, ``ipc_namespace``) and, above the syscall handlers, ``platform``.

Importing this package imports none of them (a leaf such as ``mqsentry.kernel.waiter`` stays cheap, and the
layers below the core can live here without a cycle). ``Kernel`` and friends are resolved on first
access (PEP 562); ``mqsentry.kernel.Kernel`` is the wired kernel of :mod:`mqsentry.boot`, the same
as ``from mqsentry import Kernel``, which new code should use::

    from mqsentry import Kernel
    k = Kernel(arch="amd64")
    t = k.new_task(uid=0, gid=0)
    ret = t.syscall(nr, a0, a1, ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqsentry.boot import Kernel
    from mqsentry.kernel.ktime import Clock, ManualClock, RealtimeClock
    from mqsentry.kernel.memory import AddressSpace, Memory, MemoryFault
    from mqsentry.kernel.task import Task, TaskBusyError, ThreadGroup

__all__ = ["Kernel", "Task", "TaskBusyError", "ThreadGroup", "Clock", "ManualClock", "RealtimeClock", "AddressSpace",
           "Memory", "MemoryFault"]



def __getattr__(name: str) -> Any:
    # Explicit (not importlib) so that the import graph shows these edges; none of these modules
    # imports this package's namespace, so there is no cycle.
    if name == "Kernel":
        from mqsentry.boot import Kernel

        return Kernel
    if name in ("Task", "TaskBusyError", "ThreadGroup"):
        from mqsentry.kernel import task

        return getattr(task, name)
    if name in ("Clock", "ManualClock", "RealtimeClock"):
        from mqsentry.kernel import ktime

        return getattr(ktime, name)
    if name in ("AddressSpace", "Memory", "MemoryFault"):
        from mqsentry.kernel import memory

        return getattr(memory, name)
    raise AttributeError(f"module 'mqsentry.kernel' has no attribute {name!r}")
