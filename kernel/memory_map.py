"""The region table of the default guest address space, and the copies in and out of it.

Linux counterpart: an mm's VMA lookup (``find_vma``) and ``raw_copy_from_user``/``raw_copy_to_user``.
gVisor counterpart: the vma set of pkg/sentry/mm and ``MemoryManager.CopyIn``/``CopyOut``.

Every msgsnd/msgrcv/mq_timedsend/mq_timedreceive copies through :meth:`RegionMap.read` or
:meth:`RegionMap.write`, so this module is mypyc-compiled (setup.py ``HOT_MODULES``) and
:class:`~mqsentry.kernel.task.Task` calls it directly. The address space itself
(:class:`mqsentry.kernel.memory.AddressSpace`) stays interpreted, because hosts and the fuzzer subclass
it (compiled classes cannot have interpreted subclasses); it owns one map for its lifetime and is the
only writer of :attr:`RegionMap.snapshot`.
"""

from __future__ import annotations

from bisect import bisect

#: (region starts ascending, the regions, a memoryview of each region).
Snapshot = tuple[list[int], list[bytearray], list[memoryview]]


class RegionMap:
    """The mapped regions of one address space.

    ``snapshot`` is replaced as a whole on every map change, under the owning address space's lock,
    and read without it: a reader takes one snapshot and never sees the lists out of step. The
    regions' contents are not guarded: concurrent syscalls of one process touching the same buffer
    race as they do on Linux.
    """

    def __init__(self) -> None:
        # ``views`` make a copy-in one copy: slicing a memoryview and calling tobytes() copies once,
        # bytes(bytearray[a:b]) twice.
        self.snapshot: Snapshot = ([], [], [])

    def locate(self, addr: int, n: int) -> tuple[bytearray, int] | None:
        """The region holding ``[addr, addr + n)`` and the offset of ``addr`` in it; None if any of
        those bytes is unmapped (or ``n`` is negative)."""
        starts, regions, _ = self.snapshot
        i = bisect(starts, addr) - 1
        if i >= 0 and n >= 0:
            off = addr - starts[i]
            region = regions[i]
            if off + n <= len(region):
                return region, off
        return None

    # read() and write() repeat locate()'s lookup on purpose: they run for every message, and a shared
    # helper would cost a call and a tuple (an optional tuple is a heap object even compiled).
    def read(self, addr: int, n: int) -> bytes | None:
        """copy_from_user: the ``n`` (> 0) bytes at ``addr``, or None if any of them is unmapped."""
        starts, _, views = self.snapshot
        i = bisect(starts, addr) - 1
        if i >= 0:
            off = addr - starts[i]
            view = views[i]
            if off + n <= len(view):
                return view[off:off + n].tobytes()
        return None

    def write(self, addr: int, data: bytes) -> bool:
        """copy_to_user: store ``data`` (non-empty) at ``addr``; False, with nothing written, if any
        target byte is unmapped."""
        n = len(data)
        starts, _, views = self.snapshot
        i = bisect(starts, addr) - 1
        if i >= 0:
            off = addr - starts[i]
            view = views[i]
            if off + n <= len(view):
                view[off:off + n] = data  # through the memoryview: cheaper than bytearray slicing
                return True
        return False


__all__ = ["RegionMap", "Snapshot"]
