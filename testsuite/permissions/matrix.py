"""The permission matrix of SysV and POSIX message queues, measured on a target and predicted by a model.

Linux counterpart: ipc/util.c ``ipcperms`` and ``ipcctl_obtain_check``, ipc/msg.c ``msgctl_down``
(the qbytes/CAP_SYS_RESOURCE rule), ipc/mqueue.c ``prepare_open``/``mq_unlink`` with fs/namei.c
``generic_permission``, ``may_delete`` and ``check_sticky``. gVisor counterpart: pkg/sentry/kernel/ipc
``CheckPermissions``/``CheckOwnership`` and the mqfs permission checks (gVisor's tests cover a few cells
of this matrix in msgqueue.cc and mq.cc).

A *cell* is (operation, caller class, capability, mode). For each (class, capability) pair one target
is created with three processes: an administrator (root with the full differential capability set),
the creator (uid 1000, gid 1000, no capabilities) and the caller (whose identity the class decides,
holding only the capability). For every mode and operation a fresh object is created by the creator
with that mode, prepared (a message queued; for "creator-not-owner" the owner is changed by the
administrator), the caller performs the operation, and the administrator removes the object.

:func:`expected` is the model of Linux's checks (ipc/util.c ``ipcperms``, ipc/msg.c ``msgctl_down``,
ipc/mqueue.c ``do_mq_open``/``mq_unlink`` via fs/namei.c ``may_delete``); it decides the cells the
host cannot run (CAP_SYS_RESOURCE, which the host's root lacks) and is itself checked against the host
on every other cell.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mqsentry.abi.linux.capability import CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_IPC_OWNER, CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EACCES, EPERM, errno_name
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_STAT, MSG_STAT_ANY, MSGMNB, MSQID64_DS
from mqsentry.abi.linux.signal import SIGEV_NONE, SIGEVENT
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.testsuite.difftest.world import FULL_CAPS
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target

MASK64 = 0xFFFF_FFFF_FFFF_FFFF

#: Identities. The creator is uid 1000 / gid 1000; ``creator-not-owner`` objects are handed to 1001:1001.
CREATOR_UID, CREATOR_GID = 1000, 1000
NEW_OWNER = 1001

#: Caller classes: name -> (uid, gid, supplementary groups). The owner class *is* the creator.
CLASSES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "owner": (CREATOR_UID, CREATOR_GID, ()),
    "creator-not-owner": (CREATOR_UID, CREATOR_GID, ()),
    "group-primary": (1002, CREATOR_GID, ()),
    "group-supplementary": (1003, 3000, (CREATOR_GID,)),
    "other": (1004, 4000, ()),
}

#: Capabilities of the caller: name -> CAP_* number, or None.
CAPS: dict[str, int | None] = {
    "none": None, "CAP_IPC_OWNER": CAP_IPC_OWNER, "CAP_SYS_ADMIN": CAP_SYS_ADMIN,
    "CAP_SYS_RESOURCE": CAP_SYS_RESOURCE, "CAP_DAC_OVERRIDE": CAP_DAC_OVERRIDE, "CAP_FOWNER": CAP_FOWNER,
}

MODES = (0o000, 0o400, 0o200, 0o600, 0o060, 0o040, 0o020, 0o006, 0o004, 0o002, 0o777)

#: Operations: name -> ("sysv" | "posix").
OPS: dict[str, str] = {
    "msgget(0)": "sysv", "msgget(0400)": "sysv", "msgget(0200)": "sysv", "msgget(0600)": "sysv",
    "msgsnd": "sysv", "msgrcv": "sysv", "IPC_STAT": "sysv", "MSG_STAT": "sysv", "MSG_STAT_ANY": "sysv",
    "IPC_SET(mode)": "sysv", "IPC_SET(qbytes+)": "sysv", "IPC_RMID": "sysv",
    "mq_open(O_RDONLY)": "posix", "mq_open(O_WRONLY)": "posix", "mq_open(O_RDWR)": "posix",
    "mq_send": "posix", "mq_receive": "posix", "mq_getattr": "posix", "mq_unlink": "posix", "mq_notify": "posix",
}

OK = "ok"


@dataclass(frozen=True)
class Cell:
    op: str
    cls: str
    cap: str
    mode: int

    @property
    def host_can_run(self) -> bool:
        return self.cap != "CAP_SYS_RESOURCE"

    def __str__(self) -> str:
        return f"{self.op:18} {self.cls:20} {self.cap:17} {self.mode:04o}"


def cells() -> Iterator[Cell]:
    for cls in CLASSES:
        for cap in CAPS:
            for mode in MODES:
                for op in OPS:
                    yield Cell(op, cls, cap, mode)


# ==========================================================================================================
# The model (Linux's checks, as in the module docstring)
# ==========================================================================================================

def _has(cell: Cell, cap: int) -> bool:
    return CAPS[cell.cap] == cap


def _sysv_granted(cell: Cell, requested: int) -> bool:
    """``ipcperms``: owner bits if euid is cuid or uid, else group bits if in cgid or gid, else other."""
    m = cell.mode
    # Every class matches either the owner (creator / owner) or the group by cgid == gid == 1000, or nothing.
    if cell.cls in ("owner", "creator-not-owner"):
        bits = m >> 6
    elif cell.cls in ("group-primary", "group-supplementary"):
        bits = m >> 3
    else:
        bits = m
    return (requested & ~bits & 7) == 0 or _has(cell, CAP_IPC_OWNER)


def _sysv_may_control(cell: Cell) -> bool:
    return cell.cls in ("owner", "creator-not-owner") or _has(cell, CAP_SYS_ADMIN)


def _posix_granted(cell: Cell, want: int) -> bool:
    """``generic_permission`` on the queue inode (uid/gid = the owner's fsuid/fsgid; creator-not-owner
    queues are chowned to 1001:1001, so their creator is an "other")."""
    m = cell.mode
    if cell.cls == "owner":
        bits = m >> 6
    elif cell.cls in ("group-primary", "group-supplementary"):
        bits = m >> 3
    else:
        bits = m
    return (want & ~bits & 7) == 0 or _has(cell, CAP_DAC_OVERRIDE)


def expected(cell: Cell) -> str:
    """Linux's result of a cell: "ok" or an errno name."""
    op = cell.op
    eacces, eperm = errno_name(EACCES), errno_name(EPERM)
    if op.startswith("msgget("):
        flag = int(op[7:-1], 8)
        req = (flag >> 6 | flag >> 3 | flag) & 7
        return OK if _sysv_granted(cell, req) else eacces
    if op == "msgsnd":
        return OK if _sysv_granted(cell, 2) else eacces
    if op in ("msgrcv", "IPC_STAT", "MSG_STAT"):
        return OK if _sysv_granted(cell, 4) else eacces
    if op == "MSG_STAT_ANY":
        return OK
    if op in ("IPC_SET(mode)", "IPC_RMID"):
        return OK if _sysv_may_control(cell) else eperm
    if op == "IPC_SET(qbytes+)":
        if not _sysv_may_control(cell):
            return eperm
        return OK if _has(cell, CAP_SYS_RESOURCE) else eperm
    if op == "mq_unlink":
        # may_delete on the sticky 01777 root (owned by root): the queue's owner or CAP_FOWNER.
        return OK if cell.cls == "owner" or _has(cell, CAP_FOWNER) else eperm
    want = {"mq_open(O_RDONLY)": 4, "mq_open(O_WRONLY)": 2, "mq_open(O_RDWR)": 6, "mq_send": 2,
            "mq_receive": 4, "mq_getattr": 4, "mq_notify": 4}[op]
    return OK if _posix_granted(cell, want) else eacces


