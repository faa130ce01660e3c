"""``mqsentry stress``: many tasks on real threads hammering SysV and POSIX queues, with exact accounting.

Linux counterpart: none in the kernel (LTP's msgstress and mq stress tests play this role for Linux).
gVisor counterpart: the concurrency cases of test/syscalls/linux/msgqueue.cc and mq.cc, scaled up.

Every message carries a unique 8-byte id. Roles (``--tasks`` of them, 16 by default): SysV
senders (blocking and IPC_NOWAIT, types 1..4), SysV receivers (any type, a given type, lowest type
<= n, MSG_EXCEPT; blocking and non-blocking), MSG_COPY readers, POSIX senders and receivers (blocking
with near deadlines, non-blocking, and without a deadline), and one chaos task that interrupts
blocked calls with signals (handlers with and without SA_RESTART; deliveries are recorded in
``task.tg.delivered``), removes SysV queues with IPC_RMID and unlinks POSIX queues mid-flight.
Tasks are a mix of separate processes (fork) and threads of one process. With fewer than six tasks
not every role can run: the first ``--tasks`` of SysV sender, SysV receiver, POSIX sender, POSIX
receiver and chaos run (:func:`plan`), so that even one or two tasks make a meaningful run.

Checked: every call's result is one Linux allows for that call in that situation; every message sent
successfully is received exactly once, or is still queued at the end, or was destroyed by an IPC_RMID
(the removed queue's own store is read after the removal, so that count is exact); nothing is
received that was not sent successfully; typed receives got a matching type; the final engine state
passes :mod:`mqsentry.tools.invariants`; no internal error; and the run ends within a bound (a watchdog dumps
every thread's stack with ``faulthandler`` and fails the run otherwise).
"""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import random
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mqsentry.abi.linux.errno import EAGAIN, EIDRM, EINTR, EINVAL, ENOMSG, ETIMEDOUT
from mqsentry.abi.linux.file import O_CREAT, O_NONBLOCK, O_RDWR
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_EXCEPT, MSQID64_DS
from mqsentry.abi.linux.signal import SA_RESTART, SA_RESTORER, SA_SIGINFO, SIGACTION
from mqsentry.boot import Kernel
from mqsentry.fs.mqfs import QueueFD
from mqsentry.kernel.task import Task
from mqsentry.tools import invariants, realproc
from mqsentry.tools.cliargs import Progress, add_json_argument, positive_float, positive_int, text_out, write_json

SIGUSR1, SIGUSR2 = 10, 12
INT64_MAX = (1 << 63) - 1
HANDLER = 0x7000_0000_1000
RESTORER = 0x7000_0000_2000
_ID = struct.Struct("<Q")
_MTYPE = struct.Struct("<q")
_TS = struct.Struct("<qq")
BODY = 48  # bytes of text per SysV message (id + padding)
MQ_MSGSIZE = 64
MQ_MAXMSG = 4
SYSV_QBYTES = 6 * (BODY + 8)  # small: senders block often


@dataclass
class Result:
    tasks: int
    seconds: float
    sent: int = 0
    received: int = 0
    queued_at_end: int = 0
    destroyed: int = 0
    copies: int = 0
    calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    signals_delivered: int = 0
    rmids: int = 0
    unlinks: int = 0
    violations: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def summary(self) -> str:
        top = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items(), key=lambda kv: -kv[1])[:16])
        return (f"stress: {self.tasks} tasks for {self.seconds:.1f}s (ran {self.elapsed:.1f}s): {self.calls} calls, "
                f"{self.sent} messages sent, {self.received} received, {self.queued_at_end} still queued, "
                f"{self.destroyed} destroyed by IPC_RMID, {self.copies} MSG_COPY reads, {self.rmids} IPC_RMIDs, "
                f"{self.unlinks} mq_unlinks, {self.signals_delivered} signal deliveries; "
                f"{len(self.violations)} violation(s)\n  outcomes: {top}")


