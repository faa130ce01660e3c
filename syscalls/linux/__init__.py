"""Linux syscall handlers and the per-architecture tables (gVisor: pkg/sentry/syscalls/linux).

Linux counterpart: the ``SYSCALL_DEFINE``\\s and arch/*/entry/syscalls/*.tbl. gVisor counterpart:
pkg/sentry/syscalls/linux (the handlers) and linux64.go (the ``AMD64``/``ARM64`` tables).

Each ``sys_*`` module exports ``SYSCALLS``: a ``{name: Syscall}`` dict. :func:`table_for` merges them
into the numbered table of an architecture; a name an architecture lacks (``poll`` on arm64) is
skipped there. The handler modules are imported explicitly: one that fails to import is an error at
start-up, never a silent ENOSYS.
"""

from __future__ import annotations

from functools import cache

from mqsentry.syscalls.linux import (
    sys_file,
    sys_identity,
    sys_mq,
    sys_msgqueue,
    sys_signal,
    sys_socket,
    sys_thread,
    sys_time,
)
from mqsentry.syscalls.linux.table import Syscall, SyscallTable

#: Handler tables, in the order their entries are merged (later ones may not redefine names).
HANDLER_TABLES: tuple[tuple[str, dict[str, Syscall]], ...] = (
    ("sys_identity", sys_identity.SYSCALLS),
    ("sys_signal", sys_signal.SYSCALLS),
    ("sys_thread", sys_thread.SYSCALLS),
    ("sys_time", sys_time.SYSCALLS),
    ("sys_msgqueue", sys_msgqueue.SYSCALLS),
    ("sys_mq", sys_mq.SYSCALLS),
    ("sys_file", sys_file.SYSCALLS),
    ("sys_socket", sys_socket.SYSCALLS),
)


def all_syscalls() -> dict[str, Syscall]:
    merged: dict[str, Syscall] = {}
    for modname, table in HANDLER_TABLES:
        for name, entry in table.items():
            if name in merged:
                raise RuntimeError(f"syscall {name} defined twice ({modname})")
            merged[name] = entry
    return merged


@cache
def table_for(arch: str) -> SyscallTable:
    """The (shared, immutable) syscall table of ``arch``."""
    from mqsentry.abi.linux.abi32 import ABIS32

    abi = ABIS32.get(arch)
    if abi is None:
        return SyscallTable(arch, all_syscalls())
    from mqsentry.abi.linux.errno import ENOSYS
    from mqsentry.syscalls.linux.compat32 import EnosysTable, Handlers32

    enosys = abi.errno_out.get(ENOSYS, ENOSYS)
    return SyscallTable(arch, Handlers32(abi).syscalls(all_syscalls()),
                        (lambda h: EnosysTable(h, enosys)) if enosys != ENOSYS else dict)


__all__ = ["table_for", "Syscall", "SyscallTable", "all_syscalls", "HANDLER_TABLES"]