# ==========================================================================================================
# Measuring on a target
# ==========================================================================================================

def _res(ret: int) -> str:
    return OK if ret >= 0 else errno_name(-ret)


class _Bench:
    """The three processes of one (class, capability) target and their scratch memory."""

    def __init__(self, target: Target, cls: str, cap: str) -> None:
        self.target = target
        self.cls = cls
        c = CAPS[cap]
        caps = 0 if c is None else 1 << c
        self.admin = Proc(target.spawn(0, 0, (), FULL_CAPS))
        uid, gid, groups = CLASSES[cls]
        self.caller = Proc(target.spawn(uid, gid, groups, caps))
        self.creator = self.caller if cls == "owner" else Proc(target.spawn(CREATOR_UID, CREATOR_GID, (), 0))
        for p in {id(p): p for p in (self.admin, self.caller, self.creator)}.values():
            p.sys("umask", 0)
        self.mem = {id(p): p.alloc(8192) for p in (self.admin, self.caller, self.creator)}
        self.serial = 0

    def scratch(self, p: Proc) -> int:
        return self.mem[id(p)]

    # -- SysV ----------------------------------------------------------------------------------------------
    def sysv(self, op: str, mode: int) -> str:
        self.serial += 1
        key = 0x5000 + self.serial
        cr, ad = self.creator, self.admin
        qid = cr.sys("msgget", key, IPC_CREAT | IPC_EXCL | mode)
        assert qid >= 0, f"setup msgget: {qid}"
        buf = self.scratch(ad)
        ad.write(buf, struct.pack("<q", 1) + b"hello")
        assert ad.sys("msgsnd", qid, buf, 5, IPC_NOWAIT) == 0
        if self.cls == "creator-not-owner":
            self._ipc_set(ad, qid, NEW_OWNER, NEW_OWNER, mode, MSGMNB)
        try:
            return _res(self._sysv_op(op, key, qid, mode))
        finally:
            ad.sys("msgctl", qid, IPC_RMID, 0)

    def _ipc_set(self, p: Proc, qid: int, uid: int, gid: int, mode: int, qbytes: int) -> int:
        d = dict.fromkeys(MSQID64_DS.fields, 0)
        d.update({"perm.uid": uid, "perm.gid": gid, "perm.mode": mode, "qbytes": qbytes})
        addr = self.scratch(p) + 1024
        p.write(addr, MSQID64_DS.pack(*(d[f] for f in MSQID64_DS.fields)))
        return p.sys("msgctl", qid, IPC_SET, addr)

    def _sysv_op(self, op: str, key: int, qid: int, mode: int) -> int:
        ca = self.caller
        buf = self.scratch(ca)
        owner = NEW_OWNER if self.cls == "creator-not-owner" else CREATOR_UID
        if op.startswith("msgget("):
            return ca.sys("msgget", key, int(op[7:-1], 8))
        if op == "msgsnd":
            ca.write(buf, struct.pack("<q", 2) + b"x")
            return ca.sys("msgsnd", qid, buf, 1, IPC_NOWAIT)
        if op == "msgrcv":
            return ca.sys("msgrcv", qid, buf, 100, 0, IPC_NOWAIT)
        if op == "IPC_STAT":
            return ca.sys("msgctl", qid, IPC_STAT, buf)
        if op == "MSG_STAT":
            return ca.sys("msgctl", qid & 0x7FFF, MSG_STAT, buf)
        if op == "MSG_STAT_ANY":
            return ca.sys("msgctl", qid & 0x7FFF, MSG_STAT_ANY, buf)
        if op == "IPC_SET(mode)":
            return self._ipc_set(ca, qid, owner, owner if owner == NEW_OWNER else CREATOR_GID, mode ^ 0o004, MSGMNB)
        if op == "IPC_SET(qbytes+)":
            return self._ipc_set(ca, qid, owner, owner if owner == NEW_OWNER else CREATOR_GID, mode, MSGMNB + 1)
        if op == "IPC_RMID":
            return ca.sys("msgctl", qid, IPC_RMID, 0)
        raise ValueError(op)

    # -- POSIX ---------------------------------------------------------------------------------------------
    def _name(self, p: Proc, name: bytes) -> int:
        addr = self.scratch(p) + 2048
        p.write(addr, name + b"\0")
        return addr

    def posix(self, op: str, mode: int) -> str:
        self.serial += 1
        name = b"perm%d" % self.serial
        cr, ad, ca = self.creator, self.admin, self.caller
        attr = self.scratch(cr) + 3072
        cr.write(attr, MQ_ATTR.pack(0, 2, 16, 0))
        cfd = cr.sys("mq_open", self._name(cr, name), O_CREAT | O_EXCL | O_RDWR, mode, attr)
        assert cfd >= 0, f"setup mq_open: {cfd}"
        buf = self.scratch(cr)
        cr.write(buf, b"hello")
        assert cr.sys("mq_timedsend", cfd, buf, 5, 1, 0) == 0
        if self.cls == "creator-not-owner":
            afd = ad.sys("mq_open", self._name(ad, name), O_RDONLY, 0, 0)
            assert afd >= 0 and ad.sys("fchown", afd, NEW_OWNER, NEW_OWNER) == 0, "setup fchown"
            ad.sys("close", afd)
        opened: list[int] = []
        try:
            return _res(self._posix_op(op, name, opened))
        finally:
            for fd in opened:
                ca.sys("close", fd)
            cr.sys("close", cfd)
            ad.sys("mq_unlink", self._name(ad, name))

    def _posix_op(self, op: str, name: bytes, opened: list[int]) -> int:
        ca = self.caller
        nm = self._name(ca, name)
        if op == "mq_unlink":
            return ca.sys("mq_unlink", nm)
        acc = {"mq_open(O_RDONLY)": O_RDONLY, "mq_open(O_WRONLY)": O_WRONLY, "mq_open(O_RDWR)": O_RDWR,
               "mq_send": O_WRONLY}.get(op, O_RDONLY)
        fd = ca.sys("mq_open", nm, acc, 0, 0)
        if fd < 0 or op.startswith("mq_open("):
            if fd >= 0:
                opened.append(fd)
            return fd
        opened.append(fd)
        buf = self.scratch(ca)
        ts = buf + 4096
        ca.write(ts, TIMESPEC.pack(0, 0))  # a past deadline: never block
        if op == "mq_send":
            ca.write(buf, b"x")
            return ca.sys("mq_timedsend", fd, buf, 1, 0, ts)
        if op == "mq_receive":
            return ca.sys("mq_timedreceive", fd, buf, 16, 0, ts)
        if op == "mq_getattr":
            return ca.sys("mq_getsetattr", fd, 0, buf)
        if op == "mq_notify":
            ca.write(buf, SIGEVENT.pack(0, 0, SIGEV_NONE, 0, 0))
            return ca.sys("mq_notify", fd, buf)
        raise ValueError(op)


