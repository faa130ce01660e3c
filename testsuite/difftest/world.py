"""One target's side of a differential run: actors, their memory and descriptors, and normalisation.

Linux counterpart: none (test harness). gVisor counterpart: none; it plays the part of the per-test
fixture setup in gVisor's syscall tests (credentials via ``AutoCapability``/``ScopedThread``).

A :class:`World` owns a fresh target and the actors of one sequence. Every actor has two private
scratch regions (each followed by the target's unmapped guard page) allocated once, so an operation
costs one ``write``, one syscall and at most one ``read`` round trip on the native target.

Everything an operation observes goes through the normalisers here before it is compared:

* pids and tids become actor labels (``"a0"``, ``"a3"``); 0 stays 0;
* descriptor numbers become offsets from the first descriptor a fresh process gets (the sentry's
  processes start without stdin/stdout/stderr, the native ones inherit them);
* time stamps (seconds) become 0 or ``"T"``; each target separately checks that every stamp lies
  within the run and that a queue's stamps never go backwards (``violations``).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mqsentry.abi.linux.capability import ALL_CAPS, CAP_SYS_RESOURCE
from mqsentry.abi.linux.signal import SA_RESTART, SA_RESTORER, SA_SIGINFO, SIGACTION
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
PAGE = 4096
#: The data region: a msgbuf header plus the largest payload any operation writes (64 KiB), rounded
#: to pages. Its end is followed by a guard page (edge-of-mapping pointers are computed from it).
BIG = 18 * PAGE
#: Largest payload written into memory; larger sizes are only ever rejected before the copy.
MAX_PAYLOAD = BIG - 8
#: Offsets of fixed structures in the small region (one page).
NAME, TS, ATTR_IN, ATTR_OUT, SIGEV, PRIO, DS, INFO, SIGACT, RDBUF = 0, 512, 576, 640, 704, 768, 1024, 1152, 1280, 1536
#: Signals the recording handler is installed for in every actor's process (notifications use them).
HANDLED_SIGNALS = (10, 12, 34)  # SIGUSR1, SIGUSR2, SIGRTMIN
#: Handled like those, but with SA_RESTART (blocking.Signal uses it to test restarts).
RESTART_SIGNALS = (35,)  # SIGRTMIN+1
#: Every process gets this umask (the native worker's own umask must not leak into a run); 0 lets the
#: generated modes reach the queues unchanged (the umask itself is covered by the mq suite).
UMASK = 0

_PATTERN = bytes(range(256)) * ((BIG // 256) + 2)
_LONG = struct.Struct("<q")


def payload(seed: int, size: int) -> bytes:
    """Deterministic message bytes for a step (different steps send different bytes)."""
    size = min(size, MAX_PAYLOAD)
    off = (seed * 37) % 256
    return _PATTERN[off:off + size]


def host_caps() -> int:
    """Capabilities a native process can be given: the host's bounding set (read once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return ALL_CAPS


#: The "full" capability set of differential runs: whatever the host's root has, never
#: CAP_SYS_RESOURCE (the host's root lacks it, so a sentry actor with it would diverge by design).
FULL_CAPS = host_caps() & ALL_CAPS & ~(1 << CAP_SYS_RESOURCE)


