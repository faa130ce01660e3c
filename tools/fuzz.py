"""``mqsentry fuzz``: raw syscall-dispatch fuzzing of the sentry with invariant checks after every call.

Linux counterpart: none in the kernel; the approach is syzkaller's (typed and raw calls, pointers
into, across the edge of and outside mapped memory) scaled down to one embedded kernel.
gVisor counterpart: gVisor's syzkaller setup and its ``test/syscalls`` fuzz-style cases.

A run is a sequence of *epochs*; each epoch is a fresh :class:`mqsentry.kernel.Kernel` with a pool of tasks of
different credentials (root, root without some capabilities, unprivileged users and groups; forks,
threads, and tasks that unshared their IPC namespace). Every call is one of:

* typed traffic: msgget/msgsnd/msgrcv/msgctl, mq_open/timedsend/timedreceive/notify/getsetattr/unlink,
  close/dup/fcntl/read/poll on queue descriptors, netlink sockets, rt_sigaction/sigprocmask/kill,
  unshare(CLONE_NEWIPC), credential changes -- with valid-looking structs (msqid64_ds, mq_attr,
  sigevent, timespec, sigaction) written into guest memory, and one argument mutated now and then;
* raw calls: an implemented syscall with every register drawn from interesting integers, known ids
  and fds, and pointers (NULL, low, into a buffer, straddling the guard page after a buffer, unmapped,
  kernel half, ~0);
* unknown numbers: unimplemented, negative and huge.

Calls that could block are made non-blocking first (IPC_NOWAIT, MSG_DONTWAIT, past deadlines, zero poll
timeouts; deadlines are drawn from near, expired, far -- ``tv_sec = INT64_MAX`` -- and invalid
timespecs, and a future one becomes a past one before the call; ``mqsentry stress`` drives the same
extreme deadlines through real sleeps with concurrent senders, receivers and signals); a watchdog kills
the task with SIGKILL if a call still sleeps past ``--block-bound`` and reports it. After every call: no
exception escaped, the result is an int that is >= 0 or a valid -errno (1..133, never ERESTART*),
unknown numbers gave ENOSYS, no internal error was recorded, a few per-call oracles hold (a successful
msgsnd fitted, counters moved by exactly one message), the call allocated at most ``--mem-ceiling``
bytes (tracemalloc), and :mod:`mqsentry.tools.invariants` holds (every ``--check-every`` calls; 1 =
every call).

The run is deterministic for a seed (``--seed``); a violation report names the epoch, call index
and the last calls so that it can be replayed.
"""

from __future__ import annotations

import argparse
import faulthandler
import random
import resource
import struct
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.capability import (
    ALL_CAPS,
    CAP_DAC_OVERRIDE,
    CAP_FOWNER,
    CAP_IPC_OWNER,
    CAP_KILL,
    CAP_SETGID,
    CAP_SETUID,
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
)
from mqsentry.abi.linux.errno import ENOSYS, ESRCH
from mqsentry.abi.linux.file import (
    F_DUPFD,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    POLLIN,
    POLLOUT,
)
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_EXCEPT, MSG_INFO, MSG_NOERROR, MSG_STAT, MSG_STAT_ANY, MSQID64_DS
from mqsentry.abi.linux.sched import CLONE_NEWIPC, CLONE_NEWNS
from mqsentry.abi.linux.signal import (
    SA_NODEFER,
    SA_RESETHAND,
    SA_RESTART,
    SA_RESTORER,
    SA_SIGINFO,
    SIG_DFL,
    SIG_IGN,
    SIGACTION,
    SIGCONT,
    SIGEV_NONE,
    SIGEV_SIGNAL,
    SIGEV_THREAD,
    SIGEVENT,
    SIGKILL,
    SIGRTMIN,
    SIGSTOP,
    SIGTERM,
)
from mqsentry.abi.linux.socket import AF_NETLINK, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW
from mqsentry.boot import Kernel
from mqsentry.kernel.memory import AddressSpace
from mqsentry.kernel.signals import SigInfo, send_locked
from mqsentry.kernel.task import Task
from mqsentry.kernel.waiter import EVENT_IN
from mqsentry.tools import invariants, realproc
from mqsentry.tools.cliargs import Progress, add_json_argument, positive_float, positive_int, text_out, write_json

SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM = 10, 12, 17, 14
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
MAX_ERRNO = 133
#: Handler "addresses" (the sentry runs no guest code).
HANDLER = 0x7000_0000_1000
RESTORER = 0x7000_0000_2000
PAGE = 4096

_I64 = struct.Struct("<q")
_TS = struct.Struct("<qq")
_U64 = struct.Struct("<Q")

#: Credential profiles of the task pool: (label, new_task kwargs).
PROFILES: list[tuple[str, dict[str, Any]]] = [
    ("root", {"uid": 0, "gid": 0}),
    ("root-nocaps", {"uid": 0, "gid": 0, "caps": ALL_CAPS & ~((1 << CAP_SYS_ADMIN) | (1 << CAP_IPC_OWNER)
                                                         | (1 << CAP_SYS_RESOURCE) | (1 << CAP_DAC_OVERRIDE)
                                                         | (1 << CAP_FOWNER) | (1 << CAP_KILL))}),
    ("user1000", {"uid": 1000, "gid": 1000, "groups": (100,)}),
    ("user1001", {"uid": 1001, "gid": 100}),
    ("user1002+ipc_owner", {"uid": 1002, "gid": 1002, "caps": (1 << CAP_IPC_OWNER) | (1 << CAP_SETUID)
                                | (1 << CAP_SETGID)}),
]

INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 63, 64, 127, 128, 255, 256, 4095, 4096, 8191, 8192, 8193, 16384,
               32767, 32768, 65535, 65536, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
               0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, MASK64, MASK64 - 1, (-2) & MASK64,
               (-100) & MASK64, (-4096) & MASK64, 1 << 40, 16 << 20]

#: Calls the raw fuzzer favours (the rest of the implemented table is drawn less often).
FOCUS = ("msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
         "mq_notify", "mq_getsetattr", "close", "dup", "dup2", "dup3", "fcntl", "read", "lseek", "fstat", "poll",
         "ppoll", "epoll_ctl", "epoll_wait", "rt_sigaction", "rt_sigprocmask", "kill", "tgkill", "socket",
         "recvfrom", "recvmsg", "unshare", "setresuid", "capset", "prlimit64", "setrlimit")