def measure(make_target: Callable[[], Target], cls: str, cap: str) -> dict[Cell, str]:
    """Every cell of one (class, capability) pair on a fresh target: cell -> "ok" or errno name."""
    target = make_target()
    try:
        bench = _Bench(target, cls, cap)
        out: dict[Cell, str] = {}
        for mode in MODES:
            for op, kind in OPS.items():
                cell = Cell(op, cls, cap, mode)
                out[cell] = bench.sysv(op, mode) if kind == "sysv" else bench.posix(op, mode)
        return out
    finally:
        target.close()


@dataclass
class Report:
    cells: int = 0
    compared: int = 0
    sentry_only: int = 0
    #: (cell, sentry, host-or-model) where the sentry differs.
    mismatches: list[tuple[Cell, str, str]] = None  # type: ignore[assignment]
    #: (cell, host, model) where the model disagrees with the host (a model bug, not a sentry bug).
    model_errors: list[tuple[Cell, str, str]] = None  # type: ignore[assignment]
    native: bool = True

    def __post_init__(self) -> None:
        self.mismatches = []
        self.model_errors = []

    def summary(self) -> str:
        lines = [f"permission matrix: {self.cells} cells ({len(OPS)} operations x {len(CLASSES)} caller classes x "
                 f"{len(CAPS)} capabilities x {len(MODES)} modes)",
                 f"  compared with the host kernel: {self.compared}" + ("" if self.native else
                                                                         " (host kernel not used)"),
                 f"  sentry-only (checked against the Linux model): {self.sentry_only}",
                 f"  mismatches: {len(self.mismatches)}",
                 f"  model disagreements with the host: {len(self.model_errors)}"]
        for c, s, h in self.mismatches:
            lines.append(f"  MISMATCH {c}: sentry {s}, Linux {h}")
        for c, h, m in self.model_errors:
            lines.append(f"  MODEL {c}: host {h}, model {m}")
        return "\n".join(lines)


