"""The real-process mode of ``mqsentry stress --real`` and ``mqsentry fuzz --real``: a seeded C driver run
natively and under ``mqsentry run``, each run checked against invariants that hold on Linux.

Linux counterpart: LTP's msgstress and mq stress programs (real processes, real threads), with exact
accounting. gVisor counterpart: none (gVisor owns its tasks; only a supervisor serving real processes
faces thread exit, exec, TID reuse and kills of parked callers).

The driver (tools/programs/realproc.c, compiled at run time with the system ``cc`` into a temporary
directory) prints one ``STAT`` line of counters, ``VIOLATION`` lines and, when it finds no progress,
``HANG`` lines with every thread's state. For each seed it runs natively (``unshare -i -m``: a private
IPC and mount namespace, as the platform tests do) and under ``python -m mqsentry.tools.run --stats``
(a fresh sentry). A run fails on: a violation printed by the driver, an exit status other than 0,
a hang (the driver's own bound, or the outer bound here, after which the sentry is sent SIGABRT so
that ``faulthandler`` prints its threads; the program tree's states are read from /proc first), and,
under the sentry, any internal error (``mqsentry run`` prints ``N sentry internal error(s)``).

Violations the driver tags as EINTR from a call that never sleeps are reported as a separate kind,
``pre_recv_eintr``: under seccomp user notification the host kernel fails *any* notified call with
ERESTARTSYS when a signal arrives before the supervisor received the notification (kernel/seccomp.c,
``seccomp_do_user_notification`` waits interruptibly until RECV even with WAIT_KILLABLE_RECV), so a
handler without SA_RESTART makes msgsnd(IPC_NOWAIT), mq_open or setresuid fail with EINTR, which
Linux never does. They count as failures unless ``--allow-pre-recv-eintr`` is given. Sentry bugs
this mode found (:data:`KNOWN_BUGS`) are fixed; a violation that looks like one of them is listed under
its name, so a regression is recognised, and counts as a failure unless ``--allow-known-bugs`` is given.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mqsentry.kernel.platform.launch import parent_pids
from mqsentry.tools.cliargs import Progress, positive_int, text_out, write_json

#: The driver's source, shipped with the package (package data of mqsentry.tools).
PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "realproc.c")
#: The driver's tag on EINTR from a call Linux never interrupts (see the module docstring).
NOSLEEP_TAG = "[EINTR from a call that never sleeps]"
WHERE = ("native", "sentry")
#: The driver's MAXW.
MAX_WORKERS = 32
_INTERNAL = re.compile(r"mqsentry: (\d+) sentry internal error")
_STATS = re.compile(r"^mqsentry: (\{.*\})$", re.M)
_WHO = re.compile(r"pid (\d+) tid (\d+): (.*)", re.S)
_OVERFULL = re.compile(r"mq_getattr: maxmsg (\d+) msgsize \d+ curmsgs (\d+)")
_EXEC_IMAGE = "(new image after an exec by a thread at euid 65534)"

#: Sentry bugs this mode found: name -> what went wrong. exec-creds and mq-overfull are fixed (the exec
#: is pending until the exec'ing thread calls again or is gone; an undo that no longer fits drops the
#: message as a late kill does); sysv-duplicate and exit-hang were last seen before the greenlet parking
#: and not since. A violation that looks like one is listed under its name (``RunResult.known``) and
#: fails a run unless allowed.
KNOWN_BUGS = {
    "exec-creds": "a new image runs with the credentials the sentry cached for the old leader: the execve "
                  "notification marks the group for re-reading, but an old-image call made before de_thread "
                  "consumes the mark (testsuite/platform/c/exec_race.c); seen as a 65534 image reading root's "
                  "0600 queues, or a root image refused with EACCES",
    "mq-overfull": "a POSIX queue holds more than mq_maxmsg messages: the undo of a killed receiver's dequeue "
                   "re-queues its message although a sender refilled the queue meanwhile",
    "sysv-duplicate": "a SysV message is received twice (never natively; with and without exec-creds in the same "
                      "run; cause not found yet: the undo of a dequeue whose reply was delivered is the suspect)",
    "exit-hang": "the program finished but mqsentry run did not exit: a dead thread's call stays parked in the "
                 "sentry and Platform.serve waits for it",
}


def _classify(res: RunResult) -> None:
    """Move the sentry's violations that KNOWN_BUGS explain into ``res.known``."""
    if res.where != "sentry":
        return
    exec_image = any(_EXEC_IMAGE in v for v in res.violations)
    keep: list[str] = []
    for v in res.violations:
        name = None
        m = _WHO.match(v)
        what = m.group(3) if m else v
        leader = m is not None and m.group(1) == m.group(2)
        o = _OVERFULL.search(what)
        if _EXEC_IMAGE in what or (leader and "unexpected errno 13 (EACCES)" in what and "as 65534" not in what):
            name = "exec-creds"
        elif exec_image and ("as 65534: unexpected errno" in what or what.startswith("corrupt message id=0")
                             or what.endswith("body says 0")):
            name = "exec-creds"  # what the 65534 image's successful msgsnd of a blank message caused
        elif o is not None and int(o.group(2)) > int(o.group(1)):
            name = "mq-overfull"
        elif "received twice (SysV queue" in what:
            name = "sysv-duplicate"
        if name is None:
            keep.append(v)
        else:
            res.known.setdefault(name, []).append(v)
    res.violations = keep


