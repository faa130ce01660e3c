"""Clocks: the realtime clock the sentry stamps IPC objects with and measures deadlines against.

Linux counterpart: ktime_get_real_seconds / CLOCK_REALTIME (kernel/time). gVisor counterpart:
pkg/sentry/ktime and the kernel's timekeeper.

A clock is injectable so that tests can pin stime/rtime/ctime and drive mq_timed* deadlines. A
:class:`ManualClock` never advances by itself; :meth:`ManualClock.advance` wakes every sleeper whose
deadline is measured against it, so that it re-checks its deadline (there is no real-time wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """A CLOCK_REALTIME source. Subclasses override :meth:`now_ns`."""

    #: Whether sleepers can compute a real-time timeout from a deadline (False for manual clocks).
    real_time = True

    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch."""
        return time.time_ns()

    def now_s(self) -> int:
        """Whole seconds since the Unix epoch (what Linux stores in msg_stime and friends)."""
        return self.now_ns() // 1_000_000_000

    def monotonic_ns(self) -> int:
        """A monotonic reading, for CLOCK_MONOTONIC."""
        return time.monotonic_ns()

    def subscribe(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` whenever the time jumps (manual clocks only)."""

    def unsubscribe(self, fn: Callable[[], None]) -> None:
        """Undo :meth:`subscribe`."""


class RealtimeClock(Clock):
    """The host's realtime clock."""

    # Direct overrides: these run on every msgsnd/msgrcv (stime/rtime), so skip the now_ns hop.
    def now_ns(self) -> int:
        return time.time_ns()

    def now_s(self) -> int:
        return time.time_ns() // 1_000_000_000


class ManualClock(Clock):
    """A clock that only moves when told to; for deterministic tests.

    Guarded by ``_mu``: ``_now``, ``_mono`` and ``_subscribers``.
    """

    real_time = False

    def __init__(self, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self._mu = threading.Lock()
        self._now = start_ns
        self._mono = 0
        self._subscribers: dict[Callable[[], None], None] = {}

    def now_ns(self) -> int:
        return self._now

    def monotonic_ns(self) -> int:
        return self._mono

    def set_ns(self, ns: int) -> None:
        """Jump to ``ns`` (realtime may go backwards, like settimeofday)."""
        with self._mu:
            self._now = ns
            subs = list(self._subscribers)
        for fn in subs:
            fn()

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds``."""
        delta = int(seconds * 1_000_000_000)
        with self._mu:
            self._now += delta
            self._mono += delta
            subs = list(self._subscribers)
        for fn in subs:
            fn()

    def subscribe(self, fn: Callable[[], None]) -> None:
        with self._mu:
            self._subscribers[fn] = None

    def unsubscribe(self, fn: Callable[[], None]) -> None:
        with self._mu:
            self._subscribers.pop(fn, None)
