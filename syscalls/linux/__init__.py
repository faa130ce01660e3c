"""Linux syscall handlers and the per-architecture tables (gVisor: pkg/sentry/syscalls/linux).

Each ``sys_*`` module exports ``SYSCALLS``: a ``{name: Syscall}`` dict. :func:`table_for` merges them
into the numbered table of an architecture; a name an architecture lacks (``poll`` on arm64) is
skipped there.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from mqsentry.syscalls.linux.table import Syscall, SyscallTable

#: Handler modules, in the order their entries are merged (later ones may not redefine names).
HANDLER_MODULES = (
    "mqsentry.syscalls.linux.sys_identity",
    "mqsentry.syscalls.linux.sys_signal",
    "mqsentry.syscalls.linux.sys_thread",
    "mqsentry.syscalls.linux.sys_time",
    "mqsentry.syscalls.linux.sys_msgqueue",
    "mqsentry.syscalls.linux.sys_mq",
    "mqsentry.syscalls.linux.sys_file",
    "mqsentry.syscalls.linux.sys_socket",
)


def all_syscalls() -> dict[str, Syscall]:
    merged: dict[str, Syscall] = {}
    for modname in HANDLER_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue  # not written yet
            raise
        for name, entry in mod.SYSCALLS.items():
            if name in merged:
                raise RuntimeError(f"syscall {name} defined twice ({modname})")
            merged[name] = entry
    return merged


@lru_cache(maxsize=None)
def table_for(arch: str) -> SyscallTable:
    """The (shared, immutable) syscall table of ``arch``."""
    return SyscallTable(arch, all_syscalls())


__all__ = ["table_for", "Syscall", "SyscallTable", "all_syscalls"]
