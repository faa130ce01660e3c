"""The sentry kernel (gVisor: pkg/sentry/kernel; Linux: kernel/ and ipc/).

``Kernel`` is the embedded kernel and ``Task`` a thread in it::

    from mqsentry.kernel import Kernel
    k = Kernel(arch="amd64")
    t = k.new_task(uid=0, gid=0)
    ret = t.syscall(nr, a0, a1, ...)

Sub-packages mirror gVisor: ``kernel.ipc`` (shared SysV object registry), ``kernel.msgqueue`` (SysV
message queues), ``kernel.mq`` (POSIX message queues), ``kernel.auth`` (credentials).
"""

from mqsentry.kernel.kernel import Kernel
from mqsentry.kernel.ktime import Clock, ManualClock, RealtimeClock
from mqsentry.kernel.memory import AddressSpace, Memory, MemoryFault
from mqsentry.kernel.task import Task, ThreadGroup

__all__ = ["Kernel", "Task", "ThreadGroup", "Clock", "ManualClock", "RealtimeClock", "AddressSpace", "Memory",
           "MemoryFault"]