def run_matrix(native: bool = True, classes: tuple[str, ...] = tuple(CLASSES),
               caps: tuple[str, ...] = tuple(CAPS), progress: Callable[[str], None] | None = None) -> Report:
    """Measure the matrix on the sentry (and the host when ``native``) and compare. ``progress`` is
    told which (class, capability) pair is measured next."""
    from mqsentry.testsuite.targets.sentry import SentryTarget

    rep = Report(native=native)
    for i, cls in enumerate(classes):
        for j, cap in enumerate(caps):
            if progress is not None:
                progress(f"{i * len(caps) + j + 1}/{len(classes) * len(caps)}: {cls}, {cap}")
            sentry = measure(SentryTarget, cls, cap)
            host: dict[Cell, str] = {}
            if native and cap != "CAP_SYS_RESOURCE":
                from mqsentry.testsuite.targets.native import NativeTarget

                host = measure(NativeTarget, cls, cap)
            for cell, s in sentry.items():
                rep.cells += 1
                model = expected(cell)
                if cell in host:
                    rep.compared += 1
                    if s != host[cell]:
                        rep.mismatches.append((cell, s, host[cell]))
                    if model != host[cell]:
                        rep.model_errors.append((cell, host[cell], model))
                else:
                    if cap == "CAP_SYS_RESOURCE" or not native:
                        rep.sentry_only += 1
                    if s != model:
                        rep.mismatches.append((cell, s, model))
    return rep


__all__ = ["Cell", "cells", "expected", "measure", "run_matrix", "Report", "CLASSES", "CAPS", "MODES", "OPS"]
