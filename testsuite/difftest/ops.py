"""The operations of a differential sequence.

Linux counterpart: the syscalls of ipc/msg.c and ipc/mqueue.c (plus close/dup/read on mqueue files,
unshare(CLONE_NEWIPC), fork/clone and the sysctls of ipc/ipc_sysctl.c and ipc/mq_sysctl.c).
gVisor counterpart: none (gVisor has no differential runner).

Every operation is a frozen dataclass whose ``repr`` is the Python expression that rebuilds it, so a
shrunk sequence prints as code. ``run(world, hint)`` performs it on one :class:`~.world.World` and
returns a normalised, comparable observation (tuples of ints, strings and bytes). ``hint`` is the
other target's observation of the same step (only :class:`Deliveries` uses it, to wait for signals
that the host delivers asynchronously).

Nothing here may block for ever: SysV calls always carry IPC_NOWAIT (or MSG_COPY, which rejects a
missing IPC_NOWAIT), POSIX calls pass a past or invalid deadline unless the descriptor is known to be
non-blocking.
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass
from typing import Any

from mqsentry.abi.linux.file import O_NONBLOCK, O_RDWR
from mqsentry.abi.linux.ipc import IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_INFO, MSG_STAT, MSG_STAT_ANY, MSGINFO, MSQID64_DS
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.abi.linux.signal import SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEVENT
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.testsuite.difftest.world import (
    ATTR_IN,
    ATTR_OUT,
    BIG,
    DS,
    INFO,
    MAX_PAYLOAD,
    NAME,
    PAGE,
    PRIO,
    RDBUF,
    SIGEV,
    TS,
    Actor,
    World,
    payload,
    read_long,
)
from mqsentry.testsuite.libc.errors import LinuxError

Obs = Any

_F_GETFL = 3
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class Op:
    """Base class: ``a`` picks the actor (modulo the live actors)."""

    def run(self, w: World, hint: Obs = None) -> Obs:  # pragma: no cover - abstract
        raise NotImplementedError


# -- pointer helpers -------------------------------------------------------------------------------------

def _bad(w: World) -> int:
    return w.target.bad_addr


def _name_ptr(w: World, a: Actor, name: str) -> int:
    """The name argument of mq_open/mq_unlink. Special names: ``BAD`` (unmapped pointer), ``EDGE``
    (a string running into the guard page, no NUL), ``L<n>`` (n characters)."""
    if name == "BAD":
        return _bad(w)
    if name == "EDGE":
        a.proc.write(a.small + PAGE - 3, b"abc")
        return a.small + PAGE - 3
    if name.startswith("L") and name[1:].isdigit():
        raw = b"n" * int(name[1:])
    else:
        raw = name.encode()
    a.proc.write(a.small + NAME, raw + b"\0")
    return a.small + NAME


def _timespec_ptr(w: World, a: Actor, kind: str, fd: int) -> tuple[int, str]:
    """A deadline argument and what was actually passed ("null" only on a non-blocking descriptor)."""
    if kind == "null":
        fl = World.sys(a, "fcntl", fd, _F_GETFL, 0)
        if fl < 0 or fl & O_NONBLOCK:
            return 0, "null"
        kind = "past"
    if kind == "bad":
        return _bad(w), kind
    if kind == "edge":
        a.proc.write(a.small + PAGE - 8, struct.pack("<q", 0))
        return a.small + PAGE - 8, kind
    sec, nsec = {"past": (0, 0), "past_ns": (1, 999_999_999), "ns_big": (0, 1_000_000_000),
                 "ns_neg": (0, -1), "sec_neg": (-1, 0)}[kind]
    a.proc.write(a.small + TS, TIMESPEC.pack(sec, nsec))
    return a.small + TS, kind


# ==========================================================================================================
# SysV
# ==========================================================================================================

@dataclass(frozen=True)
class MsgGet(Op):
    a: int
    key: int
    flags: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        ret = w.sys(a, "msgget", self.key, self.flags)
        if ret >= 0 and ret not in w.ids:
            w.ids.append(ret)
        return ("msgget", ret)


@dataclass(frozen=True)
class MsgSnd(Op):
    a: int
    q: int
    mtype: int
    size: int
    flags: int = IPC_NOWAIT
    ptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        end = a.big + BIG
        data = payload(self.size + self.mtype, self.size)
        if self.ptr == "bad":
            addr = _bad(w)
        elif self.ptr == "null":
            addr = 0
        else:
            addr = a.big if self.ptr == "ok" else max(a.big, end - (8 + len(data)) + 1)
            room = end - addr
            a.proc.write(addr, (struct.pack("<q", self.mtype) + data)[:room])
        ret = w.sys(a, "msgsnd", w.qid(self.q), addr, self.size, self.flags | IPC_NOWAIT)
        return ("msgsnd", ret)


@dataclass(frozen=True)
class MsgRcv(Op):
    a: int
    q: int
    size: int
    typ: int = 0
    flags: int = IPC_NOWAIT
    ptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        end = a.big + BIG
        addr = {"ok": a.big, "bad": _bad(w), "null": 0, "edge": end - 12}[self.ptr]
        flags = self.flags if self.flags & MSG_COPY else self.flags | IPC_NOWAIT
        ret = w.sys(a, "msgrcv", w.qid(self.q), addr, self.size, self.typ, flags)
        if ret < 0 or addr in (0, _bad(w)):
            return ("msgrcv", ret)
        return ("msgrcv", ret, read_long(a, addr), a.proc.read(addr + 8, ret))


_DS_FIELDS = MSQID64_DS.fields


def _norm_ds(w: World, raw: bytes, obj: int) -> tuple:
    d = dict(zip(_DS_FIELDS, MSQID64_DS.unpack(raw)))
    return (d["perm.key"], d["perm.uid"], d["perm.gid"], d["perm.cuid"], d["perm.cgid"], d["perm.mode"],
            d["perm.seq"], w.stamp(d["stime"], obj, "stime"), w.stamp(d["rtime"], obj, "rtime"),
            w.stamp(d["ctime"], obj, "ctime"), d["cbytes"], d["qnum"], d["qbytes"],
            w.norm_pid(d["lspid"]), w.norm_pid(d["lrpid"]))


@dataclass(frozen=True)
class MsgCtl(Op):
    """IPC_STAT/MSG_STAT/MSG_STAT_ANY/IPC_INFO/MSG_INFO/IPC_RMID or an unknown command. ``idx`` passes
    the id's index (what MSG_STAT expects) instead of the id."""

    a: int
    q: int
    cmd: int
    idx: bool = False
    ptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        qid = w.qid(self.q)
        if self.idx and qid >= 0:
            qid &= 0x7FFF
        off = INFO if self.cmd in (IPC_INFO, MSG_INFO) else DS
        addr = {"ok": a.small + off, "null": 0, "bad": _bad(w), "edge": a.small + PAGE - 8}[self.ptr]
        ret = w.sys(a, "msgctl", qid, self.cmd, addr)
        if ret < 0 or self.ptr != "ok":
            return ("msgctl", ret)
        if self.cmd in (IPC_STAT, MSG_STAT, MSG_STAT_ANY):
            obj = qid if self.cmd == IPC_STAT else ret
            return ("msgctl", ret, _norm_ds(w, a.proc.read(addr, MSQID64_DS.size), obj))
        if self.cmd in (IPC_INFO, MSG_INFO):
            return ("msgctl", ret, MSGINFO.unpack(a.proc.read(addr, MSGINFO.size)))
        return ("msgctl", ret)


