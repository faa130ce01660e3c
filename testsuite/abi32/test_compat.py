"""The 32-bit handlers on ``Kernel(arch=...)`` with raw register values and packed guest buffers:
the 4-byte mtype, the ipc(2) multiplexer (both msgrcv versions, IPC_64 and the old layouts, ENOSYS),
the time64 calls, the compat argument types, and mips' byte order, errno values and open flags.
(The same behaviour against the real i386 kernel is in test_emulate.py and the platform tests.)"""

from __future__ import annotations

import pytest

from mqsentry import Kernel
from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.abi32 import ABIS32
from mqsentry.abi.linux.errno import E2BIG, EINVAL, EMSGSIZE, ENOMSG, ENOSYS, ETIMEDOUT
from mqsentry.abi.linux.ipc import (
    IPC_64,
    IPC_CREAT,
    IPC_NOWAIT,
    IPC_PRIVATE,
    IPC_RMID,
    IPC_SET,
    IPC_STAT,
)
from mqsentry.abi.linux.msgqueue import MSGMNB
from mqsentry.kernel.task import Task

MSGSND, MSGRCV, MSGGET, MSGCTL = 11, 12, 13, 14
ARCHES = ("i386", "arm", "mips", "mipsel")


class Guest:
    """A 32-bit guest: a task of ``Kernel(arch)``, its numbers, its layouts and its errno values."""

    def __init__(self, arch: str) -> None:
        self.arch = arch
        self.k = Kernel(arch=arch)
        self.t: Task = self.k.new_task(uid=1000, gid=1000)
        self.abi = ABIS32[arch]
        self.nr = sysno.NUMBERS[arch]
        self.mm = self.t.mm

    def err(self, generic: int) -> int:
        return -self.abi.errno_out.get(generic, generic)

    def call(self, name: str, *args: int) -> int:
        return self.t.syscall(self.nr[name], *args)

    def buf(self, data: bytes = b"", size: int = 0) -> int:
        addr: int = self.mm.alloc(max(len(data), size, 1))
        self.mm.write(addr, data)
        return addr

    def msg(self, mtype: int, text: bytes) -> int:
        return self.buf(self.abi.msgbuf.pack(mtype) + text)

    def msgget(self) -> int:
        if self.abi.has_ipc:
            return self.call("ipc", MSGGET, IPC_PRIVATE, IPC_CREAT | 0o600, 0, 0, 0)
        return self.call("msgget", IPC_PRIVATE, IPC_CREAT | 0o600)


@pytest.fixture(params=ARCHES)
def g(request: pytest.FixtureRequest) -> Guest:
    return Guest(request.param)


def test_msgsnd_msgrcv_use_a_32_bit_mtype(g: Guest) -> None:
    q = g.call("msgget", IPC_PRIVATE, IPC_CREAT | 0o600)
    assert q >= 0
    assert g.call("msgsnd", q, g.msg(5, b"hello"), 5, IPC_NOWAIT) == 0
    assert g.call("msgsnd", q, g.msg(0, b"x"), 1, IPC_NOWAIT) == g.err(EINVAL)
    out = g.buf(size=64)
    # msgtyp -6 as the 32-bit register holds it: compat_long_t, sign-extended (lowest type <= 6).
    assert g.call("msgrcv", q, out, 64, (-6) & 0xFFFF_FFFF, IPC_NOWAIT) == 5
    assert g.mm.read(out, 4 + 5) == g.abi.msgbuf.pack(5) + b"hello"
    assert g.call("msgrcv", q, out, 64, 0, IPC_NOWAIT) == g.err(ENOMSG)
    # compat_ssize_t msgsz: 0xFFFFFFFF is -1, EINVAL before the queue is looked at.
    assert g.call("msgrcv", q, out, 0xFFFF_FFFF, 0, IPC_NOWAIT) == g.err(EINVAL)


def test_a_64_bit_senders_large_mtype_reads_back_truncated(g: Guest) -> None:
    """compat_do_msg_fill stores (compat_long_t)m_type: the low 32 bits, signed."""
    q = g.call("msgget", IPC_PRIVATE, IPC_CREAT | 0o600)
    other = g.k.new_task()  # an amd64-style sender in the same namespace: the engine's 8-byte header
    from mqsentry.abi.linux.msgqueue import MTYPE
    from mqsentry.syscalls.linux.sys_msgqueue import do_msgsnd
    addr = other.mm.alloc(16)
    other.mm.write(addr, MTYPE.pack((1 << 32) + 7) + b"abc")
    assert do_msgsnd(other, q, addr, 3, IPC_NOWAIT, MTYPE.unpack_from, 8, None) == 0
    out = g.buf(size=16)
    assert g.call("msgrcv", q, out, 16, 0, IPC_NOWAIT) == 3
    assert g.abi.msgbuf.unpack(g.mm.read(out, 4))[0] == 7