@dataclass
class RunResult:
    """One run of the driver (one seed, one place)."""

    where: str
    seed: int
    status: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    pre_recv_eintr: list[str] = field(default_factory=list)
    #: Violations (and hangs) of known, reported sentry bugs, by name (:data:`KNOWN_BUGS`).
    known: dict[str, list[str]] = field(default_factory=dict)
    hang: list[str] = field(default_factory=list)
    internal_errors: int = 0
    sentry_stats: str = ""
    elapsed: float = 0.0
    stderr_tail: str = ""

    def failures(self, allow_pre_recv_eintr: bool = False, allow_known: bool = False) -> list[str]:
        """Why this run failed (empty when it passed)."""
        out = [f"violation: {v}" for v in self.violations]
        if not allow_pre_recv_eintr:
            out += [f"pre-RECV EINTR: {v}" for v in self.pre_recv_eintr]
        if not allow_known:
            out += [f"known bug {name}: {v}" for name, vs in self.known.items() for v in vs]
        if self.hang:
            out.append("hang:\n  " + "\n  ".join(self.hang[:60]))
        if self.internal_errors:
            out.append(f"{self.internal_errors} sentry internal error(s)")
        if self.status not in (0, 1) and not self.hang and "exit-hang" not in self.known:
            out.append(f"driver exit status {self.status}; stderr:\n{self.stderr_tail}")
        elif self.status == 1 and not (self.violations or self.pre_recv_eintr or self.known):
            out.append(f"driver exit status 1 without a violation line; stderr:\n{self.stderr_tail}")
        elif not self.counters and not self.hang and "exit-hang" not in self.known:
            out.append(f"no STAT line (exit status {self.status}); stderr:\n{self.stderr_tail}")
        return out


def unavailable_reason(where: tuple[str, ...] = WHERE) -> str | None:
    """Why the real-process mode cannot run here (None if it can)."""
    if sys.platform != "linux":
        return "real processes need Linux"
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the driver"
    if not os.path.exists(PROGRAM):
        return f"{PROGRAM} is missing from this installation"
    if "sentry" in where:
        from mqsentry.kernel import platform

        reason = platform.available()
        if reason is not None:
            return reason
    if "native" in where:
        if shutil.which("unshare") is None:
            return "unshare(1) is missing (the native run needs a private IPC namespace)"
        if os.geteuid() != 0:
            r = subprocess.run(["unshare", "-c", "-i", "-m", "true"], capture_output=True, check=False)
            if r.returncode != 0:
                return "the native run needs root or user namespaces (unshare -c -i -m)"
    return None


