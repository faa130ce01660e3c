"""Tests of the generic fd/VFS behaviour (no message queues): fd tables, paths, mounts, rlimits, poll
and epoll. Linux counterpart: fs/file.c, fs/namei.c, fs/namespace.c, kernel/sys.c, fs/select.c,
fs/eventpoll.c. gVisor counterpart: test/syscalls/linux/{dup,fcntl,open,mkdir,unlink,getdents,statfs,
mount,prlimit64,poll,ppoll,epoll}.cc.

Helpers shared by the test modules live here.
"""

from __future__ import annotations

import os
import struct

from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def reg(v: int) -> int:
    """A signed value as a 64-bit register."""
    return v & _MASK64


def scratch(target: Target, proc: Proc, name: str, mode: int = 0o777) -> str:
    """A fresh world-writable directory ``name`` inside the target's scratch directory."""
    path = os.path.join(target.scratch_dir, name)
    proc.mkdir(path, 0o777)
    # mkdir applies the umask; chmod through an fd makes the mode exact.
    fd = proc.openat(path, 0)
    proc.fchmod(fd, mode)
    proc.close(fd)
    return path


def touch(proc: Proc, path: str, mode: int = 0o644) -> None:
    fd = proc.openat(path, 0o100 | 0o1, mode)  # O_CREAT | O_WRONLY
    proc.close(fd)


def fd_is_open(proc: Proc, fd: int) -> bool:
    return proc.sys("fcntl", fd, 1, 0) >= 0  # F_GETFD


def statfs(proc: Proc, path: str) -> dict[str, int]:
    """statfs(2) of ``path`` as a dict of ``struct statfs`` fields."""
    from mqsentry.abi.linux.file import STATFS

    p = proc.alloc(STATFS.size)
    proc.call("statfs", proc.cstr(path), p)
    return dict(zip(STATFS.fields, STATFS.unpack(proc.read(p, STATFS.size))))


def pack_rlimit(cur: int, mx: int) -> bytes:
    return struct.pack("<QQ", cur & _MASK64, mx & _MASK64)
