"""A small libc-like layer over a target's task handle (raw syscalls, Linux errno values).

``Proc`` combines the core with the SysV and POSIX wrappers when those modules exist.
"""

from __future__ import annotations

from mqsentry.testsuite.libc.core import ProcCore
from mqsentry.testsuite.libc.errors import LinuxError, expect_errno

_mixins: list[type] = []
try:
    from mqsentry.testsuite.libc.sysv import SysVMixin

    _mixins.append(SysVMixin)
except ModuleNotFoundError as e:  # pragma: no cover - during bring-up only
    if e.name != "mqsentry.testsuite.libc.sysv":
        raise
try:
    from mqsentry.testsuite.libc.posix import PosixMixin

    _mixins.append(PosixMixin)
except ModuleNotFoundError as e:  # pragma: no cover - during bring-up only
    if e.name != "mqsentry.testsuite.libc.posix":
        raise

Proc = type("Proc", (*_mixins, ProcCore), {"__doc__": ProcCore.__doc__})

__all__ = ["Proc", "ProcCore", "LinuxError", "expect_errno"]
