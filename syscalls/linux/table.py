"""Numbered syscall tables for amd64 and arm64 (and the 32-bit ABIs of syscalls/linux/compat32.py).

Linux counterpart: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
gVisor counterpart: pkg/sentry/kernel/syscalls.go (``SyscallTable``) and
pkg/sentry/syscalls/linux/linux64.go (the ``AMD64`` and ``ARM64`` tables).

A handler is ``fn(task, a0, a1, a2, a3, a4, a5) -> int``: raw 64-bit register values in, a
non-negative result out; errors are raised as ``SysError``. Handler modules name their parameters
after the C prototype and convert with ``mqsentry.syscalls.linux.args``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqsentry.abi.linux import sysno

if TYPE_CHECKING:
    pass

Handler = Callable[..., int]


@dataclass(frozen=True, slots=True)
class Syscall:
    """One table entry (gVisor: ``kernel.Syscall``)."""

    name: str
    fn: Handler
    #: "full" or "partial" (gVisor's SupportLevel); ``note`` says what is partial.
    support: str = "full"
    note: str = ""


class SyscallTable:
    """The syscalls one architecture exposes.

    Immutable after construction. ``handlers`` maps number -> handler for dispatch; ``entries``
    keeps the metadata; numbers absent from both give ENOSYS.
    """

    def __init__(self, arch: str, entries: dict[str, Syscall],
                 handler_dict: Callable[[dict[int, Handler]], dict[int, Handler]] = dict) -> None:
        self.arch = arch
        numbers = sysno.NUMBERS[arch]
        self.entries: dict[int, Syscall] = {}
        for name, entry in entries.items():
            nr = numbers.get(name)
            if nr is None:
                continue  # e.g. poll, dup2, open exist on amd64 only
            self.entries[nr] = entry
        # ``handler_dict`` lets an ABI whose ENOSYS differs (mips) answer unknown numbers itself.
        self.handlers: dict[int, Handler] = handler_dict({nr: e.fn for nr, e in self.entries.items()})

    def name(self, nr: int) -> str:
        """The syscall's name (implemented or not) for strace-like output."""
        return sysno.name(self.arch, nr)

    def number(self, name: str) -> int:
        return sysno.NUMBERS[self.arch][name]

    def lookup(self, nr: int) -> Syscall | None:
        return self.entries.get(nr)