# -- results ------------------------------------------------------------------------------------------------
@dataclass
class Violation:
    kind: str
    message: str
    epoch: int
    index: int
    call: str
    recent: list[str]

    def render(self) -> str:
        lines = [f"[{self.kind}] epoch {self.epoch} call {self.index}: {self.call}", f"  {self.message}"]
        if self.recent:
            lines.append("  preceding calls (oldest first):")
            lines.extend(f"    {r}" for r in self.recent)
        return "\n".join(lines)


@dataclass
class Report:
    seed: int
    calls: int = 0
    epochs: int = 0
    seconds: float = 0.0
    checks: int = 0
    violations: list[Violation] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)
    errnos: dict[int, int] = field(default_factory=dict)
    successes: int = 0
    max_call_alloc: int = 0
    peak_traced: int = 0
    blocked: int = 0
    spawned: int = 0
    repeats: int = 0

    def summary(self) -> str:
        rate = self.calls / self.seconds if self.seconds else 0.0
        top = sorted(self.by_name.items(), key=lambda kv: -kv[1])[:12]
        lines = [
            f"fuzz: seed {self.seed}: {self.calls} calls in {self.epochs} epochs, {self.seconds:.1f}s "
            f"({rate:.0f} calls/s), {self.checks} invariant checks, {len(self.violations)} violation(s) "
            f"(+{self.repeats} repeats)",
            f"  successes {self.successes}, distinct errnos {len(self.errnos)}, tasks spawned {self.spawned}, "
            f"watchdog kills {self.blocked}",
            f"  largest allocation by one call {self.max_call_alloc} bytes; traced peak {self.peak_traced} bytes",
            "  most frequent: " + ", ".join(f"{n}={c}" for n, c in top),
        ]
        return "\n".join(lines)


# -- per-process guest memory --------------------------------------------------------------------------------
class WatchedAddressSpace(AddressSpace):
    """An address space that records the largest access the sentry asks for.

    kernel/memory.py promises hosts that the sentry never requests more bytes than the syscall's own
    limits allow (it validates sizes before copying); ``largest`` lets the fuzzer check that promise
    for every call, whatever the access's outcome.
    """

    largest = 0

    def read(self, addr: int, n: int) -> bytes:
        if n > self.largest:
            self.largest = n
        return super().read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        if len(data) > self.largest:
            self.largest = len(data)
        super().write(addr, data)

    def read_cstring(self, addr: int, maxlen: int) -> bytes | None:
        if maxlen > self.largest:
            self.largest = maxlen
        return super().read_cstring(addr, maxlen)

    def fork(self) -> WatchedAddressSpace:
        other = super().fork()
        other.__class__ = WatchedAddressSpace  # same state, plus the recording accessors
        return other  # type: ignore[return-value]


class Mem:
    """The regions the fuzzer mapped in one address space. ``buf``: 64 KiB for messages; ``edge``: one
    page followed by the guard page (structs placed to straddle it); ``st``: struct slots."""

    BUF = 64 * 1024

    def __init__(self, mm: Any) -> None:
        self.buf: int = mm.alloc(self.BUF)
        self.edge: int = mm.alloc(PAGE)
        self.st: int = mm.alloc(4 * PAGE)
        self.names: int = mm.alloc(PAGE)

    def copy(self) -> Mem:
        other = object.__new__(Mem)
        other.__dict__.update(self.__dict__)
        return other


# slots of the ``st`` region
S_PAST_TS = 0       # timespec {0, 0}: a deadline that has passed
S_ZERO_TS = 16      # relative zero timeout (ppoll)
S_A = 64            # generic struct slots, 256 bytes apart
S_B = 320
S_C = 576
S_D = 832
S_OUT = 1024        # output buffers (msqid64_ds, mq_attr, sigaction, sigset, rlimit, stat, dirents)
S_OUT2 = 2048
S_POLL = 3072       # pollfd array