@contextmanager
def built_driver() -> Iterator[str]:
    """The driver compiled into a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="mqsentry-realproc-") as tmp:
        exe = os.path.join(tmp, "realproc")
        r = subprocess.run(["cc", "-O2", "-pthread", "-Wall", "-o", exe, PROGRAM], capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            raise RuntimeError(f"cc {PROGRAM} failed:\n{r.stderr}")
        os.chmod(tmp, 0o755)  # the driver re-executes itself by path (also from a thread at uid 65534)
        yield exe


def command(exe: str, where: str, seed: int, ops: int, workers: int, bound: float) -> list[str]:
    driver = [exe, str(seed), str(ops), str(workers), f"{bound:g}"]
    if where == "native":
        return ["unshare", "-i", "-m", *driver] if os.geteuid() == 0 else ["unshare", "-c", "-i", "-m", *driver]
    return [sys.executable, "-P", "-X", "faulthandler", "-m", "mqsentry.tools.run", "--stats", *driver]


def parse(res: RunResult, stdout: str, stderr: str) -> None:
    """Fill ``res`` from the driver's output and ``mqsentry run``'s standard error."""
    for line in stdout.splitlines():
        if line.startswith("STAT "):
            for kv in line[5:].split():
                k, _, v = kv.partition("=")
                if v.lstrip("-").isdigit():
                    res.counters[k] = int(v)
        elif line.startswith("VIOLATION "):
            text = line[len("VIOLATION "):]
            (res.pre_recv_eintr if NOSLEEP_TAG in text and res.where == "sentry" else res.violations).append(text)
        elif line.startswith("HANG"):
            res.hang.append(line)
    m = _INTERNAL.search(stderr)
    if m:
        res.internal_errors = int(m.group(1))
    m = _STATS.search(stderr)
    if m:
        res.sentry_stats = m.group(1)
    res.stderr_tail = stderr[-3000:]
    _classify(res)


def _tree_states(root: int) -> list[str]:
    """Every process and thread below ``root``: state, wchan and syscall (a hang's diagnosis)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    out: list[str] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        frontier.extend(children.get(pid, []))
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                with open(f"{base}/stat", "rb") as f:
                    st = f.read()
                comm = st[st.index(b"(") + 1:st.rindex(b")")].decode(errors="replace")
                state = st[st.rindex(b")") + 2:st.rindex(b")") + 3].decode()
                with open(f"{base}/wchan") as f:
                    wchan = f.read()
                with open(f"{base}/syscall") as f:
                    sc = f.read().split()[:1]
            except OSError:
                continue
            out.append(f"HANG(outer) pid={pid} tid={tid} comm={comm} state={state} wchan={wchan} syscall={sc}")
    return out


def run_one(exe: str, where: str, seed: int, ops: int, workers: int, bound: float) -> RunResult:
    """Run the driver once. The driver has its own hang bound; here a run is a hang when it is still
    going 3 * bound + 60 s after the start, or ``bound`` s after the driver printed its STAT line
    (the program is done; only ``mqsentry run`` is left to exit)."""
    res = RunResult(where, seed)
    start = time.monotonic()
    p = subprocess.Popen(command(exe, where, seed, ops, workers, bound), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True, cwd="/")
    out: list[str] = []
    err: list[str] = []
    finished: list[float] = []  # when the STAT line came

    def read_out() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            out.append(line)
            if line.startswith("STAT "):
                finished.append(time.monotonic())

    def read_err() -> None:
        assert p.stderr is not None
        err.extend(p.stderr)

    readers = [threading.Thread(target=fn, daemon=True) for fn in (read_out, read_err)]
    for r in readers:
        r.start()
    why = None
    while why is None:
        try:
            p.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            now = time.monotonic()
            if finished and now - finished[0] > bound:
                why = f"the program finished but {where} run of seed {seed} did not exit within {bound:g}s"
            elif now - start > 3 * bound + 60:
                why = f"{where} run of seed {seed} still running after {3 * bound + 60:g}s"
    hang: list[str] = []
    if why is not None:
        hang = [f"HANG(outer) {why}", *_tree_states(p.pid)]
        # SIGABRT: faulthandler (-X faulthandler) prints the sentry's threads; the program tree dies with it.
        os.kill(p.pid, signal.SIGABRT if where == "sentry" else signal.SIGKILL)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for r in readers:
        r.join()
    res.status = p.returncode
    res.elapsed = time.monotonic() - start
    parse(res, "".join(out), "".join(err))
    if hang:
        hang += [line.rstrip() for line in err if line.strip()][-200:]
        if where == "sentry" and finished:
            res.known.setdefault("exit-hang", []).extend(hang)
        else:
            res.hang += hang
    return res


#: Counters summed over runs in the report (the driver prints more; all are kept in --json).
HEADLINE = ("ops", "sent_ok", "received", "queued_at_end", "destroyed", "missing", "loss_allowance", "eintr",
            "etimedout", "thread_creates", "thread_exits", "leader_exits", "execs", "execs_nonleader",
            "execs_dropped", "forks", "tid_forced", "tid_reuses", "cred_drops", "eacces", "kills", "kills_parked",
            "stop_storms", "signals", "rmids", "unlinks", "notify_got")


@dataclass
class Campaign:
    """Many seeds, each run where asked; the aggregate figures and every failure."""

    where: tuple[str, ...]
    ops: int
    workers: int
    runs: list[RunResult] = field(default_factory=list)
    skipped: str | None = None

    def totals(self, where: str) -> dict[str, int]:
        tot: dict[str, int] = {}
        for r in self.runs:
            if r.where == where:
                for k, v in r.counters.items():
                    if k not in ("seed", "workers", "ops_target", "pidns", "root", "hang"):
                        tot[k] = tot.get(k, 0) + v
        return tot

    def failures(self, allow_pre_recv_eintr: bool = False, allow_known: bool = False) -> list[str]:
        return [f"{r.where} seed {r.seed}: {f}" for r in self.runs
                for f in r.failures(allow_pre_recv_eintr, allow_known)]

    def summary(self) -> str:
        if self.skipped:
            return f"real-process mode skipped: {self.skipped}"
        lines = []
        for where in self.where:
            rs = [r for r in self.runs if r.where == where]
            tot = self.totals(where)
            figs = ", ".join(f"{k}={tot.get(k, 0)}" for k in HEADLINE)
            lines.append(f"{where}: {len(rs)} seed(s) ({min((r.seed for r in rs), default=0)}.."
                         f"{max((r.seed for r in rs), default=0)}), {sum(r.elapsed for r in rs):.1f}s: {figs}; "
                         f"violations={sum(len(r.violations) for r in rs)} "
                         f"pre_recv_eintr={sum(len(r.pre_recv_eintr) for r in rs)} "
                         f"hangs={sum(1 for r in rs if r.hang)} internal_errors={sum(r.internal_errors for r in rs)}"
                         + "".join(f"; known bug {n}: {sum(1 for r in rs if n in r.known)} seed(s)"
                                   for n in KNOWN_BUGS if any(n in r.known for r in rs)))
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        return {"where": list(self.where), "ops_per_seed": self.ops, "workers": self.workers, "skipped": self.skipped,
                "totals": {w: self.totals(w) for w in self.where},
                "runs": [r.__dict__ for r in self.runs]}


def campaign(seeds: Callable[[], Iterator[int]], ops: int, workers: int, bound: float,
             where: tuple[str, ...] = WHERE, progress: Callable[[str], None] | None = None) -> Campaign:
    """Run the driver for each seed ``seeds()`` yields, in each place of ``where``."""
    c = Campaign(where, ops, workers)
    reason = unavailable_reason(where)
    if reason is not None:
        c.skipped = reason
        return c
    with built_driver() as exe:
        for seed in seeds():
            for w in where:
                r = run_one(exe, w, seed, ops, workers, bound)
                c.runs.append(r)
                if progress is not None:
                    bad = r.failures()
                    progress(f"seed {seed} {w}: {r.counters.get('ops', 0)} ops in {r.elapsed:.1f}s, "
                             f"{len(r.violations)} violation(s), {len(r.pre_recv_eintr)} pre-RECV EINTR"
                             f"{''.join(f', known bug {n}' for n in r.known)}"
                             f"{', HANG' if r.hang else ''}{', FAILED' if bad else ''}")
    return c


# -- the command-line half (shared by ``mqsentry stress --real`` and ``mqsentry fuzz --real``) -------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The real-process options; every one but ``--real`` is a usage error without ``--real``."""
    g = p.add_argument_group("real-process mode", "run the seeded C driver (tools/programs/realproc.c) natively "
                             "and under `mqsentry run`, checking message accounting, errnos, hangs and "
                             "internal errors")
    g.add_argument("--real", action="store_true", help="real processes instead of the embedded kernel")
    g.add_argument("--where", choices=("both", *WHERE), default=None, help="where each seed runs (default both)")
    g.add_argument("--workers", type=positive_int, default=None,
                   help=f"worker processes per run, 1..{MAX_WORKERS} (default 4; each runs up to 4 threads)")
    g.add_argument("--ops", type=positive_int, default=None, help="operations per run (default 4000)")
    g.add_argument("--seeds", type=positive_int, default=None,
                   help="number of consecutive seeds from --seed (fuzz default 1; stress: until --seconds ran out)")
    g.add_argument("--allow-pre-recv-eintr", action="store_true",
                   help="do not fail on EINTR from calls that never sleep under the sentry (a known platform "
                   "limitation, see `mqsentry.tools.realproc`); they are still counted and reported")
    g.add_argument("--allow-known-bugs", action="store_true",
                   help="do not fail on the known, reported sentry bugs (" + ", ".join(KNOWN_BUGS) + "); they are "
                   "still counted and reported")


def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    given = [f"--{n.replace('_', '-')}" for n in ("where", "workers", "ops", "seeds")
             if getattr(args, n, None) is not None]
    for flag in ("allow_pre_recv_eintr", "allow_known_bugs"):
        if getattr(args, flag, False):
            given.append(f"--{flag.replace('_', '-')}")
    if given and not args.real:
        parser.error(f"{', '.join(given)} only apply to --real")
    if args.real and args.workers is not None and args.workers > MAX_WORKERS:
        parser.error(f"--workers: at most {MAX_WORKERS}")


def run_cli(args: argparse.Namespace, command_name: str, budget: float | None, bound: float) -> int:
    """Run the campaign ``args`` describe; ``budget`` (seconds) keeps adding seeds until it ran out."""
    out = text_out(args)
    where = WHERE if args.where in (None, "both") else (args.where,)
    prog = Progress(command_name, every=0.0 if args.quiet else 1.0)
    start = time.monotonic()

    def seeds() -> Iterator[int]:
        s = args.seed
        while True:
            yield s
            s += 1
            if args.seeds is not None:
                if s >= args.seed + args.seeds:
                    return
            elif budget is None or time.monotonic() - start >= budget:
                return

    c = campaign(seeds, ops=args.ops or 4000, workers=args.workers or 4, bound=bound, where=where,
                 progress=prog.step)
    print(c.summary(), file=out)
    bad = c.failures(args.allow_pre_recv_eintr, args.allow_known_bugs)
    for f in bad[:40]:
        print("  FAILURE:", f, file=out)
    status = 1 if bad else 0
    write_json(args, command_name, {"real": True, **c.record(), "failures": bad}, status)
    return status


__all__ = ["PROGRAM", "NOSLEEP_TAG", "KNOWN_BUGS", "RunResult", "Campaign", "unavailable_reason", "built_driver",
           "run_one", "campaign", "parse", "command", "add_arguments", "validate", "run_cli", "MAX_WORKERS"]
