"""Wait queues and wakers: how a blocked syscall learns that it may make progress.

Linux counterpart: wait_queue_head_t / wake_q (include/linux/wait.h, kernel/sched/wait.c).
gVisor counterpart: pkg/waiter (``waiter.Queue``, ``waiter.Entry``, ``EventMask``).

The blocking discipline is gVisor's: *try; if it would block, register an entry; try again; sleep;
retry*. Registering before the second try closes the lost-wakeup window. A :class:`Waker` is whatever
must be poked when an entry fires: an in-process :class:`~mqsentry.kernel.task.Task` (its thread sleeps in
``Task.block``), or, for a platform that serves real processes, an object that re-drives a parked
syscall from an event loop. Engines never sleep themselves; they only register and notify, so the
same engine code serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

# Event masks (the poll bits, as gVisor's waiter.EventMask).
EVENT_IN = 0x001
EVENT_PRI = 0x002
EVENT_OUT = 0x004
EVENT_ERR = 0x008
EVENT_HUP = 0x010
EVENT_RDNORM = 0x040
EVENT_WRNORM = 0x100
ALL_EVENTS = 0xFFFF


class Waker(Protocol):
    """Something to poke when an awaited event happens."""

    def wake(self) -> None: ...


class Entry:
    """One registration on a :class:`Queue`: ``waker`` is poked when an event in ``mask`` fires.

    ``callback`` (optional) runs instead of ``waker.wake`` and receives the fired mask; epoll uses it.
    Immutable after construction except ``mask``, which only the owner changes while unregistered.
    """

    __slots__ = ("waker", "mask", "callback")

    def __init__(self, waker: Waker | None, mask: int = ALL_EVENTS,
                 callback: Callable[[int], None] | None = None) -> None:
        self.waker = waker
        self.mask = mask
        self.callback = callback


class Queue:
    """A FIFO set of entries.

    Guarded by ``_mu`` (a leaf lock: nothing else is acquired while it is held, wakers only set flags
    and notify condition variables): ``_entries``.
    """

    __slots__ = ("_mu", "_entries")

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._entries: dict[Entry, None] = {}

    def register(self, e: Entry) -> None:
        with self._mu:
            self._entries[e] = None

    def unregister(self, e: Entry) -> None:
        with self._mu:
            self._entries.pop(e, None)

    def notify(self, mask: int) -> None:
        """Wake every entry interested in any bit of ``mask``, in registration order."""
        if not self._entries:
            return
        with self._mu:
            fire = [e for e in self._entries if e.mask & mask]
        for e in fire:
            if e.callback is not None:
                e.callback(mask & e.mask)
            elif e.waker is not None:
                e.waker.wake()

    def __len__(self) -> int:
        return len(self._entries)
