"""C-type views of raw 64-bit register values.

Linux counterpart: the SYSCALL_DEFINE argument casts (a register is truncated to the parameter's C
type). gVisor counterpart: ``arch.SyscallArgument`` accessors (``Int()``, ``Uint()``, ``Int64()``,
``SizeT()``, ``ModeT()``, ``Pointer()``).

Registers arrive as a CPU holds them (unsigned 64-bit), but any Python int is accepted: the masks
below give the same answer for ``-1`` and ``2**64 - 1``.
"""

from __future__ import annotations

MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def int32(v: int) -> int:
    """``int`` / ``key_t`` / ``pid_t``: the low 32 bits, signed."""
    return ((v & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000


def uint32(v: int) -> int:
    """``unsigned int`` / ``uid_t`` / ``mode_t`` (as the kernel's 32-bit umode_t argument)."""
    return v & 0xFFFF_FFFF


def int64(v: int) -> int:
    """``long`` / ``ssize_t`` / ``off_t``: all 64 bits, signed."""
    return ((v & MASK64) ^ 0x8000_0000_0000_0000) - 0x8000_0000_0000_0000


def uint64(v: int) -> int:
    """``unsigned long`` / ``size_t`` / a pointer."""
    return v & MASK64


def mode_t(v: int) -> int:
    """``umode_t`` as syscalls take it (unsigned short)."""
    return v & 0xFFFF
