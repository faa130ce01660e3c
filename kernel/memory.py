"""Guest memory: the protocol the sentry copies syscall arguments through, and a default address space.

Linux counterpart: copy_from_user/copy_to_user and the task's mm. gVisor counterpart: pkg/sentry/mm
(``MemoryManager``) and the ``usermem.IO`` interface that ``Task.CopyIn``/``CopyOut`` use.

Hosting: any object with ``read(addr, n) -> bytes`` and ``write(addr, data) -> None`` can be a task's
memory (pass it as ``Kernel.new_task(mm=...)``). It may fail any way it likes (raise, or return fewer
bytes); the sentry turns every failure into EFAULT at the point Linux would. The sentry never asks for
more bytes than the syscall's own limits allow (msgmax, mq_msgsize, struct sizes), so an adapter is
never asked to materialise an absurd size.

This module stays interpreted (the Protocol is runtime-checkable, MemoryFault subclasses Exception, and
hosts and the fuzzer subclass :class:`AddressSpace`); the region table and the copies every syscall
makes live in the mypyc-compiled :mod:`mqsentry.kernel.memory_map`, which the task calls directly.
"""

from __future__ import annotations

import bisect
import threading
from typing import Protocol, runtime_checkable

from mqsentry.kernel.memory_map import RegionMap


class MemoryFault(Exception):
    """An access outside mapped memory (the default address space raises this)."""


@runtime_checkable
class Memory(Protocol):
    """What the sentry needs from guest memory."""

    def read(self, addr: int, n: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


PAGE_SIZE = 4096
#: Lowest address handed out: keeps NULL and small integers unmapped, as on Linux.
DEFAULT_BASE = 0x1000_0000
#: amd64's TASK_SIZE_MAX: nothing at or above it is ever user memory.
TASK_SIZE = 0x7FFF_FFFF_F000


class AddressSpace:
    """A sparse guest address space made of separately allocated, page-aligned regions.

    Each allocation is followed by an unmapped guard page, so an access that runs off the end of a
    buffer faults, as it would against an unmapped page on Linux. ``limit`` caps the total mapped bytes
    (MemoryError-free: :meth:`alloc` raises ``MemoryFault`` when the cap would be passed).

    Guarded by ``_mu``: writes of ``map.snapshot`` (read lock-free: it is replaced, never mutated),
    ``_next``, ``mapped``. ``map`` itself is immutable (tasks keep a reference to it). Region
    contents are not guarded: concurrent syscalls of one process touching the same buffer race as
    they do on Linux.
    """

    def __init__(self, base: int = DEFAULT_BASE, limit: int = 1 << 30) -> None:
        self._mu = threading.Lock()
        #: The regions (see :class:`~mqsentry.kernel.memory_map.RegionMap`).
        self.map = RegionMap()
        self._next = base
        self.limit = limit
        self.mapped = 0

    # -- mapping -----------------------------------------------------------------------------------
    def alloc(self, n: int) -> int:
        """Map ``n`` zeroed bytes (at least one page) and return the address."""
        if n < 0:
            raise ValueError("negative allocation")
        size = max(PAGE_SIZE, (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
        with self._mu:
            if self.mapped + size > self.limit:
                raise MemoryFault(f"address space limit of {self.limit} bytes reached")
            addr = self._next
            self._next = addr + size + PAGE_SIZE  # guard page
            starts, regions, views = self.map.snapshot
            i = bisect.bisect(starts, addr)
            region = bytearray(size)
            self.map.snapshot = (starts[:i] + [addr] + starts[i:], regions[:i] + [region] + regions[i:],
                             views[:i] + [memoryview(region)] + views[i:])
            self.mapped += size
        return addr

    def free(self, addr: int) -> None:
        """Unmap the region that starts at ``addr``."""
        with self._mu:
            starts, regions, views = self.map.snapshot
            i = bisect.bisect(starts, addr) - 1
            if i < 0 or starts[i] != addr:
                raise MemoryFault(f"no region starts at {addr:#x}")
            self.mapped -= len(regions[i])
            self.map.snapshot = (starts[:i] + starts[i + 1:], regions[:i] + regions[i + 1:], views[:i] + views[i + 1:])

    def fork(self) -> AddressSpace:
        """A copy-on-fork duplicate (eagerly copied)."""
        other = AddressSpace(limit=self.limit)
        with self._mu:
            starts, regions, _ = self.map.snapshot
            copies = [bytearray(r) for r in regions]
            other.map.snapshot = (list(starts), copies, [memoryview(r) for r in copies])
            other._next = self._next
            other.mapped = self.mapped
        return other

    # -- access ------------------------------------------------------------------------------------
    def _locate(self, addr: int, n: int) -> tuple[bytearray, int]:
        found = self.map.locate(addr, n)
        if found is None:
            raise MemoryFault(f"bad address {addr:#x}+{n}")
        return found

    def read(self, addr: int, n: int) -> bytes:
        region, off = self._locate(addr, n)
        return bytes(region[off:off + n])

    def write(self, addr: int, data: bytes) -> None:
        region, off = self._locate(addr, len(data))
        region[off:off + len(data)] = data

    def read_cstring(self, addr: int, maxlen: int) -> bytes | None:
        """Bytes up to (not including) a NUL within ``maxlen`` bytes; None if there is none there."""
        region, off = self._locate(addr, 1)
        end = region.find(0, off, off + maxlen)
        if end < 0:
            if off + maxlen > len(region):
                raise MemoryFault(f"bad address {addr + len(region) - off:#x}")
            return None
        return bytes(region[off:end])