def test_ipc_msgrcv_versions(g: Guest) -> None:
    if not g.abi.has_ipc:
        assert "ipc" not in g.nr and g.t.syscall(117, MSGGET, 0, 0, 0, 0) == g.err(ENOSYS)  # arm: no ipc(2)
        return
    q = g.msgget()
    for mtype in (3, 1, 2):
        assert g.call("ipc", MSGSND, q, 1, IPC_NOWAIT, g.msg(mtype, bytes([mtype])), 0) == 0
    out = g.buf(size=16)
    kludge = g.buf(g.abi.ipc_kludge.pack(out, -2))
    assert g.call("ipc", MSGRCV, q, 8, IPC_NOWAIT, kludge, 0) == 1  # version 0: the kludge
    assert g.abi.msgbuf.unpack(g.mm.read(out, 4))[0] == 1
    assert g.call("ipc", MSGRCV | 1 << 16, q, 8, IPC_NOWAIT, out, 2) == 1  # version 1: fifth is msgtyp
    assert g.abi.msgbuf.unpack(g.mm.read(out, 4))[0] == 2
    assert g.call("ipc", MSGRCV, q, 8, IPC_NOWAIT, 0, 0) == g.err(EINVAL)  # no kludge
    assert g.call("ipc", MSGRCV | 1 << 16, q, 0, IPC_NOWAIT, out, 3) == g.err(E2BIG)
    for call in (1, 2, 3, 4, 21, 22, 23, 24, 15, 0xFFFF):
        assert g.call("ipc", call, 0, 0, 0, 0, 0) == g.err(ENOSYS)


def _stat(g: Guest, q: int, version: int, via_ipc: bool) -> dict[str, int]:
    lay = g.abi.msqid64_ds if version == IPC_64 else g.abi.msqid_ds
    buf = g.buf(size=lay.size)
    if via_ipc:
        assert g.call("ipc", MSGCTL, q, IPC_STAT | version, 0, buf, 0) == 0
    else:
        assert g.call("msgctl", q, IPC_STAT | version, buf) == 0
    return lay.to_dict(g.mm.read(buf, lay.size))


def test_msgctl_layouts(g: Guest) -> None:
    q = g.msgget()
    assert g.call("msgsnd", q, g.msg(1, b"abcd"), 4, IPC_NOWAIT) == 0
    entry = g.abi.has_ipc
    new = _stat(g, q, IPC_64, via_ipc=entry) if entry else _stat(g, q, IPC_64, via_ipc=False)
    assert (new["qnum"], new["cbytes"], new["qbytes"]) == (1, 4, MSGMNB)
    assert (new["perm.uid"], new["perm.mode"], new["lspid"]) == (1000, 0o600, g.t.tg.tgid)
    assert new["stime"] and new["stime_high"] == 0
    old = _stat(g, q, 0, via_ipc=entry)
    assert (old["qnum"], old["cbytes"], old["qbytes"], old["perm.uid"], old["perm.mode"]) == (1, 4, MSGMNB, 1000,
                                                                                               0o600)
    assert old["first"] == old["last"] == 0
    # A native 32-bit kernel fills the 32-bit twins; x86_64's compat layer leaves them zero.
    assert (old["lcbytes"], old["lqbytes"]) == ((0, 0) if g.abi.x86_compat else (4, MSGMNB))
    # IPC_SET through the old layout (uid, gid, mode, 16-bit msg_qbytes).
    lay = g.abi.msqid_ds
    buf = g.buf(lay.from_dict({"perm.uid": 1000, "perm.gid": 1000, "perm.mode": 0o640, "qbytes": 1234}))
    if entry:
        assert g.call("ipc", MSGCTL, q, IPC_SET, 0, buf, 0) == 0
    else:
        assert g.call("msgctl", q, IPC_SET, buf) == 0
    new = _stat(g, q, IPC_64, via_ipc=entry)
    assert (new["qbytes"], new["perm.mode"]) == (1234, 0o640)


def test_direct_msgctl_and_ipc_64(g: Guest) -> None:
    q = g.call("msgget", IPC_PRIVATE, IPC_CREAT | 0o600)
    buf = g.buf(size=g.abi.msqid64_ds.size)
    if g.abi.msgctl_parses_version:  # arm, mips: sys_old_msgctl strips IPC_64
        assert g.call("msgctl", q, IPC_STAT | IPC_64, buf) == 0
    else:  # i386: compat_sys_msgctl is always IPC_64 and rejects the bit
        assert g.call("msgctl", q, IPC_STAT | IPC_64, buf) == g.err(EINVAL)
        assert g.call("msgctl", q, IPC_STAT, buf) == 0
        assert g.abi.msqid64_ds.to_dict(g.mm.read(buf, 88))["qbytes"] == MSGMNB
    assert g.call("msgctl", q, IPC_RMID, 0) == 0
    assert g.call("msgctl", q, IPC_RMID, 0) == g.err(EINVAL)


def test_old_layout_ids_above_65535(g: Guest) -> None:
    """SET_UID into a 16-bit field shows overflowuid (i386, arm); mips' fields are 32 bits."""
    t = g.k.new_task(uid=70000, gid=70000)
    q = t.syscall(g.nr["msgget"], IPC_PRIVATE, IPC_CREAT | 0o600)
    g.t, g.mm = t, t.mm
    old = _stat(g, q, 0, via_ipc=g.abi.has_ipc) if g.abi.has_ipc or g.abi.msgctl_parses_version else None
    if old is not None:
        assert old["perm.uid"] == (70000 if g.arch.startswith("mips") else 65534)