@dataclass(frozen=True)
class MsgSet(Op):
    """IPC_SET with the given uid, gid, mode and qbytes (the other fields are zero, as Linux ignores them)."""

    a: int
    q: int
    uid: int
    gid: int
    mode: int
    qbytes: int
    ptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        d = dict.fromkeys(_DS_FIELDS, 0)
        d.update({"perm.uid": self.uid & 0xFFFF_FFFF, "perm.gid": self.gid & 0xFFFF_FFFF,
                  "perm.mode": self.mode & 0xFFFF_FFFF, "qbytes": self.qbytes & 0xFFFF_FFFF_FFFF_FFFF})
        if self.ptr == "ok":
            addr = a.small + DS
            a.proc.write(addr, MSQID64_DS.pack(*(d[f] for f in _DS_FIELDS)))
        else:
            addr = {"null": 0, "bad": _bad(w), "edge": a.small + PAGE - 8}[self.ptr]
        return ("ipc_set", w.sys(a, "msgctl", w.qid(self.q), IPC_SET, addr))


# ==========================================================================================================
# POSIX
# ==========================================================================================================

@dataclass(frozen=True)
class MqOpen(Op):
    """Raw mq_open. ``attr``: None, "bad", or (maxmsg, msgsize)."""

    a: int
    name: str
    oflag: int
    mode: int = 0o600
    attr: str | tuple[int, int] | None = None

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        name = _name_ptr(w, a, self.name)
        if self.attr is None:
            attr = 0
        elif self.attr == "bad":
            attr = _bad(w)
        else:
            assert isinstance(self.attr, tuple)
            a.proc.write(a.small + ATTR_IN, MQ_ATTR.pack(0, self.attr[0], self.attr[1], 0))
            attr = a.small + ATTR_IN
        ret = w.sys(a, "mq_open", name, self.oflag, self.mode, attr)
        if ret >= 0:
            a.files.fds.append(ret)
        return ("mq_open", w.norm_fd(ret))