class Fuzzer:
    """One fuzzing run (see the module docstring)."""

    #: The task the watchdog last SIGKILLed for blocking too long (watchdog thread only).
    _killed: Task | None

    def __init__(self, seed: int = 1, calls: int = 10_000, epoch_calls: int = 5_000, check_every: int = 1,
                 mem_ceiling: int = 4 << 20, mem_mode: str = "rss", block_bound: float = 2.0,
                 access_ceiling: int = (16 << 20) + (64 << 10),
                 recent: int = 16, max_violations: int = 50, log: Callable[[str], None] | None = None,
                 progress_every: float = 0.0, progress: Progress | None = None) -> None:
        self.seed = seed
        self.calls = calls
        self.epoch_calls = epoch_calls
        self.check_every = max(1, check_every)
        self.mem_ceiling = mem_ceiling
        self.mem_mode = mem_mode
        self.mem_check = mem_mode == "tracemalloc"
        self.access_ceiling = access_ceiling
        self.block_bound = block_bound
        self.max_violations = max_violations
        self.log = log or (lambda s: None)
        self.progress_every = progress_every
        #: Progress lines on standard error (``mqsentry fuzz``), looked at every 500 calls.
        self.progress = progress
        self.report = Report(seed)
        self._recent: deque[str] = deque(maxlen=recent)
        self._in_call: tuple[Any, float] | None = None
        self._stop = threading.Event()
        self._seen: set[tuple[str, str]] = set()
        self._internal_seen = 0

    # -- the run -------------------------------------------------------------------------------------------
    def run(self) -> Report:
        rep = self.report
        started_tm = False
        if self.mem_check and not tracemalloc.is_tracing():
            tracemalloc.start(1)
            started_tm = True
        dog = threading.Thread(target=self._watchdog, name="fuzz-watchdog", daemon=True)
        dog.start()
        t0 = time.monotonic()
        last_progress = t0
        try:
            epoch = 0
            while rep.calls < self.calls and len(rep.violations) < self.max_violations:
                n = min(self.epoch_calls, self.calls - rep.calls)
                self._epoch(epoch, n)
                epoch += 1
                rep.epochs = epoch
                now = time.monotonic()
                if self.progress_every and now - last_progress >= self.progress_every:
                    last_progress = now
                    self.log(f"  ... {rep.calls} calls, {now - t0:.0f}s, {len(rep.violations)} violation(s)")
        finally:
            self._stop.set()
            rep.seconds = time.monotonic() - t0
            if started_tm:
                rep.peak_traced = max(rep.peak_traced, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
        return rep

    def _watchdog(self) -> None:
        """Kill a task whose call sleeps past the bound; dump every stack if even that does not help."""
        while not self._stop.wait(0.01):
            cur = self._in_call
            if cur is None:
                continue
            t, start = cur
            if t.state == "T":
                # The task stopped itself (kill(getpid(), SIGSTOP)): the outside world continues it.
                with t.kernel.sig_mu:
                    send_locked(t, SigInfo(SIGCONT), True)
                continue
            age = time.monotonic() - start
            if age > self.block_bound * 4:
                sys.stderr.write("fuzz: a call is stuck even after SIGKILL; thread stacks follow\n")
                faulthandler.dump_traceback(all_threads=True)
                self._stop.wait(self.block_bound * 4)
                continue
            if age > self.block_bound and t.state == "S" and self._killed is not t:
                self._killed = t
                with t.kernel.sig_mu:
                    send_locked(t, SigInfo(SIGKILL), True)

    # -- one epoch -------------------------------------------------------------------------------------------
    def _epoch(self, epoch: int, ncalls: int) -> None:
        self.epoch = epoch
        self.rng = rng = random.Random(f"{self.seed}:{epoch}")
        self.k = k = Kernel(arch="amd64")
        self._internal_seen = 0  # internal errors of this epoch's kernel already reported
        self.nr = k.syscall_table.number
        self.names_of = {nr: e.name for nr, e in k.syscall_table.entries.items()}
        self.table = k.syscall_table.handlers
        self.mems: dict[int, Mem] = {}
        self.tasks: list[Task] = []
        self.msqids: list[int] = []
        self.keys = [IPC_PRIVATE, 1, 2, 3, 0x1234, -5 & 0xFFFF_FFFF, 0x7FFF_FFFF]
        self.extra_ns: list[Any] = []
        self._killed = None
        implemented = sorted(self.table)
        self.focus_nrs = [self.nr(n) for n in FOCUS if self.nr(n) in self.table]
        self.other_nrs = [n for n in implemented if n not in self.focus_nrs]
        self.unknown_nrs = sorted(set(sysno.NUMBERS["amd64"].values()) - set(self.table))
        for _label, kw in PROFILES:
            self._spawn(kw)
        for _ in range(2):
            self._spawn_related()
        rep = self.report
        for i in range(ncalls):
            if len(rep.violations) >= self.max_violations:
                break
            self._maintain_pool()
            t = rng.choice(self.tasks)
            self._one(t, rep.calls)
            rep.calls += 1
            if self.progress is not None and rep.calls % 500 == 0:
                self.progress.tick(lambda: f"{rep.calls}/{self.calls} calls, {len(rep.violations)} violation(s)")
            if (i + 1) % self.check_every == 0 or i == ncalls - 1:
                rep.checks += 1
                bad = invariants.check_kernel(k, self.extra_ns, internal_seen=self._internal_seen)
                self._internal_seen = k.internal_errors  # report each internal error once
                if bad:
                    self._violate("invariant", "; ".join(bad[:5]), rep.calls - 1)
        self._teardown()

    def _teardown(self) -> None:
        """Every process exits; then fds must be closed and unlinked queues' charges returned."""
        k = self.k
        for t in list(k.tasks.values()):
            if not t.exited:
                t.exit_group(0)
        bad = invariants.check_kernel(k, self.extra_ns, internal_seen=self._internal_seen)
        if bad:
            self._violate("invariant-after-exit", "; ".join(bad[:5]), self.report.calls)
        self.k = None  # type: ignore[assignment]
        self.tasks = []
        self.mems = {}

    # -- the task pool ----------------------------------------------------------------------------------------
    def _spawn(self, kw: dict[str, Any]) -> Any:
        t = self.k.new_task(mm=WatchedAddressSpace(limit=64 << 20), **kw)
        self.mems[id(t.mm)] = self._setup_mem(t, Mem(t.mm))
        self._install_handlers(t)
        self.tasks.append(t)
        self.report.spawned += 1
        return t

    def _setup_mem(self, t: Task, m: Mem) -> Mem:
        mm = t.mm
        mm.write(m.st + S_PAST_TS, _TS.pack(0, 0))
        mm.write(m.st + S_ZERO_TS, _TS.pack(0, 0))
        return m

    def _install_handlers(self, t: Task) -> None:
        """Handlers for the signals kill traffic mostly sends, so that most tasks survive them."""
        m = self.mems[id(t.mm)]
        act = m.st + S_D
        for sig in (SIGUSR1, SIGUSR2, SIGRTMIN, SIGALRM):
            flags = SA_RESTORER | SA_SIGINFO | (SA_RESTART if sig != SIGUSR2 else 0)
            t.mm.write(act, SIGACTION.pack(HANDLER, flags, RESTORER, 0))
            t.syscall(self.nr("rt_sigaction"), sig, act, 0, 8)

    def _spawn_related(self) -> None:
        live = [t for t in self.tasks if not t.exited]
        if not live:
            return
        parent = self.rng.choice(live)
        if self.rng.random() < 0.5:
            child = parent.fork()
            self.mems[id(child.mm)] = self.mems[id(parent.mm)].copy()
        else:
            child = parent.clone_thread()
        self.tasks.append(child)
        self.report.spawned += 1

    def _maintain_pool(self) -> None:
        tasks = self.tasks
        if any(t.exited for t in tasks):
            tasks[:] = [t for t in tasks if not t.exited]
        while len(tasks) < 5:
            _label, kw = self.rng.choice(PROFILES)
            self._spawn(kw)
        if len(tasks) < 12 and self.rng.random() < 0.002:
            self._spawn_related()
        k = self.k
        for t in tasks:
            if t.tg.group_stop:
                # The outside world sends SIGCONT: a stopped task would stall this (only) driver thread.
                with k.sig_mu:
                    send_locked(t, SigInfo(SIGCONT), True)

    # -- values ----------------------------------------------------------------------------------------------
    def ptr(self, t: Task, size: int = 64) -> int:
        """A pointer for an argument of about ``size`` bytes."""
        r = self.rng.random()
        m = self.mems[id(t.mm)]
        if r < 0.55:
            return m.buf + self.rng.randrange(0, Mem.BUF - size) if size < Mem.BUF else m.buf
        if r < 0.70:
            return m.edge + PAGE - self.rng.randint(1, max(1, size - 1))  # straddles the guard page
        if r < 0.78:
            return 0
        if r < 0.84:
            return m.edge + PAGE + self.rng.randrange(0, PAGE)  # the guard page itself
        return self.rng.choice([1, 8, 4095, 0x1000_0000 - PAGE, 0x7FFF_FFFF_F000, 0x7FFF_FFFF_FFFF,
                                0xFFFF_8000_0000_0000, MASK64, MASK64 - 7, 1 << 47, self.rng.getrandbits(64)])

    def integer(self, t: Task) -> int:
        r = self.rng.random()
        if r < 0.35:
            return self.rng.choice(INTERESTING)
        if r < 0.5:
            return self.rng.randrange(0, 64)
        if r < 0.6:
            return 1 << self.rng.randrange(64)
        if r < 0.7 and self.msqids:
            return self.rng.choice(self.msqids)
        if r < 0.8:
            return self.fd(t)
        if r < 0.85:
            return self.rng.choice(self.tasks).tid
        if r < 0.9:
            return self.ptr(t)
        return self.rng.getrandbits(self.rng.choice((8, 16, 32, 64)))

    def fd(self, t: Task) -> int:
        table = t.fd_table
        fds = table.fds() if table is not None else []
        if fds and self.rng.random() < 0.85:
            return self.rng.choice(fds)
        return self.rng.choice([0, 1, 2, 3, 5, 63, 1023, 1024, 4096, -1 & MASK64, 0xFFFF_FFFF, 1 << 32])

    def msqid(self) -> int:
        if self.msqids and self.rng.random() < 0.85:
            return self.rng.choice(self.msqids)
        return self.rng.choice([0, 1, 32768, 32769, 0x7FFF_FFFF, 0xFFFF_FFFF, MASK64, 1 << 32])

    def write(self, t: Task, addr: int, data: bytes) -> None:
        try:
            t.mm.write(addr, data)
        except Exception:
            pass  # the pointer is deliberately bad

    def struct_ptr(self, t: Task, data: bytes, slot: int) -> int:
        """Write ``data`` into a struct slot (usually) or straddling the guard page; return its address."""
        m = self.mems[id(t.mm)]
        r = self.rng.random()
        if r < 0.85:
            addr = m.st + slot
        elif r < 0.95:
            addr = m.edge + PAGE - self.rng.randint(1, max(1, len(data) - 1))
        else:
            return self.rng.choice([0, 1, MASK64, 0xFFFF_8000_0000_0000])
        self.write(t, addr, data)
        return addr

    def name_ptr(self, t: Task) -> int:
        m = self.mems[id(t.mm)]
        rng = self.rng
        r = rng.random()
        if r < 0.8:
            name = b"q%d" % rng.randrange(6)
        else:
            name = rng.choice([b"", b".", b"..", b"a/b", b"x" * 255, b"y" * 256, b"\xff\xfe", b"q0\n",
                               b"z" * 4096])
        if len(name) < PAGE - 1 and rng.random() < 0.95:
            addr = m.names + rng.randrange(0, PAGE - len(name) - 1)
            self.write(t, addr, name + b"\0")
            return addr
        if rng.random() < 0.5:
            # No NUL before the guard page: the string runs off the mapping.
            n = min(len(name), PAGE) or 1
            addr = m.names + PAGE - n
            self.write(t, addr, (name or b"q") [:n])
            return addr
        return rng.choice([0, 1, MASK64])

    def timespec_ptr(self, t: Task, for_deadline: bool = True) -> int:
        rng = self.rng
        r = rng.random()
        m = self.mems[id(t.mm)]
        if r < 0.5:
            return m.st + S_PAST_TS
        if r < 0.6:
            return 0
        now = self.k.clock.now_ns()
        sec, nsec = rng.choice([
            (now // 10**9 - 1, 0), (0, 999_999_999), (0, 10**9), (0, -1), (-1, 0), (0, 2 * 10**9),
            (1 << 62, 0), (-(1 << 63), -(1 << 63)), (now // 10**9, now % 10**9),
            ((1 << 63) - 1, 0), ((1 << 63) - 1, 999_999_999), ((1 << 63) - 1, 10**9), (-(1 << 63), 0),
            ((now + 1_000_000) // 10**9, (now + 1_000_000) % 10**9),  # 1 ms ahead: a bounded sleep
        ])
        return self.struct_ptr(t, _TS.pack(sec, nsec), rng.choice((S_A, S_B)))

    # -- call generation --------------------------------------------------------------------------------------
    def _one(self, t: Task, index: int) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            nr, args = self._typed(t)
        elif r < 0.92:
            nr = rng.choice(self.focus_nrs) if rng.random() < 0.7 else rng.choice(self.other_nrs)
            args = [self.ptr(t) if rng.random() < 0.4 else self.integer(t) for _ in range(6)]
        else:
            nr = rng.choice([rng.choice(self.unknown_nrs), -1, -(1 << 63), 1 << 63, MASK64, 1 << 32, 10_000,
                             rng.randrange(335, 512), rng.getrandbits(64), -rng.randrange(1, 1000)])
            args = [self.integer(t) for _ in range(6)]
        args = [a & MASK64 for a in args] + [0] * (6 - len(args))
        name = self.names_of.get(nr, f"nr{nr}")
        if nr in self.table:
            skip = self._defuse(t, name, args)
            if skip:
                return
        self._call(t, nr, name, args, index)

    def _typed(self, t: Task) -> tuple[int, list[int]]:
        """A valid-looking call (one argument mutated now and then)."""
        rng = self.rng
        gen = rng.choices(self._generators, weights=self._weights)[0]
        name, args = gen(self, t)
        if rng.random() < 0.1 and args:
            i = rng.randrange(len(args))
            args[i] = self.ptr(t) if rng.random() < 0.5 else self.integer(t)
        return self.nr(name), args

    # typed generators ------------------------------------------------------------------------------------
    def g_msgget(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        flags = rng.choice([0, IPC_CREAT, IPC_CREAT, IPC_CREAT | IPC_EXCL]) | rng.choice(
            [0o600, 0o666, 0o644, 0o400, 0o200, 0o000, 0o777, 0o7777])
        return "msgget", [rng.choice(self.keys), flags]

    def g_msgsnd(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        mtype = rng.choice([1, 1, 2, 3, 4, 5, 100, 0x7FFF_FFFF_FFFF_FFFF, 0, -1])
        size = rng.choice([0, 1, 8, 16, 64, rng.randrange(0, 300), 8192, 8193, rng.randrange(0, 20000)])
        m = self.mems[id(t.mm)]
        if rng.random() < 0.9:
            off = rng.randrange(0, Mem.BUF - 8 - min(size, Mem.BUF - 8))
            addr = m.buf + off
        else:
            addr = self.ptr(t, size + 8)
        self.write(t, addr, _I64.pack(mtype) + rng.randbytes(min(size, 64)))
        return "msgsnd", [self.msqid(), addr, size, rng.choice([IPC_NOWAIT, IPC_NOWAIT, 0, MASK64])]

    def g_msgrcv(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        size = rng.choice([0, 1, 8, 64, 300, 8192, 65536 - 8, MASK64, 1 << 63, 0x7FFF_FFFF])
        typ = rng.choice([0, 0, 1, 2, 3, -1, -3, -100, 5, 100, 1 << 63, (1 << 63) - 1, 1 << 62]) & MASK64
        flags = rng.choice([0, MSG_NOERROR, MSG_EXCEPT, MSG_COPY, MSG_COPY | MSG_NOERROR, MSG_COPY | MSG_EXCEPT,
                            MSG_EXCEPT | MSG_NOERROR]) | rng.choice([IPC_NOWAIT, IPC_NOWAIT, 0])
        if flags & MSG_COPY:
            typ = rng.choice([0, 1, 2, 5, -1 & MASK64, 100])
        return "msgrcv", [self.msqid(), self.ptr(t, min(size, 9000) + 8), size, typ, flags]

    def g_msgctl(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        cmd = rng.choice([IPC_STAT, IPC_STAT, IPC_SET, IPC_SET, IPC_RMID, IPC_INFO, MSG_INFO, MSG_STAT, MSG_STAT_ANY,
                          IPC_STAT | 0x100, 7, -1 & 0xFFFF_FFFF])
        msqid = self.msqid()
        if cmd in (MSG_STAT, MSG_STAT_ANY):
            msqid = rng.choice([msqid & 0x7FFF, rng.randrange(0, 70)])
        if cmd == IPC_RMID and rng.random() < 0.6:
            cmd = IPC_STAT  # keep queues around long enough to fill them
        if cmd == IPC_SET:
            uid = rng.choice([0, 1000, 1001, 1002, 0xFFFF_FFFF, 65534])
            gid = rng.choice([0, 100, 1000, 0xFFFF_FFFF])
            mode = rng.choice([0o600, 0o666, 0o000, 0o777, 0o7777, 0xFFFF])
            qbytes = rng.choice([0, 1, 5, 100, 16384, 16385, 1 << 20, 0x7FFF_FFFF, 0x8000_0000, MASK64, 1 << 33])
            fields = [0] * len(MSQID64_DS.fields)
            fields[MSQID64_DS.index("perm.uid")] = uid
            fields[MSQID64_DS.index("perm.gid")] = gid
            fields[MSQID64_DS.index("perm.mode")] = mode
            fields[MSQID64_DS.index("qbytes")] = qbytes
            buf = self.struct_ptr(t, MSQID64_DS.pack(*fields), S_A)
        else:
            buf = self.struct_ptr(t, b"\0" * 120, S_OUT) if rng.random() < 0.8 else self.ptr(t, 120)
        return "msgctl", [msqid, cmd, buf]

    def _mq_fd(self, t: Task) -> int:
        from mqsentry.fs.mqfs.file import QueueFD

        table = t.fd_table
        if table is not None and self.rng.random() < 0.9:
            fds = [fd for fd, d in list(table.files.items()) if isinstance(d, QueueFD)]
            if fds:
                return self.rng.choice(fds)
        return self.fd(t)

    def g_mq_open(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        oflag = rng.choice([O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, 3]) | rng.choice(
            [0, O_CREAT, O_CREAT, O_CREAT | O_EXCL]) | rng.choice([0, O_NONBLOCK, O_NONBLOCK, O_CLOEXEC])
        attr = 0
        if rng.random() < 0.7:
            maxmsg = rng.choice([1, 2, 4, 10, 11, 0, -1, 65536, 65537, 1 << 40])
            msgsize = rng.choice([1, 16, 128, 8192, 8193, 0, -1, 16 << 20, (16 << 20) + 1, 1 << 62])
            attr = self.struct_ptr(t, MQ_ATTR.pack(rng.choice([0, O_NONBLOCK]), maxmsg, msgsize, 0), S_B)
        return "mq_open", [self.name_ptr(t), oflag, rng.choice([0o600, 0o666, 0o000, 0o777, 0o170777]), attr]

    def g_mq_unlink(self, t: Task) -> tuple[str, list[int]]:
        return "mq_unlink", [self.name_ptr(t)]

    def g_mq_send(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        n = rng.choice([0, 1, 16, 100, 128, 129, 8192, 8193, rng.randrange(0, 200), MASK64])
        return "mq_timedsend", [self._mq_fd(t), self.ptr(t, min(n, 60000)), n,
                                rng.choice([0, 1, 31, 32767, 32768, 0xFFFF_FFFF, 1 << 32]), self.timespec_ptr(t)]

    def g_mq_receive(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        n = rng.choice([0, 16, 127, 128, 8192, 60000, MASK64])
        prio = rng.choice([0, self.struct_ptr(t, b"\0" * 4, S_C), self.ptr(t, 4)])
        return "mq_timedreceive", [self._mq_fd(t), self.ptr(t, min(n, 60000)), n, prio, self.timespec_ptr(t)]

    def g_mq_notify(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        if rng.random() < 0.25:
            return "mq_notify", [self._mq_fd(t), 0]
        notify = rng.choice([SIGEV_SIGNAL, SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, 4, -1, 3])
        signo = rng.choice([0, SIGUSR1, SIGUSR2, SIGRTMIN, 64, 65, -1, SIGKILL])
        value = rng.getrandbits(64)
        if notify == SIGEV_THREAD:
            signo = self.fd(t) & 0x7FFF_FFFF
            value = self.struct_ptr(t, rng.randbytes(32), S_C) if rng.random() < 0.8 else self.ptr(t, 32)
        sev = SIGEVENT.pack(value, signo, notify, 0, 0)
        return "mq_notify", [self._mq_fd(t), self.struct_ptr(t, sev, S_B)]

    def g_mq_getsetattr(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        new = 0
        if rng.random() < 0.5:
            new = self.struct_ptr(t, MQ_ATTR.pack(rng.choice([0, O_NONBLOCK, O_NONBLOCK | O_RDWR, 1]),
                                                  rng.getrandbits(16), 0, 0), S_A)
        old = rng.choice([0, self.mems[id(t.mm)].st + S_OUT, self.ptr(t, 64)])
        return "mq_getsetattr", [self._mq_fd(t), new, old]

    def g_fdops(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        fd = self._mq_fd(t)
        m = self.mems[id(t.mm)]
        c = rng.randrange(10)
        if c == 0:
            return "close", [fd]
        if c == 1:
            return "dup", [fd]
        if c == 2:
            return "dup2", [fd, rng.choice([fd, 7, 9, 200, 1023, 1024])]
        if c == 3:
            cmd = rng.choice([F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD, 1030])
            return "fcntl", [fd, cmd, rng.choice([0, O_NONBLOCK, 1, 5, 1 << 40])]
        if c == 4:
            return "read", [fd, self.ptr(t, 64), rng.choice([0, 1, 60, 100, MASK64])]
        if c == 5:
            return "lseek", [fd, rng.choice([0, 1, 59, 60, 61, -1 & MASK64, 1 << 62]), rng.randrange(6)]
        if c == 6:
            return "fstat", [fd, rng.choice([m.st + S_OUT, self.ptr(t, 144)])]
        if c == 7:
            n = rng.randrange(0, 4)
            data = b"".join(struct.pack("<IHH", self._mq_fd(t) & 0xFFFF_FFFF,
                                        rng.choice([POLLIN, POLLOUT, POLLIN | POLLOUT, 0xFFFF]), 0)
                            for _ in range(n))
            return "poll", [self.struct_ptr(t, data or b"\0" * 8, S_POLL), n, 0]
        if c == 8:
            typ = rng.choice([SOCK_RAW, SOCK_DGRAM, 1]) | SOCK_NONBLOCK | rng.choice([0, SOCK_CLOEXEC])
            return "socket", [rng.choice([AF_NETLINK, AF_NETLINK, 1]), typ, rng.choice([0, 15, 32])]
        return "recvfrom", [fd, self.ptr(t, 64), rng.choice([0, 32, 64]), MSG_DONTWAIT, 0, 0]

    def g_signals(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        c = rng.randrange(6)
        sig = rng.choice([SIGUSR1, SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 3, SIGCHLD, SIGCONT, SIGALRM, 0, 65,
                          SIGTERM, SIGKILL, SIGSTOP, 20])
        if c <= 2:
            pool = [x for x in self.tasks if not x.exited]
            pid = rng.choice([rng.choice(pool).pid, rng.choice(pool).pid, 0, -1 & 0xFFFF_FFFF, 99999,
                              (-rng.choice(pool).pid) & 0xFFFF_FFFF])
            if sig in (SIGKILL, SIGTERM) and rng.random() < 0.8:
                sig = SIGUSR1  # keep the pool mostly alive
            if pid == 0xFFFF_FFFF and sig in (SIGKILL, SIGTERM, SIGSTOP, 20):
                sig = SIGUSR2
            return "kill", [pid, sig]
        if c == 3:
            x = rng.choice([y for y in self.tasks if not y.exited])
            return "tgkill", [x.pid, x.tid, sig if sig not in (SIGKILL, SIGTERM) else SIGUSR2]
        if c == 4:
            handler = rng.choice([HANDLER, HANDLER, SIG_DFL, SIG_IGN])
            flags = SA_RESTORER | rng.choice([0, SA_SIGINFO, SA_RESTART, SA_NODEFER, SA_RESETHAND, MASK64 >> 32])
            s = rng.choice([SIGUSR1, SIGUSR2, SIGRTMIN, SIGALRM, SIGCHLD, SIGKILL, 0, 65])
            if handler == SIG_DFL and s in (SIGUSR1, SIGUSR2, SIGRTMIN, SIGALRM) and rng.random() < 0.8:
                handler = HANDLER
            act = self.struct_ptr(t, SIGACTION.pack(handler, flags, RESTORER, rng.getrandbits(64)), S_D)
            return "rt_sigaction", [s, rng.choice([act, act, 0]), rng.choice([0, self.ptr(t, 32)]),
                                    rng.choice([8, 8, 8, 4, 16])]
        mask = rng.choice([0, 1 << (SIGUSR1 - 1), 1 << (SIGUSR2 - 1), MASK64, rng.getrandbits(64)])
        return "rt_sigprocmask", [rng.choice([0, 1, 2, 2, 3]), self.struct_ptr(t, _U64.pack(mask), S_C),
                                  rng.choice([0, self.ptr(t, 8)]), rng.choice([8, 8, 8, 7])]

    def g_misc(self, t: Task) -> tuple[str, list[int]]:
        rng = self.rng
        c = rng.randrange(8)
        if c == 0:
            return "unshare", [rng.choice([CLONE_NEWIPC, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWIPC | CLONE_NEWNS, 0,
                                           1 << 40, 0x80])]
        if c == 1:
            u = rng.choice([0, 1000, 1001, 1002, 65534, 0xFFFF_FFFF])
            return "setresuid", [u, u, rng.choice([u, 0xFFFF_FFFF])]
        if c == 2:
            g = rng.choice([0, 100, 1000, 0xFFFF_FFFF])
            return "setresgid", [g, g, g]
        if c == 3:
            rl = self.struct_ptr(t, struct.pack("<QQ", *rng.choice([(0, 0), (100, 100), (1 << 20, 1 << 20),
                                                                   (MASK64, MASK64), (200, 100)])), S_A)
            return "prlimit64", [rng.choice([0, t.pid]), rng.choice([12, 7, 12, 16, 1 << 32]), rl,
                                 rng.choice([0, self.mems[id(t.mm)].st + S_OUT])]
        if c == 4:
            m = self.mems[id(t.mm)]
            path = rng.choice([b"/mq", b"/dev", b"/tmp", b"/mq/q0", b"/mq/q1", b"/"])
            self.write(t, m.names + 3000, path + b"\0")
            self.write(t, m.names + 3100, b"mqueue\0")
            op = rng.randrange(5)
            if op == 0:
                return "mkdir", [m.names + 3000, 0o777]
            if op == 1:
                return "mount", [m.names + 3100, m.names + 3000, m.names + 3100, rng.choice([0, 1, 32]), 0]
            if op == 2:
                return "open", [m.names + 3000, rng.choice([O_RDWR | O_CREAT, O_RDONLY, O_RDONLY | O_DIRECTORY,
                                                            O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK]), 0o644]
            if op == 3:
                return "unlink", [m.names + 3000]
            return "getdents64", [self.fd(t), self.ptr(t, 512), rng.choice([0, 24, 512, 4096])]
        if c == 5:
            return "epoll_create1", [rng.choice([0, O_CLOEXEC, 1])]
        if c == 6:
            ev = self.struct_ptr(t, struct.pack("<IQ", rng.choice([1, 4, 5, 1 << 31]), 7), S_C)
            return "epoll_ctl", [self.fd(t), rng.choice([1, 2, 3, 0, 4]), self._mq_fd(t), ev]
        return "epoll_wait", [self.fd(t), self.ptr(t, 12 * 4), rng.choice([0, 1, 4, MASK64]), 0]

    _generators: ClassVar[list[Callable[[Fuzzer, Task], tuple[str, list[int]]]]] = [
        g_msgget, g_msgsnd, g_msgrcv, g_msgctl, g_mq_open, g_mq_unlink, g_mq_send, g_mq_receive, g_mq_notify,
        g_mq_getsetattr, g_fdops, g_signals, g_misc]
    _weights: ClassVar[list[int]] = [6, 14, 12, 8, 6, 2, 10, 8, 4, 3, 10, 8, 3]

    # -- making calls safe to make from one thread ----------------------------------------------------------
    def _defuse(self, t: Task, name: str, a: list[int]) -> bool:
        """Turn a call that could sleep indefinitely into one that cannot; True to skip the call."""
        m = self.mems[id(t.mm)]
        if name == "msgsnd":
            a[3] |= IPC_NOWAIT
        elif name == "msgrcv":
            a[4] |= IPC_NOWAIT
        elif name in ("mq_timedsend", "mq_timedreceive"):
            if a[4] == 0 or self._future(t, a[4]):
                a[4] = m.st + S_PAST_TS
        elif name == "poll":
            a[2] = 0
        elif name == "ppoll":
            a[2] = m.st + S_ZERO_TS
        elif name in ("epoll_wait", "epoll_pwait"):
            a[3] = 0
        elif name == "recvfrom":
            a[3] |= MSG_DONTWAIT
        elif name == "recvmsg":
            a[2] |= MSG_DONTWAIT
        elif name in ("read", "pread64"):
            return self._would_block_read(t, a[0])
        return False

    def _future(self, t: Task, addr: int) -> bool:
        try:
            sec, nsec = _TS.unpack(t.mm.read(addr, 16))
        except Exception:
            return False
        return bool(sec >= 0 and 0 <= nsec < 10**9 and sec * 10**9 + nsec > self.k.clock.now_ns() + 5_000_000)

    def _would_block_read(self, t: Task, fd: int) -> bool:
        from mqsentry.syscalls.linux.sys_socket import NetlinkSocket

        table = t.fd_table
        fd32 = ((fd & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000
        d = table.files.get(fd32) if table is not None else None
        return isinstance(d, NetlinkSocket) and not d.flags & O_NONBLOCK and not d.readiness(EVENT_IN)

    # -- the call and its checks ---------------------------------------------------------------------------
    def _snapshot_msq(self, t: Task, msqid: int) -> tuple[Any, int, int, int] | None:
        ids = t.ipc_ns.msgqueues.ids
        i = msqid & 0xFFFF_FFFF
        if i & 0x8000_0000:
            return None
        q = invariants.id_table(ids).get(i & 0x7FFF)
        if q is None or q.seq != i >> 15:
            return None
        return q, q.store.qnum, q.store.cbytes, q.qbytes

    def _call(self, t: Task, nr: int, name: str, a: list[int], index: int) -> None:
        rep = self.report
        desc = f"{t!r} {name}(" + ", ".join(hex(x) if x > 4096 else str(x) for x in a) + ")"
        pre = None
        if name in ("msgsnd", "msgrcv"):
            pre = self._snapshot_msq(t, a[0])
        k = self.k
        nerr = k.internal_errors
        if self.mem_check:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        rss_mode = self.mem_mode == "rss"
        if rss_mode:
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        mm = t.mm
        mm.largest = 0
        self._in_call = (t, time.monotonic())
        try:
            ret = t.syscall(nr, *a)
        except BaseException as e:
            self._in_call = None
            self._recent.append(desc + " -> RAISED")
            self._violate("exception", f"Task.syscall raised {type(e).__name__}: {e}", index, desc)
            return
        self._in_call = None
        if self.mem_check:
            _cur, peak = tracemalloc.get_traced_memory()
            grown = peak - base
            if grown > rep.max_call_alloc:
                rep.max_call_alloc = grown
            if peak > rep.peak_traced:
                rep.peak_traced = peak
            if grown > self.mem_ceiling:
                self._violate("memory", f"the call allocated {grown} bytes (ceiling {self.mem_ceiling})", index, desc)
        if rss_mode:
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
            if grown > rep.max_call_alloc:
                rep.max_call_alloc = grown
            if grown > self.mem_ceiling:
                self._violate("memory", f"peak RSS grew by {grown} bytes during the call (ceiling "
                              f"{self.mem_ceiling})", index, desc)
        if mm.largest > self.access_ceiling:
            self._violate("memory", f"the sentry asked guest memory for a {mm.largest}-byte access (ceiling "
                          f"{self.access_ceiling}): a size was not validated before the copy", index, desc)
        self._recent.append(f"{desc} = {ret}")
        rep.by_name[name] = rep.by_name.get(name, 0) + 1
        if self._killed is t:
            self._killed = None
            rep.blocked += 1
            self._violate("blocked", f"the call slept past {self.block_bound}s and was killed", index, desc)
            return
        if type(ret) is not int:
            self._violate("result", f"result {ret!r} is not an int", index, desc)
            return
        if ret < 0:
            rep.errnos[-ret] = rep.errnos.get(-ret, 0) + 1
            if not 1 <= -ret <= MAX_ERRNO:
                self._violate("result", f"result {ret} is not a valid -errno", index, desc)
            if nr not in self.table and ret not in (-ENOSYS, -ESRCH):
                self._violate("result", f"unimplemented syscall gave {ret}, not -ENOSYS", index, desc)
        else:
            rep.successes += 1
            if nr not in self.table:
                self._violate("result", f"unimplemented syscall succeeded with {ret}", index, desc)
        if k.internal_errors > nerr:
            self._violate("internal-error", k.internal_error_log[-1][:3000], index, desc)
            self._internal_seen = k.internal_errors
        if name == "msgget" and ret >= 0:
            self.msqids.append(ret)
            if len(self.msqids) > 64:
                del self.msqids[0]
        elif name == "unshare" and ret == 0 and a[0] & CLONE_NEWIPC:
            self.extra_ns.append(t.ipc_ns)
        if pre is not None:
            self._oracle_msq(name, a, ret, pre, index, desc)
        bad = self._quick_check(t, name, a)
        if bad:
            self._violate("invariant", "; ".join(bad[:5]), index, desc)

    def _quick_check(self, t: Task, name: str, a: list[int]) -> list[str]:
        """The invariants of the object the call touched (the full check runs every --check-every)."""
        if name.startswith("msg"):
            ids = t.ipc_ns.msgqueues.ids
            q = invariants.id_table(ids).get(a[0] & 0x7FFF)
            if q is None:
                return []
            out: list[str] = []
            with invariants._hold(q.mu, f"msq {q.id}", out, True) as ok:
                if ok:
                    out.extend(invariants.check_sysv_queue(q, f"msq {q.id}", True))
            return out
        if name.startswith("mq_") and name not in ("mq_open", "mq_unlink"):
            table = t.fd_table
            desc = table.files.get(((a[0] & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000) if table else None
            q = getattr(desc, "queue", None)
            if q is None:
                return []
            out = []
            with invariants._hold(q.mu, "mq", out, True) as ok:
                if ok:
                    out.extend(invariants.check_posix_queue(q, "mq", True))
            return out
        return []

    def _oracle_msq(self, name: str, a: list[int], ret: int, pre: tuple[Any, int, int, int], index: int,
                    desc: str) -> None:
        q, qnum, cbytes, qbytes = pre
        s = q.store
        if q.deleted:
            return
        if name == "msgsnd":
            size = a[2]
            fits = size + cbytes <= qbytes and qnum + 1 <= qbytes
            if ret == 0:
                if not fits:
                    self._violate("oracle", f"msgsnd of {size} bytes succeeded on a queue with qnum={qnum} "
                                  f"cbytes={cbytes} qbytes={qbytes}", index, desc)
                elif (s.qnum, s.cbytes) != (qnum + 1, cbytes + size):
                    self._violate("oracle", f"after msgsnd qnum/cbytes={s.qnum}/{s.cbytes}, expected "
                                  f"{qnum + 1}/{cbytes + size}", index, desc)
            elif ret == -11 and fits:  # EAGAIN
                self._violate("oracle", f"msgsnd gave EAGAIN although {size} bytes fit (qnum={qnum} "
                              f"cbytes={cbytes} qbytes={qbytes})", index, desc)
        else:
            copy = ((a[4] & 0xFFFF_FFFF) & MSG_COPY) != 0
            if ret >= 0:
                want = (qnum, cbytes) if copy else (qnum - 1, cbytes - (cbytes - s.cbytes))
                if s.qnum != want[0]:
                    self._violate("oracle", f"msgrcv{' MSG_COPY' if copy else ''} left qnum={s.qnum}, "
                                  f"expected {want[0]}", index, desc)
                if ret > a[2]:
                    self._violate("oracle", f"msgrcv returned {ret} > msgsz {a[2]}", index, desc)
            elif (s.qnum, s.cbytes) != (qnum, cbytes) and ret != -14:  # EFAULT loses the message
                self._violate("oracle", f"failed msgrcv ({ret}) changed qnum/cbytes {qnum}/{cbytes} -> "
                              f"{s.qnum}/{s.cbytes}", index, desc)

    def _violate(self, kind: str, message: str, index: int, call: str = "") -> None:
        # Persistent state is reported once where it first appeared; per-call findings once per syscall.
        key = (kind, call.split("(")[0].split()[-1] if kind in ("memory", "blocked", "result") and call
               else message)
        if key in self._seen:
            self.report.repeats += 1
            return  # a persistent state violation is reported once, where it first appeared
        self._seen.add(key)
        v = Violation(kind, message, self.epoch, index, call, list(self._recent))
        self.report.violations.append(v)
        self.log(v.render())


# -- CLI ---------------------------------------------------------------------------------------------------
def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fuzz", help="fuzz the raw syscall dispatch and check invariants after every call",
        description="Issue random syscalls (typed message-queue traffic, raw registers with hostile pointers "
        "and sizes, unknown numbers) from tasks of several credentials, and after every call check the "
        "result, internal errors, memory and the engines' invariants. Exit status 1 on any violation.")
    p.add_argument("--calls", type=positive_int, default=100_000, help="number of calls (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--epoch-calls", type=positive_int, default=5_000,
                   help="calls per fresh kernel (default 5000)")
    p.add_argument("--check-every", type=positive_int, default=1,
                   help="run the full (whole-kernel) invariant check every N calls (default 1); the object a "
                   "call touched is always checked after the call")
    p.add_argument("--mem-ceiling", type=positive_int, default=4 << 20,
                   help="bytes one call may allocate (default 4 MiB)")
    p.add_argument("--mem", choices=("rss", "tracemalloc", "off"), default="rss",
                   help="how a call's allocation is measured: peak-RSS growth (default, cheap), tracemalloc "
                   "(exact, ~10x slower) or not at all. The size of every guest-memory access is always checked.")
    p.add_argument("--block-bound", type=positive_float, default=2.0,
                   help="seconds a call may sleep before the watchdog kills it (default 2)")
    p.add_argument("--max-violations", type=positive_int, default=20, help="stop after this many violations")
    p.add_argument("--quiet", action="store_true", help="print only the summary (no violation details, no progress)")
    realproc.add_arguments(p)
    add_json_argument(p)
    return p


def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors of the real-process options (``--real``)."""
    realproc.validate(parser, args)


def run(args: argparse.Namespace) -> int:
    if args.real:
        if args.seeds is None:
            args.seeds = 1
        return realproc.run_cli(args, "fuzz", budget=None, bound=max(60.0, 30 * args.block_bound))
    out = text_out(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=out, flush=True))
    f = Fuzzer(seed=args.seed, calls=args.calls, epoch_calls=args.epoch_calls, check_every=args.check_every,
               mem_ceiling=args.mem_ceiling, mem_mode=args.mem, block_bound=args.block_bound,
               max_violations=args.max_violations, log=log,
               progress=Progress("fuzz", every=0.0 if args.quiet else 5.0))
    rep = f.run()
    print(rep.summary(), file=out)
    status = 1 if rep.violations else 0
    write_json(args, "fuzz", report_record(rep), status)
    return status


def report_record(rep: Report) -> dict[str, Any]:
    """The ``--json`` form of a fuzz report."""
    d = asdict(rep)
    d["errnos"] = {str(k): v for k, v in sorted(rep.errnos.items())}
    return d


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mqsentry")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return run(parser.parse_args(["fuzz", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["validate", "Fuzzer", "Report", "Violation", "add_parser", "run", "main", "report_record"]
