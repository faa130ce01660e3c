"""Time ABI: ``struct timespec`` and clock ids.

Linux counterpart: include/uapi/linux/time.h, include/uapi/linux/time_types.h.
gVisor counterpart: pkg/abi/linux/time.go.
"""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7

NSEC_PER_SEC = 1_000_000_000

TIMESPEC = Layout("timespec", cs.Struct("tv_sec" / cs.Int64sl, "tv_nsec" / cs.Int64sl), 16)


def timespec_valid(sec: int, nsec: int) -> bool:
    """Linux ``timespec64_valid``: seconds non-negative, nanoseconds in [0, 1e9)."""
    return sec >= 0 and 0 <= nsec < NSEC_PER_SEC