class Stress:
    """One stress run (see the module docstring)."""

    def __init__(self, tasks: int = 16, seconds: float = 3.0, seed: int = 1, sysv_queues: int = 3,
                 posix_queues: int = 3, bound: float = 60.0) -> None:
        if tasks < 1:
            raise ValueError(f"a stress run needs at least one task, not {tasks}")
        self.ntasks = tasks
        self.seconds = seconds
        self.seed = seed
        self.bound = bound
        self.res = Result(tasks, seconds)
        self.k = Kernel(arch="amd64")
        self.root = self.k.new_task(uid=0, gid=0)
        self.nr = self.k.syscall_table.number
        self.mu = threading.Lock()  # guards the ledgers below
        self.ids = itertools.count(1)
        #: id -> (kind, queue tag, type or prio, size) for every message whose send returned 0.
        self.sent: dict[int, tuple[str, int, int, int]] = {}
        self.attempted: set[int] = set()
        self.received: dict[int, int] = {}
        self.destroyed: set[int] = set()
        self.stop = threading.Event()
        self.sysv: list[int] = []  # msqids, replaced after IPC_RMID
        self.sysv_tag: dict[int, int] = {}  # msqid -> generation tag
        self.sysv_objs: list[Any] = []
        self.mq_names = [b"stress%d" % i for i in range(posix_queues)]
        self.mq_objs: dict[int, Any] = {}  # id(queue) -> queue, every POSIX queue ever opened
        self.workers: list[tuple[str, Any]] = []
        self._setup(sysv_queues)

    # -- helpers ------------------------------------------------------------------------------------------
    def sys(self, t: Task, name: str, *a: int) -> int:
        ret = t.syscall(self.nr(name), *a)
        if type(ret) is not int or (ret < 0 and not 1 <= -ret <= 133):
            self.violate(f"{name} returned {ret!r}")
        return ret

    def violate(self, msg: str) -> None:
        with self.mu:
            if len(self.res.violations) < 100:
                self.res.violations.append(msg)

    def outcome(self, what: str, ret: int) -> None:
        key = f"{what}:{'ok' if ret >= 0 else -ret}"
        with self.mu:
            self.res.outcomes[key] = self.res.outcomes.get(key, 0) + 1
            self.res.calls += 1

    def _setup(self, nsysv: int) -> None:
        r = self.root
        scratch = r.mm.alloc(4096)
        for sig, flags in ((SIGUSR1, SA_RESTART), (SIGUSR2, 0)):
            r.mm.write(scratch, SIGACTION.pack(HANDLER, flags | SA_SIGINFO | SA_RESTORER, RESTORER, 0))
            if self.sys(r, "rt_sigaction", sig, scratch, 0, 8) != 0:
                raise RuntimeError("rt_sigaction failed")
        for _ in range(nsysv):
            self.sysv.append(self._new_sysv(r, scratch))
        for name in self.mq_names:
            self._create_mq(r, scratch, name)

    def _new_sysv(self, t: Task, scratch: int) -> int:
        q = self.sys(t, "msgget", IPC_PRIVATE, IPC_CREAT | 0o600)
        if q < 0:
            raise RuntimeError(f"msgget: {q}")
        # Lower msg_qbytes so that senders block: IPC_STAT, edit, IPC_SET.
        self.sys(t, "msgctl", q, IPC_STAT, scratch)
        f = list(MSQID64_DS.unpack(t.mm.read(scratch, MSQID64_DS.size)))
        f[MSQID64_DS.index("qbytes")] = SYSV_QBYTES
        t.mm.write(scratch, MSQID64_DS.pack(*f))
        if self.sys(t, "msgctl", q, IPC_SET, scratch) != 0:
            raise RuntimeError("IPC_SET failed")
        obj = invariants.id_table(t.ipc_ns.msgqueues.ids)[q & 0x7FFF]
        with self.mu:
            self.sysv_objs.append(obj)
        return q

    def _create_mq(self, t: Task, scratch: int, name: bytes) -> None:
        t.mm.write(scratch + 512, name + b"\0")
        t.mm.write(scratch + 256, MQ_ATTR.pack(0, MQ_MAXMSG, MQ_MSGSIZE, 0))
        fd = self.sys(t, "mq_open", scratch + 512, O_RDWR | O_CREAT, 0o600, scratch + 256)
        if fd >= 0:
            self._remember_mq(t, fd)
            self.sys(t, "close", fd)

    def _remember_mq(self, t: Task, fd: int) -> None:
        desc = t.fd_table.get(fd)
        assert isinstance(desc, QueueFD)
        q = desc.queue
        with self.mu:
            self.mq_objs[id(q)] = q

    # -- roles ----------------------------------------------------------------------------------------------
    def sysv_sender(self, t: Task, rng: random.Random, buf: int) -> None:
        while not self.stop.is_set():
            with self.mu:
                q = rng.choice(self.sysv)
            mid = next(self.ids)
            mtype = rng.randint(1, 4)
            t.mm.write(buf, _MTYPE.pack(mtype) + _ID.pack(mid) + bytes(BODY - 8))
            nowait = rng.random() < 0.3
            with self.mu:
                self.attempted.add(mid)
            ret = self.sys(t, "msgsnd", q, buf, BODY, IPC_NOWAIT if nowait else 0)
            self.outcome("msgsnd" + ("/nowait" if nowait else ""), ret)
            if ret == 0:
                with self.mu:
                    self.sent[mid] = ("sysv", q, mtype, BODY)
            elif -ret not in ((EAGAIN, EIDRM, EINVAL) if nowait else (EINTR, EIDRM, EINVAL)):
                self.violate(f"msgsnd(nowait={nowait}) gave {ret}")

    def sysv_receiver(self, t: Task, rng: random.Random, buf: int) -> None:
        while not self.stop.is_set():
            with self.mu:
                q = rng.choice(self.sysv)
            sel = rng.choice(["any", "eq", "le", "except"])
            n = rng.randint(1, 4)
            typ, flags = {"any": (0, 0), "eq": (n, 0), "le": (-n, 0), "except": (n, MSG_EXCEPT)}[sel]
            nowait = rng.random() < 0.3
            if nowait:
                flags |= IPC_NOWAIT
            ret = self.sys(t, "msgrcv", q, buf, BODY, typ & 0xFFFF_FFFF_FFFF_FFFF, flags)
            self.outcome(f"msgrcv/{sel}" + ("/nowait" if nowait else ""), ret)
            if ret >= 0:
                mtype, mid = struct.unpack("<qQ", t.mm.read(buf, 16))
                ok = {"any": True, "eq": mtype == n, "le": mtype <= n, "except": mtype != n}[sel]
                if not ok:
                    self.violate(f"msgrcv {sel} {n} got a message of type {mtype}")
                self._got(mid, "sysv", mtype)
            elif -ret not in ((ENOMSG, EIDRM, EINVAL) if nowait else (EINTR, EIDRM, EINVAL)):
                self.violate(f"msgrcv(nowait={nowait}) gave {ret}")

    def copy_reader(self, t: Task, rng: random.Random, buf: int) -> None:
        while not self.stop.is_set():
            with self.mu:
                q = rng.choice(self.sysv)
            ret = self.sys(t, "msgrcv", q, buf, BODY, rng.randrange(0, 8), MSG_COPY | IPC_NOWAIT)
            self.outcome("msgrcv/copy", ret)
            if ret >= 0:
                mid = _ID.unpack(t.mm.read(buf + 8, 8))[0]
                with self.mu:
                    self.res.copies += 1
                    if mid not in self.attempted:
                        self.violations_locked(f"MSG_COPY returned message {mid}, which nobody sent")
            elif -ret not in (ENOMSG, EIDRM, EINVAL):
                self.violate(f"MSG_COPY gave {ret}")
            time.sleep(0.0005)

    def violations_locked(self, msg: str) -> None:
        if len(self.res.violations) < 100:
            self.res.violations.append(msg)

    def _open_all(self, t: Task, buf: int, nonblock: bool) -> list[int]:
        fds = []
        for name in self.mq_names:
            t.mm.write(buf + 512, name + b"\0")
            fd = self.sys(t, "mq_open", buf + 512, O_RDWR | (O_NONBLOCK if nonblock else 0), 0, 0)
            if fd >= 0:
                self._remember_mq(t, fd)
                fds.append(fd)
        return fds

    def _deadline(self, t: Task, rng: random.Random, buf: int) -> tuple[int, int | None]:
        """(timespec pointer or 0, absolute deadline ns, or None for none, or -1 for an invalid
        timespec, which must fail with EINVAL before anything else happens). Besides near deadlines:
        the extreme and odd ones real suites use (``tv_sec = INT64_MAX``, with the largest
        ``tv_nsec`` too; already expired ones; a negative ``tv_sec``; ``tv_nsec`` outside [0, 1e9))."""
        r = rng.random()
        if r < 0.15:
            return 0, None
        if r < 0.6:
            dl = self.k.clock.now_ns() + rng.randrange(0, 20_000_000)
            sec, nsec = divmod(dl, 10**9)
        elif r < 0.75:
            sec, nsec = rng.choice(((INT64_MAX, 0), (INT64_MAX, 999_999_999), (1 << 40, 0)))
            dl = sec * 10**9 + nsec
        elif r < 0.85:
            sec, nsec = rng.choice(((0, 0), (0, 999_999_999), divmod(self.k.clock.now_ns() - 10**9, 10**9)))
            dl = sec * 10**9 + nsec
        else:
            sec, nsec = rng.choice(((-1, 0), (-(1 << 63), 0), (0, 10**9), (0, -1), (INT64_MAX, 10**9),
                                    (0, (1 << 63) - 1)))
            dl = -1
        t.mm.write(buf + 256, _TS.pack(sec, nsec))
        return buf + 256, dl

    def _pick_fd(self, t: Task, rng: random.Random, buf: int, fds: dict[bool, list[int]], nonblock: bool) -> int | None:
        """A random descriptor of the wanted blocking mode, now and then re-opening every queue so
        that queues re-created after an unlink are used too; None when no queue exists right now."""
        if not fds[nonblock] or rng.random() < 0.02:
            fds[nonblock] = (fds[nonblock] + self._open_all(t, buf, nonblock))[-12:]
        return rng.choice(fds[nonblock]) if fds[nonblock] else None

    def mq_sender(self, t: Task, rng: random.Random, buf: int) -> None:
        fds = {False: self._open_all(t, buf, False), True: self._open_all(t, buf, True)}
        while not self.stop.is_set():
            nonblock = rng.random() < 0.3
            fd = self._pick_fd(t, rng, buf, fds, nonblock)
            if fd is None:
                continue
            mid = next(self.ids)
            prio = rng.randrange(0, 8)
            t.mm.write(buf, _ID.pack(mid) + bytes(8))
            ts, dl = self._deadline(t, rng, buf)
            with self.mu:
                self.attempted.add(mid)
            ret = self.sys(t, "mq_timedsend", fd, buf, 16, prio, ts)
            self.outcome("mq_send" + ("/nonblock" if nonblock else "/deadline" if ts else "/wait"), ret)
            if dl == -1:
                if ret != -EINVAL:
                    self.violate(f"mq_timedsend with an invalid timespec gave {ret}, not EINVAL")
            elif ret == 0:
                with self.mu:
                    self.sent[mid] = ("posix", fd, prio, 16)
            elif ret == -ETIMEDOUT:
                if dl is None or self.k.clock.now_ns() < dl:
                    self.violate("mq_timedsend timed out before its deadline")
            elif ret == -EAGAIN and nonblock:
                time.sleep(0.0002)  # full: let the receivers run instead of spinning
            elif -ret not in ((EAGAIN,) if nonblock else (EINTR,)):
                self.violate(f"mq_timedsend(nonblock={nonblock}, deadline={ts != 0}) gave {ret}")

    def mq_receiver(self, t: Task, rng: random.Random, buf: int) -> None:
        fds = {False: self._open_all(t, buf, False), True: self._open_all(t, buf, True)}
        while not self.stop.is_set():
            nonblock = rng.random() < 0.3
            fd = self._pick_fd(t, rng, buf, fds, nonblock)
            if fd is None:
                continue
            ts, dl = self._deadline(t, rng, buf)
            ret = self.sys(t, "mq_timedreceive", fd, buf, MQ_MSGSIZE, buf + 128, ts)
            self.outcome("mq_receive" + ("/nonblock" if nonblock else "/deadline" if ts else "/wait"), ret)
            if dl == -1:
                if ret != -EINVAL:
                    self.violate(f"mq_timedreceive with an invalid timespec gave {ret}, not EINVAL")
            elif ret >= 0:
                mid = _ID.unpack(t.mm.read(buf, 8))[0]
                prio = struct.unpack("<I", t.mm.read(buf + 128, 4))[0]
                self._got(mid, "posix", prio)
            elif ret == -ETIMEDOUT:
                if dl is None or self.k.clock.now_ns() < dl:
                    self.violate("mq_timedreceive timed out before its deadline")
            elif ret == -EAGAIN and nonblock:
                time.sleep(0.0002)
            elif -ret not in ((EAGAIN,) if nonblock else (EINTR,)):
                self.violate(f"mq_timedreceive(nonblock={nonblock}, deadline={ts != 0}) gave {ret}")

    def _got(self, mid: int, kind: str, typ: int) -> None:
        with self.mu:
            self.received[mid] = self.received.get(mid, 0) + 1
            n = self.received[mid]
            info = self.sent.get(mid)
        if n > 1:
            self.violate(f"message {mid} received {n} times")
        # A receive can complete before the sender's thread has recorded its success: check at the end.
        elif info is not None and (info[0] != kind or info[2] != typ):
            self.violate(f"message {mid} sent as {info} arrived as {kind} type/prio {typ}")

    def chaos(self, t: Task, rng: random.Random, buf: int) -> None:
        """Signals to sleeping workers, IPC_RMID of SysV queues, mq_unlink + re-create of POSIX queues."""
        while not self.stop.wait(0.002):
            r = rng.random()
            if r < 0.75:
                _name, victim = rng.choice(self.workers)
                sig = rng.choice((SIGUSR1, SIGUSR2))
                self.sys(t, "tgkill", victim.pid, victim.tid, sig)
            elif r < 0.80:
                # IPC_SET: receivers re-check, senders that now fit are woken (msgctl_down).
                with self.mu:
                    q = rng.choice(self.sysv)
                if self.sys(t, "msgctl", q, IPC_STAT, buf) == 0:
                    f = list(MSQID64_DS.unpack(t.mm.read(buf, MSQID64_DS.size)))
                    f[MSQID64_DS.index("qbytes")] = rng.choice((SYSV_QBYTES // 2, SYSV_QBYTES, 2 * SYSV_QBYTES))
                    t.mm.write(buf, MSQID64_DS.pack(*f))
                    ret = self.sys(t, "msgctl", q, IPC_SET, buf)
                    self.outcome("msgctl/set", ret)
                    if ret < 0 and ret != -EINVAL:  # EINVAL: removed meanwhile
                        self.violate(f"IPC_SET gave {ret}")
            elif r < 0.93:
                with self.mu:
                    i = rng.randrange(len(self.sysv))
                    q = self.sysv[i]
                obj = invariants.id_table(t.ipc_ns.msgqueues.ids).get(q & 0x7FFF)
                old_store = obj.store if obj is not None and obj.id == q else None
                ret = self.sys(t, "msgctl", q, IPC_RMID, 0)
                self.outcome("msgctl/rmid", ret)
                if ret == 0:
                    # freeque swapped in a fresh store: the old one holds exactly what was destroyed.
                    if old_store is None or obj is None or obj.store is old_store:
                        self.violate("cannot account for the messages IPC_RMID destroyed")
                    else:
                        lost = [_ID.unpack_from(b, 8)[0] for b in old_store]
                        with self.mu:
                            self.destroyed.update(lost)
                            self.res.rmids += 1
                    newq = self._new_sysv(t, buf)
                    with self.mu:
                        self.sysv[i] = newq
            else:
                qname = rng.choice(self.mq_names)
                t.mm.write(buf + 512, qname + b"\0")
                ret = self.sys(t, "mq_unlink", buf + 512)
                self.outcome("mq_unlink", ret)
                if ret == 0:
                    with self.mu:
                        self.res.unlinks += 1
                self._create_mq(t, buf, qname)

    # -- the run ----------------------------------------------------------------------------------------------
    def run(self, progress: Progress | None = None) -> Result:
        res = self.res
        roles = plan(self.ntasks)
        tasks: list[tuple[str, Any]] = []
        proc = None
        for i, role in enumerate(r for r in roles if r != "chaos"):
            if i % 3 == 2 and proc is not None:
                t = proc.clone_thread()  # threads of one process share memory, fds and handlers
            else:
                t = proc = self.root.fork()
            tasks.append((role, t))
        chaos = [("chaos", self.root.fork())] if "chaos" in roles else []
        self.workers = tasks
        threads = []
        for i, (role, t) in enumerate(tasks + chaos):
            buf = t.mm.alloc(4096)
            th = threading.Thread(target=self._guard, args=(getattr(self, role), t, random.Random(f"{self.seed}:{i}"),
                                                            buf, role), name=f"stress-{role}-{t.tid}", daemon=True)
            threads.append(th)
        t0 = time.monotonic()
        for th in threads:
            th.start()
        stop_at = t0 + self.seconds
        # Without a chaos task nothing interrupts a receive that waits for a type nobody sends: the
        # harness then signals sleepers itself every few milliseconds, as the chaos task would.
        nudge = not chaos
        while not self.stop.wait(max(0.0, min(0.005 if nudge else 1.0, stop_at - time.monotonic()))):
            if progress is not None:
                progress.tick(lambda: f"{self.res.calls} calls, {len(self.res.violations)} violation(s), "
                              f"{max(0.0, stop_at - time.monotonic()):.0f}s to go")
            if time.monotonic() >= stop_at:
                break
            if nudge:
                for _, t in tasks:
                    if t.state == "S":
                        self.sys(self.root, "tgkill", t.pid, t.tid, SIGUSR1)
        self.stop.set()
        # Wake every sleeper: SIGUSR2's handler has no SA_RESTART, so blocked calls return EINTR.
        end = time.monotonic() + self.bound
        while any(th.is_alive() for th in threads):
            if time.monotonic() > end:
                sys.stderr.write("stress: workers did not finish; thread stacks follow\n")
                faulthandler.dump_traceback(all_threads=True)
                self.violate(f"deadlock: workers still running {self.bound}s after the stop")
                res.elapsed = time.monotonic() - t0
                return res
            for _, t in tasks:
                if t.state == "S":
                    self.sys(self.root, "tgkill", t.pid, t.tid, SIGUSR2)
            time.sleep(0.002)
        res.elapsed = time.monotonic() - t0
        self._final(tasks + chaos)
        return res

    def _guard(self, fn: Any, t: Task, rng: random.Random, buf: int, role: str) -> None:
        try:
            fn(t, rng, buf)
        except BaseException as e:
            import traceback

            self.violate(f"{role} worker crashed: {type(e).__name__}: {e}\n{traceback.format_exc()}")

    def _final(self, tasks: list[tuple[str, Any]]) -> None:
        res = self.res
        k = self.k
        # Exact end state: what is still queued, read from the engines (nothing runs now).
        queued: set[int] = set()
        for q in list(self.sysv_objs):
            if not q.deleted:
                queued.update(_ID.unpack_from(b, 8)[0] for b in q.store)
        for q in list(self.mq_objs.values()):
            with q.mu:
                nodes = q.state_locked().nodes
            for d in nodes.values():
                queued.update(_ID.unpack_from(m, 0)[0] for m in d)
        bad = invariants.check_kernel(k)
        res.violations.extend(bad)
        sent = set(self.sent)
        got = set(self.received)
        res.sent = len(sent)
        res.received = sum(self.received.values())
        res.queued_at_end = len(queued)
        res.destroyed = len(self.destroyed)
        phantom = got - sent
        if phantom:
            res.violations.append(f"{len(phantom)} message(s) received but never sent successfully: "
                                  f"{sorted(phantom)[:10]}")
        lost = sent - got - queued - self.destroyed
        if lost:
            res.violations.append(f"{len(lost)} message(s) lost (sent, never received, not queued, not "
                                  f"destroyed): {sorted(lost)[:10]} e.g. {self.sent[min(lost)]}")
        twice = (got & queued) | (got & self.destroyed) | (queued & self.destroyed)
        if twice:
            res.violations.append(f"{len(twice)} message(s) accounted twice: {sorted(twice)[:10]}")
        unsent = (queued | self.destroyed) - sent
        if unsent:
            res.violations.append(f"{len(unsent)} queued/destroyed message(s) whose send failed: "
                                  f"{sorted(unsent)[:10]}")
        res.signals_delivered = sum(len(tg.delivered) for tg in list(k.thread_groups.values()))
        if k.internal_errors:
            res.violations.append(f"{k.internal_errors} internal error(s): {k.internal_error_log[0][:2000]}")
        # Every process exits: fds close, unlinked queues are freed, invariants still hold.
        for _, t in tasks + [("root", self.root)]:
            if not t.exited:
                t.exit_group(0)
        res.violations.extend("after exit: " + v for v in invariants.check_kernel(k))


#: The worker roles, cycled through when there are six tasks or more (one of them is the chaos task).
ROLES = ("sysv_sender", "sysv_receiver", "copy_reader", "mq_sender", "mq_receiver")
#: Who runs when there are fewer than six tasks: both directions of both kinds of queue first.
FEW = ("sysv_sender", "sysv_receiver", "mq_sender", "mq_receiver", "chaos")


def plan(ntasks: int) -> list[str]:
    """The role of each of ``ntasks`` tasks (``"chaos"`` at most once)."""
    if ntasks < 1:
        raise ValueError(f"a stress run needs at least one task, not {ntasks}")
    if ntasks < 6:
        return list(FEW[:ntasks])
    return [ROLES[i % len(ROLES)] for i in range(ntasks - 1)] + ["chaos"]


def stress(tasks: int = 16, seconds: float = 3.0, seed: int = 1, bound: float = 60.0,
           progress: Progress | None = None) -> Result:
    return Stress(tasks=tasks, seconds=seconds, seed=seed, bound=bound).run(progress)


# -- CLI ----------------------------------------------------------------------------------------------------
def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stress", help="concurrency stress: tasks on threads over SysV and POSIX queues, exact accounting",
        description="Run TASKS tasks on real threads (senders, typed receivers, MSG_COPY readers, POSIX senders "
        "and receivers with deadlines, and a chaos task sending signals, IPC_RMID and mq_unlink) for SECONDS, then "
        "check that no message was lost or duplicated, that every call returned a Linux result, and the "
        "engines' invariants. Exit status 1 on any violation.")
    p.add_argument("--tasks", type=positive_int, default=16,
                   help="number of tasks, at least 1 (default 16; all roles run from 6 on)")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="duration (default 10)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--bound", type=positive_float, default=60.0,
                   help="seconds the workers may take to finish after the stop before it counts as a deadlock")
    p.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    realproc.add_arguments(p)
    add_json_argument(p)
    return p


def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors of the real-process options (``--real``)."""
    realproc.validate(parser, args)


def run(args: argparse.Namespace) -> int:
    if args.real:
        return realproc.run_cli(args, "stress", budget=args.seconds, bound=args.bound)
    out = text_out(args)
    res = stress(tasks=args.tasks, seconds=args.seconds, seed=args.seed, bound=args.bound,
                 progress=Progress("stress", every=0.0 if args.quiet else 5.0))
    print(res.summary(), file=out)
    for v in res.violations[:30]:
        print("  VIOLATION:", v, file=out)
    status = 1 if res.violations else 0
    write_json(args, "stress", {**asdict(res), "roles": plan(args.tasks)}, status)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mqsentry")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return run(parser.parse_args(["stress", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["validate", "Stress", "Result", "stress", "plan", "ROLES", "add_parser", "run", "main"]
