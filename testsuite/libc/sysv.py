"""glibc-like wrappers for SysV message queues (msgget/msgsnd/msgrcv/msgctl) over a target's raw
syscalls.

Linux counterpart: glibc's sysdeps/unix/sysv/linux/msg{get,snd,rcv,ctl}.c (which on x86_64 and arm64
pass ``cmd`` to msgctl unchanged, without IPC_64). gVisor counterpart: none (gVisor's tests call
glibc directly).

Every wrapper raises :class:`LinuxError` with Linux's errno on failure. The ``*_raw`` variants take
addresses and sizes chosen by the test (for EFAULT and argument-validation tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any

from mqsentry.abi.linux.ipc import IPC_RMID, IPC_SET, IPC_STAT
from mqsentry.abi.linux.msgqueue import MSG_INFO, MSGINFO, MSQID64_DS
from mqsentry.testsuite.libc.errors import LinuxError

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_MTYPE = struct.Struct("<q")


def _int(v: int) -> int:
    """A C ``int`` argument as glibc puts it in a register (sign-extended to 64 bits)."""
    return (((v & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000) & _MASK64


def _reg(v: int) -> int:
    """A ``long``/``size_t``/pointer argument as a raw 64-bit register value."""
    return v & _MASK64


#: Short names for the flattened ``msqid64_ds`` fields (``perm.uid`` -> ``uid``).
_DS_NAMES = {f: f.split(".", 1)[1] if f.startswith("perm.") else f for f in MSQID64_DS.fields}
_DS_FIELDS = {v: k for k, v in _DS_NAMES.items()}


@dataclass(frozen=True, slots=True)
class MsqidDs:
    """A parsed ``struct msqid64_ds`` (perm fields flattened: ``key``, ``uid``, ``mode``, ...)."""

    key: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    seq: int
    stime: int
    rtime: int
    ctime: int
    cbytes: int
    qnum: int
    qbytes: int
    lspid: int
    lrpid: int
    #: Every field by its short name, including the unused ones (for exact round trips).
    raw: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> MsqidDs:
        raw = {_DS_NAMES[k]: v for k, v in MSQID64_DS.to_dict(data).items()}
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k != "raw"}, raw=raw)

    def with_(self, **changes: int) -> MsqidDs:
        """A copy with some fields changed (``raw`` follows)."""
        unknown = set(changes) - set(_DS_FIELDS)
        if unknown:
            raise TypeError(f"unknown msqid64_ds fields: {sorted(unknown)}")
        raw = dict(self.raw, **changes)
        direct = {k: v for k, v in changes.items() if k in self.__dataclass_fields__}
        return replace(self, **direct, raw=raw)

    def pack(self) -> bytes:
        return MSQID64_DS.from_dict({_DS_FIELDS[k]: v for k, v in self.raw.items()})


class SysVMixin:
    """msgget/msgsnd/msgrcv/msgctl for :class:`mqsentry.testsuite.libc.Proc` (needs ProcCore's helpers)."""

    # Provided by ProcCore.
    sys: Any
    call: Any
    alloc: Any
    buf: Any
    read: Any
    write: Any

    # -- msgget ---------------------------------------------------------------------------------------
    def msgget(self, key: int, flags: int = 0) -> int:
        return self.call("msgget", _int(key), _int(flags))

    # -- msgsnd ---------------------------------------------------------------------------------------
    def msgbuf(self, mtype: int, data: bytes = b"", size: int | None = None) -> int:
        """A ``struct msgbuf`` (``long mtype`` + ``data``) in fresh memory of 8 + ``size`` bytes."""
        size = len(data) if size is None else size
        return self.buf(_MTYPE.pack(mtype) + data, 8 + size)

    def msgsnd(self, msqid: int, mtype: int, data: bytes = b"", flags: int = 0) -> None:
        """Send ``data`` with type ``mtype`` (the msgbuf is built in fresh memory)."""
        self.msgsnd_raw(msqid, self.msgbuf(mtype, data), len(data), flags)

    def msgsnd_raw(self, msqid: int, msgp: int, msgsz: int, flags: int = 0) -> int:
        return self.call("msgsnd", _int(msqid), _reg(msgp), _reg(msgsz), _int(flags))

    # -- msgrcv ---------------------------------------------------------------------------------------
    def msgrcv(self, msqid: int, size: int, msgtyp: int = 0, flags: int = 0) -> tuple[int, bytes]:
        """Receive into a fresh buffer of 8 + ``size`` bytes: (mtype, text)."""
        p = self.alloc(8 + size)
        n = self.msgrcv_raw(msqid, p, size, msgtyp, flags)
        raw = self.read(p, 8 + n)
        return _MTYPE.unpack_from(raw)[0], raw[8:]

    def msgrcv_raw(self, msqid: int, msgp: int, msgsz: int, msgtyp: int = 0, flags: int = 0) -> int:
        """msgrcv into a caller-chosen buffer; returns the number of text bytes received."""
        return self.call("msgrcv", _int(msqid), _reg(msgp), _reg(msgsz), _reg(msgtyp), _int(flags))

    # -- msgctl ---------------------------------------------------------------------------------------
    def msgctl_raw(self, msqid: int, cmd: int, buf: int = 0) -> int:
        return self.call("msgctl", _int(msqid), _int(cmd), _reg(buf))

    def msgctl_stat(self, msqid: int, cmd: int = IPC_STAT) -> tuple[int, MsqidDs]:
        """IPC_STAT, MSG_STAT or MSG_STAT_ANY: (return value, parsed msqid64_ds)."""
        p = self.alloc(MSQID64_DS.size)
        ret = self.msgctl_raw(msqid, cmd, p)
        return ret, MsqidDs.parse(self.read(p, MSQID64_DS.size))

    def msgstat(self, msqid: int) -> MsqidDs:
        """IPC_STAT's msqid64_ds."""
        return self.msgctl_stat(msqid)[1]

    def msgctl_set(self, msqid: int, ds: MsqidDs | None = None, **fields: int) -> None:
        """IPC_SET: start from ``ds`` (default: the current IPC_STAT), change ``fields``
        (mode, uid, gid, qbytes, ...), and write it back."""
        base = self.msgstat(msqid) if ds is None else ds
        p = self.buf(base.with_(**fields).pack())
        self.msgctl_raw(msqid, IPC_SET, p)

    def msgctl_rmid(self, msqid: int) -> None:
        self.msgctl_raw(msqid, IPC_RMID, 0)

    def msgctl_info(self, cmd: int = MSG_INFO, msqid: int = 0) -> tuple[int, dict[str, int]]:
        """IPC_INFO or MSG_INFO: (return value = highest used index, parsed msginfo)."""
        p = self.alloc(MSGINFO.size)
        ret = self.msgctl_raw(msqid, cmd, p)
        return ret, MSGINFO.to_dict(self.read(p, MSGINFO.size))


__all__ = ["MsqidDs", "SysVMixin", "LinuxError"]
