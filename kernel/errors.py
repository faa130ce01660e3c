"""Syscall error transport inside the sentry.

Linux counterpart: the ``-errno`` return convention of kernel functions. gVisor counterpart:
pkg/errors/linuxerr (``*errors.Error`` values returned by syscall handlers).

Handlers and engines raise :class:`SysError`; the syscall entry (``Task.syscall``) turns it into the
negative return value. Exceptions are used instead of sentinel returns so that deep helpers (copy-in,
permission checks) can fail without threading error values through every call; success paths, which
dominate, pay nothing.
"""

from __future__ import annotations


class SysError(Exception):
    """A Linux errno (positive) raised by a syscall path; ERESTART* codes included."""

    __slots__ = ("errno",)

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno

    def __repr__(self) -> str:
        from mqsentry.abi.linux.errno import errno_name

        return f"SysError({errno_name(self.errno)})"

    __str__ = __repr__


class TaskBusyError(RuntimeError):
    """A host thread called ``Task.syscall`` on a task another host thread is inside a syscall of.

    It lives here rather than in kernel/task.py because that module is compiled by mypyc, which
    cannot compile a subclass of a builtin exception other than ``Exception`` itself."""