@dataclass(frozen=True)
class MqUnlink(Op):
    a: int
    name: str

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        return ("mq_unlink", w.sys(a, "mq_unlink", _name_ptr(w, a, self.name)))


@dataclass(frozen=True)
class MqSend(Op):
    a: int
    f: int
    size: int
    prio: int = 0
    timeout: str = "past"
    ptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        fd = w.fd(a, self.f)
        end = a.big + BIG
        data = payload(self.size + self.prio, self.size)
        if self.ptr == "bad":
            addr = _bad(w)
        elif self.ptr == "null":
            addr = 0
        else:
            addr = a.big if self.ptr == "ok" else max(a.big, end - max(len(data) // 2, 1))
            a.proc.write(addr, data[:end - addr])
        ts, used = _timespec_ptr(w, a, self.timeout, fd)
        ret = w.sys(a, "mq_timedsend", fd, addr, self.size, self.prio, ts)
        return ("mq_send", ret, used)


@dataclass(frozen=True)
class MqRecv(Op):
    a: int
    f: int
    size: int
    timeout: str = "past"
    ptr: str = "ok"
    pptr: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        fd = w.fd(a, self.f)
        end = a.big + BIG
        addr = {"ok": a.big, "bad": _bad(w), "null": 0, "edge": end - 4}[self.ptr]
        pptr = {"ok": a.small + PRIO, "null": 0, "bad": _bad(w)}[self.pptr]
        if self.pptr == "ok":
            a.proc.write(pptr, b"\xff\xff\xff\xff")
        ts, used = _timespec_ptr(w, a, self.timeout, fd)
        ret = w.sys(a, "mq_timedreceive", fd, addr, self.size, pptr, ts)
        if ret < 0 or self.ptr != "ok":
            return ("mq_receive", ret, used)
        prio = _U32.unpack(a.proc.read(pptr, 4))[0] if self.pptr == "ok" else None
        return ("mq_receive", ret, used, a.proc.read(addr, ret), prio)


@dataclass(frozen=True)
class MqNotify(Op):
    """``kind``: "null", "none" (SIGEV_NONE), "signal" (signo, value), "notify" (sigev_notify = signo,
    an invalid kind), "thread" (SIGEV_THREAD with sigev_signo = signo as the socket and a valid cookie),
    "thread_bad" (SIGEV_THREAD with an unmapped cookie), "bad" (unmapped sigevent)."""

    a: int
    f: int
    kind: str
    signo: int = 0
    value: int = 0

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        fd = w.fd(a, self.f)
        if self.kind == "null":
            ptr = 0
        elif self.kind == "bad":
            ptr = _bad(w)
        else:
            notify, signo, value = {
                "none": (SIGEV_NONE, self.signo, self.value),
                "signal": (SIGEV_SIGNAL, self.signo, self.value),
                "notify": (self.signo, 0, 0),
                # sigev_signo is the netlink socket: never a descriptor that exists (the native
                # processes inherit 0-2, the sentry's do not).
                "thread": (SIGEV_THREAD, 500 if self.signo >= 0 else -1, a.big),
                "thread_bad": (SIGEV_THREAD, 500 if self.signo >= 0 else -1, _bad(w)),
            }[self.kind]
            ptr = a.small + SIGEV
            a.proc.write(ptr, SIGEVENT.pack(value & 0xFFFF_FFFF_FFFF_FFFF, signo, notify, 0, 0))
        return ("mq_notify", w.sys(a, "mq_notify", fd, ptr))


@dataclass(frozen=True)
class MqAttr(Op):
    """mq_getsetattr. ``new``: None (NULL), "bad", or the new mq_flags (maxmsg/msgsize/curmsgs carry
    garbage, which Linux ignores). ``old``: "ok", "null" or "bad"."""

    a: int
    f: int
    new: str | int | None = None
    old: str = "ok"

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        fd = w.fd(a, self.f)
        if self.new is None:
            new = 0
        elif self.new == "bad":
            new = _bad(w)
        else:
            assert isinstance(self.new, int)
            new = a.small + ATTR_IN
            a.proc.write(new, MQ_ATTR.pack(self.new, 99, 99, 99))
        old = {"ok": a.small + ATTR_OUT, "null": 0, "bad": _bad(w)}[self.old]
        ret = w.sys(a, "mq_getsetattr", fd, new, old)
        if ret < 0 or self.old != "ok":
            return ("mq_getsetattr", ret)
        return ("mq_getsetattr", ret, MQ_ATTR.unpack(a.proc.read(old, MQ_ATTR.size)))


@dataclass(frozen=True)
class Close(Op):
    a: int
    f: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        return ("close", w.sys(a, "close", w.fd(a, self.f)))


@dataclass(frozen=True)
class Dup(Op):
    a: int
    f: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        ret = w.sys(a, "dup", w.fd(a, self.f))
        if ret >= 0:
            a.files.fds.append(ret)
        return ("dup", w.norm_fd(ret))


_MQ_LINE = re.compile(rb"QSIZE:(\d+ *) NOTIFY:(\d+ *) SIGNO:(\d+ *) NOTIFY_PID:(\d+) *\n")


def norm_mq_line(w: World, line: bytes) -> Obs:
    """An mqueue file's status line with NOTIFY_PID as an actor label (the padding of the other fields
    is compared byte for byte; NOTIFY_PID's is checked against ``%-6d`` on each side)."""
    m = _MQ_LINE.fullmatch(line)
    if not m:
        return line
    pid = int(m.group(4))
    tail = line[m.start(4):-1]
    if tail != (b"%-6d" % pid):
        w.violations.append(f"NOTIFY_PID field {tail!r} is not %-6d")
    return (m.group(1), m.group(2), m.group(3), w.norm_pid(pid))


@dataclass(frozen=True)
class ReadFd(Op):
    """read() (advancing the file offset) or pread(0) of an mqueue descriptor's status line."""

    a: int
    f: int
    pread: bool = True

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        buf = a.small + RDBUF
        fd = w.fd(a, self.f)
        ret = w.sys(a, "pread64", fd, buf, 128, 0) if self.pread else w.sys(a, "read", fd, buf, 128)
        if ret <= 0:
            return ("read", ret)
        return ("read", ret, norm_mq_line(w, a.proc.read(buf, ret)))


# ==========================================================================================================
# Processes, namespaces, signals, sysctls, /proc
# ==========================================================================================================

@dataclass(frozen=True)
class Fork(Op):
    a: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        child = w.fork(w.actor(self.a))
        return ("fork", child.label)


@dataclass(frozen=True)
class Thread(Op):
    a: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        t = w.thread(w.actor(self.a))
        return ("thread", t.label)


@dataclass(frozen=True)
class Exit(Op):
    """End an actor's thread. Never the last live actor, and never a process's main thread while its
    other threads live: the host then refuses /proc/<pid>/mem, through which the native target reads
    and writes the process's memory."""

    a: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        alive = w.alive()
        a = w.actor(self.a)
        leader_with_threads = any(b is not a and b.process == a.process for b in alive)
        if len(w.idle()) < 2 or (w.actors[a.process] is a and leader_with_threads):
            return ("exit", "skipped")
        a.proc.exit()
        a.exited = True
        return ("exit", a.label)


@dataclass(frozen=True)
class Unshare(Op):
    a: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        a = w.actor(self.a)
        return ("unshare", w.sys(a, "unshare", CLONE_NEWIPC))


def deliveries(w: World, a: Actor, hint: Obs) -> Obs:
    """The recording handler's deliveries in ``a``'s process, normalised. On the host a signal reaches
    an idle process asynchronously: wait (boundedly) until at least as many as the other side saw."""
    a.proc.sys("getpid")  # the sentry delivers pending signals at syscall entry
    want = len(hint[1]) if isinstance(hint, tuple) and len(hint) > 1 and isinstance(hint[1], tuple) else 0
    if hint is None and w.target.name == "native":
        time.sleep(0.01)  # recording without the other side's count: let in-flight signals land
    got = a.proc.deliveries()
    if len(got) < want:
        deadline = time.monotonic() + 2.0
        while len(got) < want and time.monotonic() < deadline:
            time.sleep(0.0005)
            got = a.proc.deliveries()
    elif want:
        time.sleep(0.001)  # a signal beyond the other side's count would show up now
        got = a.proc.deliveries()
    return ("deliveries", tuple((d.signo, d.code, w.norm_pid(d.pid), d.uid, d.value) for d in got))


@dataclass(frozen=True)
class Deliveries(Op):
    a: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        return deliveries(w, w.actor(self.a), hint)


#: Sysctl files the runner writes and reads (short name -> path).
SYSCTLS = {
    "msgmax": "/proc/sys/kernel/msgmax",
    "msgmnb": "/proc/sys/kernel/msgmnb",
    "msgmni": "/proc/sys/kernel/msgmni",
    "queues_max": "/proc/sys/fs/mqueue/queues_max",
    "msg_max": "/proc/sys/fs/mqueue/msg_max",
    "msgsize_max": "/proc/sys/fs/mqueue/msgsize_max",
    "msg_default": "/proc/sys/fs/mqueue/msg_default",
    "msgsize_default": "/proc/sys/fs/mqueue/msgsize_default",
}


@dataclass(frozen=True)
class Sysctl(Op):
    """Write a sysctl of the sequence's first IPC namespace as root, then read it back."""

    name: str
    value: str

    def run(self, w: World, hint: Obs = None) -> Obs:
        path = SYSCTLS[self.name]
        try:
            w.target.write_file(path, self.value.encode())
            res: int = 0
        except LinuxError as e:
            res = -e.errno
        return ("sysctl", res, w.target.read_file(path))


_SYSVIPC_FMT = b"%10d %10d  %4o  %10u %10u %5u %5u %5u %5u %5u %5u %10u %10u %10u\n"


def norm_sysvipc(w: World, text: bytes) -> Obs:
    """/proc/sysvipc/msg: the header verbatim; each row's fields with pids as actor labels and times as
    0/"T" (each row is checked against Linux's printf format on its own side)."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return ("sysvipc",)
    rows: list[Obs] = []
    for line in lines[1:]:
        parts = line.split()
        try:
            v = [int(p, 8) if i == 2 else int(p) for i, p in enumerate(parts)]
            if len(v) != 14:
                raise ValueError
        except ValueError:
            rows.append(line)
            continue
        if _SYSVIPC_FMT % tuple(v) != line:
            w.violations.append(f"/proc/sysvipc/msg row not in Linux's format: {line!r}")
        key, qid = v[0], v[1]
        rows.append((key, qid, v[2], v[3], v[4], w.norm_pid(v[5]), w.norm_pid(v[6]), v[7], v[8], v[9], v[10],
                     w.stamp(v[11], qid, "stime"), w.stamp(v[12], qid, "rtime"), w.stamp(v[13], qid, "ctime")))
    return ("sysvipc", lines[0], tuple(rows))


@dataclass(frozen=True)
class ReadSysvipc(Op):
    def run(self, w: World, hint: Obs = None) -> Obs:
        return norm_sysvipc(w, w.target.read_file("/proc/sysvipc/msg"))


@dataclass(frozen=True)
class Final(Op):
    """The end-of-sequence snapshot: /proc/sysvipc/msg, every live process's deliveries and the status
    line of every descriptor it holds."""

    def run(self, w: World, hint: Obs = None) -> Obs:
        out: list[Obs] = [norm_sysvipc(w, w.target.read_file("/proc/sysvipc/msg"))]
        seen: set[int] = set()
        hints = list(hint[1:]) if isinstance(hint, tuple) else []
        for a in w.idle():
            if a.process in seen:
                continue
            seen.add(a.process)
            h = hints[len(out)] if len(out) < len(hints) else None
            out.append(deliveries(w, a, h))
            lines = []
            for fd in sorted(set(a.files.fds)):
                buf = a.small + RDBUF
                ret = w.sys(a, "pread64", fd, buf, 128, 0)
                lines.append((w.norm_fd(fd), ret if ret <= 0 else norm_mq_line(w, a.proc.read(buf, ret))))
            out.append(("fds", tuple(lines)))
        return ("final", *out)


__all__ = ["Op", "Obs", "MsgGet", "MsgSnd", "MsgRcv", "MsgCtl", "MsgSet", "MqOpen", "MqUnlink", "MqSend", "MqRecv",
           "MqNotify", "MqAttr", "Close", "Dup", "ReadFd", "Fork", "Thread", "Exit", "Unshare", "Deliveries",
           "Sysctl", "ReadSysvipc", "Final", "SYSCTLS", "IPC_STAT", "IPC_RMID", "IPC_INFO", "MSG_INFO",
           "MSG_STAT", "MSG_STAT_ANY", "O_NONBLOCK", "O_RDWR", "MAX_PAYLOAD"]
