"""What the platform learns about host threads from /proc: thread group, credentials, signal state.

Linux counterpart: fs/proc/array.c (``proc_pid_status``: Tgid, Uid/Gid/Groups, SigPnd/ShdPnd/SigBlk/
SigIgn, CapPrm/CapEff...). gVisor counterpart: none (the sentry owns those values itself; a
platform serving real processes must ask the host kernel).

Reading a status file costs about 20 µs, so the platform reads it when it meets a new thread, after
an observed credential change, and while scanning parked calls for signals -- never per syscall.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mqsentry.kernel.auth.credentials import Credentials


@dataclass(frozen=True, slots=True)
class ThreadStatus:
    """The fields of /proc/<tid>/status the platform uses. Immutable."""

    tid: int
    tgid: int
    state: str
    creds: Credentials
    sig_pending: int
    shd_pending: int
    sig_blocked: int
    sig_ignored: int
    #: The NSpid and NStgid lines: the thread's pid and its tgid in every pid namespace from the
    #: reader's down to its own (one number when it is in the reader's namespace).
    nspid: tuple[int, ...] = ()
    nstgid: tuple[int, ...] = ()


def read_status(tid: int, tgid: int | None = None) -> ThreadStatus | None:
    """Parse /proc/<tid>/status (through /proc/<tgid>/task/<tid> when ``tgid`` is known, which also
    proves the thread belongs to that group); None if the thread is gone."""
    path = f"/proc/{tid}/status" if tgid is None else f"/proc/{tgid}/task/{tid}/status"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)
    f: dict[bytes, bytes] = {}
    for line in data.split(b"\n"):
        k, sep, v = line.partition(b":")
        if sep:
            f[k] = v.strip()
    try:
        uids = [int(x) for x in f[b"Uid"].split()]
        gids = [int(x) for x in f[b"Gid"].split()]
        groups = tuple(int(x) for x in f.get(b"Groups", b"").split())
        creds = Credentials(uids[0], uids[1], uids[2], uids[3], gids[0], gids[1], gids[2], gids[3], groups,
                            int(f[b"CapPrm"], 16), int(f[b"CapEff"], 16), int(f[b"CapInh"], 16),
                            int(f[b"CapBnd"], 16), int(f.get(b"CapAmb", b"0"), 16))
        return ThreadStatus(tid, int(f[b"Tgid"]), f[b"State"][:1].decode(), creds, int(f[b"SigPnd"], 16),
                            int(f[b"ShdPnd"], 16), int(f[b"SigBlk"], 16), int(f[b"SigIgn"], 16),
                            tuple(int(x) for x in f.get(b"NSpid", b"").split()),
                            tuple(int(x) for x in f.get(b"NStgid", b"").split()))
    except (KeyError, ValueError, IndexError):
        return None


def thread_ids(tgid: int) -> list[int]:
    """The TIDs of a thread group, leader first (empty if it is gone)."""
    try:
        tids = sorted(int(x) for x in os.listdir(f"/proc/{tgid}/task"))
    except OSError:
        return []
    if tgid in tids:
        tids.remove(tgid)
        tids.insert(0, tgid)
    return tids


def should_interrupt(st: ThreadStatus) -> bool | None:
    """Rule 1 of docs/platform-rules.md §1: a signal pending on the thread itself that it neither blocks nor
    ignores interrupts it. Returns True, or None when shared-pending signals need rule 2."""
    if st.sig_pending & ~st.sig_blocked & ~st.sig_ignored:
        return True
    if st.shd_pending & ~st.sig_ignored:
        return None
    return False


def shared_signal_target(tgid: int, shd: int, group: dict[int, ThreadStatus]) -> set[int]:
    """Rule 2 (``complete_signal``): for each process-directed pending signal, the thread the kernel
    wakes -- the leader if it takes the signal, else the only live thread that does. When several
    non-leader threads could take it, the kernel's choice is unknowable from /proc: nobody is
    interrupted (the signal stays pending until a thread leaves the kernel)."""
    chosen: set[int] = set()
    bits = shd
    while bits:
        low = bits & -bits
        bits ^= low
        leader = group.get(tgid)
        if leader is not None and leader.state not in ("Z", "X") and not leader.sig_blocked & low:
            chosen.add(tgid)
            continue
        takers = [s.tid for s in group.values() if s.state not in ("Z", "X") and not s.sig_blocked & low]
        if len(takers) == 1:
            chosen.add(takers[0])
    return chosen


__all__ = ["ThreadStatus", "read_status", "thread_ids", "should_interrupt", "shared_signal_target"]