@dataclass(frozen=True)
class ActorSpec:
    """Credentials of an actor spawned at the start of a sequence. ``caps`` is a mask of 1<<CAP_*."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    caps: int = 0


@dataclass
class Files:
    """The mq descriptors a process obtained (shared by its threads, copied by fork). Closing keeps
    the slot, so later operations reuse stale numbers on purpose."""

    fds: list[int] = field(default_factory=list)


@dataclass
class Actor:
    label: str
    proc: Proc
    files: Files
    big: int
    small: int
    #: Index of the actor that is the main thread of this actor's process (itself for processes).
    process: int
    exited: bool = False


class World:
    """One target, the actors of one sequence, and the per-target normalisation state."""

    def __init__(self, target: Target, specs: Sequence[ActorSpec]) -> None:
        self.target = target
        self.actors: list[Actor] = []
        #: SysV ids returned by successful msgget calls, in order (operations refer to them by slot).
        self.ids: list[int] = []
        self.violations: list[str] = []
        self._stamps: dict[tuple[object, str], int] = {}
        self.t0 = int(time.time()) - 1
        self.fd_base: int | None = None
        #: Calls in flight (testsuite.difftest.blocking), by actor label.
        self.pending: dict[str, Any] = {}
        for s in specs:
            self.spawn(s)

    # -- actors --------------------------------------------------------------------------------------
    def _add(self, proc: Proc, files: Files, process: int | None) -> Actor:
        idx = len(self.actors)
        big = proc.alloc(BIG)
        small = proc.alloc(PAGE)
        a = Actor(f"a{idx}", proc, files, big, small, idx if process is None else process)
        self.actors.append(a)
        return a

    def spawn(self, spec: ActorSpec) -> Actor:
        proc = Proc(self.target.spawn(spec.uid, spec.gid, tuple(spec.groups), spec.caps))
        a = self._add(proc, Files(), None)
        act = SIGACTION.pack(self.target.handler_addr, SA_SIGINFO | SA_RESTORER, self.target.restorer_addr, 0)
        proc.write(a.small + SIGACT, act)
        for sig in HANDLED_SIGNALS:
            ret = proc.sys("rt_sigaction", sig, a.small + SIGACT, 0, 8)
            assert ret == 0, f"rt_sigaction({sig}) = {ret}"
        act = SIGACTION.pack(self.target.handler_addr, SA_SIGINFO | SA_RESTORER | SA_RESTART,
                             self.target.restorer_addr, 0)
        proc.write(a.small + SIGACT, act)
        for sig in RESTART_SIGNALS:
            ret = proc.sys("rt_sigaction", sig, a.small + SIGACT, 0, 8)
            assert ret == 0, f"rt_sigaction({sig}) = {ret}"
        proc.sys("umask", UMASK)
        if self.fd_base is None:
            # The lowest descriptor a fresh process gets: count the open ones below 3.
            self.fd_base = sum(1 for fd in range(3) if proc.sys("fcntl", fd, 1, 0) >= 0)  # F_GETFD
        return a

    def fork(self, parent: Actor) -> Actor:
        return self._add(parent.proc.fork(), Files(list(parent.files.fds)), None)

    def thread(self, parent: Actor) -> Actor:
        return self._add(parent.proc.thread(), parent.files, parent.process)

    def alive(self) -> list[Actor]:
        return [a for a in self.actors if not a.exited]

    def idle(self) -> list[Actor]:
        """Live actors without a call in flight (only these run operations)."""
        return [a for a in self.actors if not a.exited and a.label not in self.pending]

    def actor(self, i: int) -> Actor:
        alive = self.idle() or self.alive()
        return alive[i % len(alive)]

    def process_alive(self, a: Actor) -> bool:
        return any(not b.exited and b.process == a.process for b in self.actors)

    # -- references ------------------------------------------------------------------------------------
    #: Literal SysV ids used by negative references: invalid, never-allocated, other-sequence, huge.
    LITERAL_IDS: ClassVar[dict[int, int]] = {-1: -1, -2: 7, -3: 32768, -4: 0x7FFF_FFFF}

    def qid(self, q: int) -> int:
        if q < 0:
            return self.LITERAL_IDS.get(q, -1)
        if not self.ids:
            return q  # nothing created yet: the literal small id (EINVAL, or an index for MSG_STAT)
        return self.ids[q % len(self.ids)]

    #: Literal descriptors used by negative references: invalid and never-opened.
    LITERAL_FDS: ClassVar[dict[int, int]] = {-1: -1, -2: 500}

    def fd(self, a: Actor, f: int) -> int:
        if f < 0:
            return self.LITERAL_FDS.get(f, -1)
        fds = a.files.fds
        if not fds:
            return 500
        return fds[f % len(fds)]

    # -- normalisation -----------------------------------------------------------------------------------
    def norm_pid(self, v: int) -> int | str:
        if v == 0:
            return 0
        for a in self.actors:
            if a.proc.tid == v:
                return a.label
        return f"pid?{v}"

    def norm_fd(self, v: int) -> int:
        """A successful descriptor result as an offset from the first descriptor of a process."""
        return v - (self.fd_base or 0) if v >= 0 else v

    def stamp(self, v: int, obj: object, what: str) -> int | str:
        """A time stamp of ``obj`` as 0 or "T", after checking range and monotonicity."""
        if v == 0:
            return 0
        now = int(time.time()) + 1
        if not self.t0 <= v <= now:
            self.violations.append(f"{what} of {obj} is {v}, outside the run [{self.t0}, {now}]")
        last = self._stamps.get((obj, what))
        if last is not None and v < last:
            self.violations.append(f"{what} of {obj} went backwards: {last} -> {v}")
        self._stamps[(obj, what)] = v
        return "T"

    # -- syscalls --------------------------------------------------------------------------------------
    @staticmethod
    def sys(a: Actor, name: str, *args: int) -> int:
        return a.proc.sys(name, *(x & MASK64 for x in args))

    def close(self) -> None:
        from mqsentry.testsuite.difftest.blocking import release

        try:
            release(self)
        finally:
            self.target.close()


def read_long(a: Actor, addr: int) -> int:
    return _LONG.unpack(a.proc.read(addr, 8))[0]
