"""A small libc-like layer over a target's task handle (raw syscalls, Linux errno values).

``Proc`` combines the core with the SysV and POSIX wrappers.
"""

from __future__ import annotations

from mqsentry.testsuite.libc.core import ProcCore
from mqsentry.testsuite.libc.errors import LinuxError, expect_errno
from mqsentry.testsuite.libc.posix import PosixMixin
from mqsentry.testsuite.libc.sysv import SysVMixin


class Proc(SysVMixin, PosixMixin, ProcCore):
    """A task handle with the raw-syscall core and the SysV and POSIX wrappers."""


__all__ = ["Proc", "ProcCore", "LinuxError", "expect_errno"]