def _mq(g: Guest, maxmsg: int = 4, msgsize: int = 16) -> int:
    name = g.buf(b"q32\0")  # the raw call takes the name without glibc's leading '/'
    attr = g.buf(g.abi.mq_attr.pack(0, maxmsg, msgsize, 0))
    creat_rdwr = g.abi.flags_out(0o100 | 2)  # O_CREAT | O_RDWR as this guest spells them
    return g.call("mq_open", name, creat_rdwr, 0o600, attr)


def test_mq_calls_and_time64(g: Guest) -> None:
    fd = _mq(g)
    assert fd >= 0
    assert g.call("mq_timedsend", fd, g.buf(b"lo"), 2, 1, 0) == 0
    assert g.call("mq_timedsend", fd, g.buf(b"hi"), 2, 7, 0) == 0
    out, prio = g.buf(size=16), g.buf(size=4)
    assert g.call("mq_timedreceive", fd, out, 16, prio, 0) == 2
    assert g.abi.mq_prio.unpack(g.mm.read(prio, 4))[0] == 7  # the guest's byte order
    past64 = g.buf(g.abi.timespec64.pack(1, 0))
    assert g.call("mq_timedreceive_time64", fd, out, 16, prio, past64) == 2
    assert g.call("mq_timedreceive_time64", fd, out, 16, prio, past64) == g.err(ETIMEDOUT)
    # Only tv_nsec's low 32 bits count for a 32-bit caller: 1 << 32 is 0 nanoseconds.
    ok_nsec = g.buf(g.abi.timespec64.pack(1, 1 << 32))
    assert g.call("mq_timedreceive_time64", fd, out, 16, prio, ok_nsec) == g.err(ETIMEDOUT)
    bad_nsec = g.buf(g.abi.timespec64.pack(1, 1_000_000_000))
    assert g.call("mq_timedsend_time64", fd, out, 1, 0, bad_nsec) == g.err(EINVAL)
    bad32 = g.buf(g.abi.timespec32.pack(1, -1))
    assert g.call("mq_timedsend", fd, out, 1, 0, bad32) == g.err(EINVAL)
    assert g.call("mq_timedreceive", fd, out, 8, prio, 0) == g.err(EMSGSIZE)


def test_mq_getsetattr_speaks_the_guests_o_nonblock(g: Guest) -> None:
    fd = _mq(g)
    nonblock = g.abi.flags_out(0o4000)
    new, old = g.buf(g.abi.mq_attr.pack(nonblock, 0, 0, 0)), g.buf(size=32)
    assert g.call("mq_getsetattr", fd, new, old) == 0
    assert g.abi.mq_attr.unpack(g.mm.read(old, 32)) == (0, 4, 16, 0)
    assert g.call("mq_getsetattr", fd, 0, old) == 0
    assert g.abi.mq_attr.unpack(g.mm.read(old, 32))[0] == nonblock
    generic_nonblock = g.buf(g.abi.mq_attr.pack(0o4000, 0, 0, 0))
    if nonblock != 0o4000:  # mips: the asm-generic bit is not O_NONBLOCK there
        assert g.call("mq_getsetattr", fd, generic_nonblock, 0) == g.err(EINVAL)
    out = g.buf(size=16)
    from mqsentry.abi.linux.errno import EAGAIN
    assert g.call("mq_timedreceive", fd, out, 16, 0, 0) == -EAGAIN


def test_mq_notify_reads_the_compat_sigevent(g: Guest) -> None:
    fd = _mq(g)
    ev = g.buf(g.abi.sigevent.pack(0, 0, 1, 0, 0))  # SIGEV_NONE
    assert g.call("mq_notify", fd, ev) == 0
    from mqsentry.abi.linux.errno import EBUSY
    assert g.call("mq_notify", fd, ev) == g.err(EBUSY)
    assert g.call("mq_notify", fd, 0) == 0
    bad = g.buf(g.abi.sigevent.pack(0, 0, 77, 0, 0))
    assert g.call("mq_notify", fd, bad) == g.err(EINVAL)


def test_unknown_numbers_give_the_guests_enosys(g: Guest) -> None:
    assert g.t.syscall(99999) == g.err(ENOSYS)
    assert g.t.syscall(g.nr["fcntl"] if "fcntl" in g.nr else 55) == g.err(ENOSYS)  # not served to 32-bit


def test_mips_numbers_errno_apart() -> None:
    g = Guest("mips")
    assert g.err(ENOMSG) == -35 and g.err(ENOSYS) == -89 and g.err(EINVAL) == -EINVAL
    q = g.call("msgget", IPC_PRIVATE, IPC_CREAT | 0o600)
    assert g.call("msgrcv", q, g.buf(size=8), 8, 0, IPC_NOWAIT) == -35
    assert g.abi.msgbuf.pack(1) == b"\0\0\0\1"  # big-endian
