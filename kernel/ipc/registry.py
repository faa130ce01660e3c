"""A per-namespace table of SysV IPC objects of one kind: ids, keys and Linux's id allocation.

Linux counterpart: ``struct ipc_ids`` and ipc/util.c (``ipc_addid``, ``ipc_idr_alloc``,
``ipc_findkey``, ``ipc_obtain_object_idr``, ``ipc_obtain_object_check``, ``ipc_rmid``,
``ipc_get_maxidx``). gVisor counterpart: pkg/sentry/kernel/ipc/registry.go -- whose sequential ids
from 1 (divergence D5, docs/gvisor-divergences.md) are replaced here by Linux's
``seq * 32768 + idx`` scheme.

Id allocation follows ``ipc_idr_alloc`` exactly:

* normally ``idr_alloc_cyclic`` over ``[0, max(in_use * 3 / 2, 64))`` (capped at ipc_mni), searching
  from the cursor left by the previous cyclic allocation and wrapping once to 0; ``seq`` grows only
  when the new index is not above the previous one, and wraps to 0 at ``INT_MAX >> 15``;
* if the ``*_next_id`` sysctl is set (>= 0), the object takes ``seq = next_id >> 15`` and the first
  free index ``>= next_id & 0x7fff``; neither the cursor nor ``seq`` moves, and the sysctl is reset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mqsentry.abi.linux.errno import EINVAL, ENOSPC
from mqsentry.abi.linux.ipc import IPC_PRIVATE, IPCMNI, IPCMNI_SEQ_MAX, IPCMNI_SHIFT
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ipc.object import Object

T = TypeVar("T", bound=Object)

#: ipc_min_cycle (RADIX_TREE_MAP_SIZE): the smallest window the cyclic allocator uses.
IPC_MIN_CYCLE = 64
_IDX_MASK = IPCMNI - 1
_INT_MAX = 0x7FFF_FFFF


class Registry(Generic[T]):
    """The ids and keys of one IPC kind in one namespace (``struct ipc_ids``).

    Guarded by ``mu`` (Linux's ``ids->rwsem``; the "registry lock" of the mechanism packages): every
    write of ``by_idx``, ``_used``, ``_by_key``, ``seq``, ``last_idx`` and ``_cursor``. Lookups by id
    (:meth:`obtain_check`, :meth:`obtain_idx`) run without ``mu``, as Linux's RCU lookups do: a single
    dict read is atomic, and callers re-check ``Object.deleted`` under the object's lock.
    """

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.by_idx: dict[int, T] = {}
        #: The indexes in ``by_idx`` as a bitmap (bit i set: index i is used), the idr's free-slot
        #: search structure: the first free index at or above any point is found with a few big-int
        #: operations in C instead of a Python loop over up to 32768 dict probes.
        self._used = 0
        self._by_key: dict[int, T] = {}
        self.seq = 0
        self.last_idx = -1  # for wrap-around detection, as ipc_init_ids sets it
        self._cursor = 0  # the idr's idr_next

    # -- queries -------------------------------------------------------------------------------------
    @property
    def in_use(self) -> int:
        return len(self.by_idx)

    def find_key_locked(self, key: int) -> T | None:
        """``ipc_findkey`` (caller holds ``mu``). IPC_PRIVATE objects are never in the key table."""
        return self._by_key.get(key)

    def obtain_check(self, id_: int) -> T:
        """``ipc_obtain_object_check``: the object with this full id; EINVAL for an empty slot or a
        sequence mismatch (a stale id is EINVAL, never EIDRM)."""
        obj = self.by_idx.get(id_ & _IDX_MASK)
        if obj is None or obj.seq != id_ >> IPCMNI_SHIFT:
            raise SysError(EINVAL)
        return obj

    def obtain_idx(self, id_: int) -> T:
        """``ipc_obtain_object_idr``: by index only (MSG_STAT and friends); EINVAL if empty."""
        obj = self.by_idx.get(id_ & _IDX_MASK)
        if obj is None:
            raise SysError(EINVAL)
        return obj

    def max_idx_locked(self) -> int:
        """``ipc_get_maxidx``: the highest used index, -1 if none (caller holds ``mu``)."""
        n = len(self.by_idx)
        if n == 0:
            return -1
        if n == IPCMNI:
            return IPCMNI - 1
        return self._used.bit_length() - 1

    def key_table_locked(self) -> dict[int, T]:
        """A copy of the key -> object table (caller holds ``mu``; for consistency checkers)."""
        return dict(self._by_key)

    @property
    def cursor(self) -> int:
        """Where the next id search starts (the idr's ``idr_next``); read under ``mu`` for a
        consistent view."""
        return self._cursor

    def objects_locked(self) -> Iterator[T]:
        """Objects in ascending index order (caller holds ``mu``)."""
        by_idx = self.by_idx
        for idx in sorted(by_idx):
            yield by_idx[idx]

    # -- changes (caller holds mu) -------------------------------------------------------------------
    def add_locked(self, obj: T, limit: int, take_next_id: Callable[[], int]) -> int:
        """``ipc_addid``: give ``obj`` an id and publish it; returns the id.

        ``limit`` is the mechanism's sysctl (msgmni); ENOSPC once ``min(limit, ipc_mni)`` objects
        exist or no index is free. ``take_next_id`` returns the ``*_next_id`` sysctl and resets it to
        -1; it is called only after the limit check, as Linux consumes it in ``ipc_idr_alloc``.
        """
        by_idx = self.by_idx
        if len(by_idx) >= min(limit, IPCMNI):
            raise SysError(ENOSPC)
        next_id = take_next_id()
        if next_id < 0:
            # idr_alloc_cyclic(idr, 0, max_idx): first free at or after the cursor, then from 0.
            end = min(max(len(by_idx) * 3 // 2, IPC_MIN_CYCLE), IPCMNI)
            idx = _first_free(self._used, max(self._cursor, 0), end)
            if idx < 0 and self._cursor > 0:
                idx = _first_free(self._used, 0, end)
            if idx < 0:
                raise SysError(ENOSPC)
            self._cursor = idx + 1
            if idx <= self.last_idx:
                self.seq += 1
                if self.seq >= IPCMNI_SEQ_MAX:
                    self.seq = 0
            self.last_idx = idx
            seq = self.seq
        else:
            # idr_alloc(idr, start, 0): no upper bound but INT_MAX; cursor and seq stay.
            seq = next_id >> IPCMNI_SHIFT
            idx = _first_free(self._used, next_id & _IDX_MASK, _INT_MAX)
        obj.seq = seq
        obj.id = (seq << IPCMNI_SHIFT) + idx
        by_idx[idx] = obj
        self._used |= 1 << idx
        if obj.key != IPC_PRIVATE:
            self._by_key[obj.key] = obj
        return obj.id

    def remove_locked(self, obj: T) -> None:
        """``ipc_rmid``: unpublish ``obj`` and mark it deleted (caller also holds ``obj.mu``)."""
        idx = obj.id & _IDX_MASK
        if self.by_idx.get(idx) is obj:
            del self.by_idx[idx]
            self._used &= ~(1 << idx)
        if obj.key != IPC_PRIVATE and self._by_key.get(obj.key) is obj:
            del self._by_key[obj.key]
        obj.deleted = True


def _first_free(used: int, start: int, end: int) -> int:
    """The first index in ``[start, end)`` whose bit in ``used`` is clear, or -1.

    ``~used >> start`` has a bit set for every free index from ``start`` on (infinitely many: a
    negative int), and ``x & -x`` isolates the lowest of them."""
    free = ~used >> start
    idx = start + (free & -free).bit_length() - 1
    return idx if idx < end else -1
