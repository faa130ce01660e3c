"""mqsentry: Linux's SysV and POSIX message queues served by a Python port of gVisor's sentry.

The repository root is this package's directory: ``kernel/``, ``syscalls/``, ``abi/``, ``fs/``,
``testsuite/`` and ``tools/`` install as ``mqsentry.kernel``, ``mqsentry.syscalls`` and so on.

``from mqsentry import Kernel`` gives a fully wired kernel (syscall tables, filesystems, IPC
engines), built by the composition root :mod:`mqsentry.boot`. The names are resolved lazily (PEP 562)
so that importing one leaf module, such as
``mqsentry.abi.linux.errno``, does not import the whole sentry.

Linux counterpart: none (packaging). gVisor counterpart: the ``runsc`` binary, whose ``boot`` package
is the composition root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from mqsentry.boot import Kernel
    from mqsentry.kernel.ktime import ManualClock, RealtimeClock
    from mqsentry.kernel.task import Task

__all__ = ["Kernel", "Task", "ManualClock", "RealtimeClock", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Kernel":
        from mqsentry.boot import Kernel  # the composition root

        return Kernel
    if name == "Task":
        from mqsentry.kernel.task import Task

        return Task
    if name in ("ManualClock", "RealtimeClock"):
        from mqsentry.kernel import ktime

        return getattr(ktime, name)
    raise AttributeError(f"module 'mqsentry' has no attribute {name!r}")
