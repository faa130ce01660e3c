"""The 32-bit layouts against the C compilers: every size and field offset of abi/linux/abi32.py
equals ``sizeof``/``offsetof`` from Debian's cross compilers (kernel uapi headers for the IPC
structures, glibc's for sigevent and siginfo), and the mips errno and open-flag tables equal the
headers' values. A missing compiler skips its architecture with the reason."""

from __future__ import annotations

import pytest

from mqsentry.abi.linux import file as F
from mqsentry.abi.linux.abi32 import ABIS32, ARCHES32, MIPS_ERRNO
from mqsentry.abi.linux.layout import Layout
from mqsentry.testsuite.abi32 import cross


def offsets(lay: Layout) -> dict[str, tuple[int, int]]:
    """Each flattened field of ``lay`` -> (offset, size)."""
    return {f: (lay.offsetof(f), lay.sizeof(f)) for f in lay.fields}


def _perm(prefix: str, c: str) -> dict[str, str]:
    return {f"{prefix}{f}": f"{c}.{f}" if c else f for f in ("key", "uid", "gid", "cuid", "cgid", "mode", "seq")}


#: (layout attribute, C type, headers, {our field: C member}), for the kernel's own structures.
KERNEL_STRUCTS: list[tuple[str, str, list[str], dict[str, str]]] = [
    ("ipc_perm", "struct ipc_perm", ["linux/ipc.h"], _perm("", "")),
    ("msqid_ds", "struct msqid_ds", ["linux/msg.h"], _perm("perm.", "msg_perm") | {
        "first": "msg_first", "last": "msg_last", "stime": "msg_stime", "rtime": "msg_rtime",
        "ctime": "msg_ctime", "lcbytes": "msg_lcbytes", "lqbytes": "msg_lqbytes", "cbytes": "msg_cbytes",
        "qnum": "msg_qnum", "qbytes": "msg_qbytes", "lspid": "msg_lspid", "lrpid": "msg_lrpid"}),
    ("ipc64_perm", "struct ipc64_perm", ["linux/ipc.h", "asm/ipcbuf.h"], _perm("", "") | {
        "unused1": "__unused1", "unused2": "__unused2"}),
    ("msqid64_ds", "struct msqid64_ds", ["linux/msg.h", "asm/msgbuf.h"], _perm("perm.", "msg_perm") | {
        "perm.unused1": "msg_perm.__unused1", "perm.unused2": "msg_perm.__unused2"} | {
        f: f"msg_{f}" for f in ("stime", "stime_high", "rtime", "rtime_high", "ctime", "ctime_high",
                                "cbytes", "qnum", "qbytes", "lspid", "lrpid")} | {
        "unused4": "__unused4", "unused5": "__unused5"}),
    ("msgbuf", "struct msgbuf", ["linux/msg.h"], {"mtype": "mtype"}),
    ("ipc_kludge", "struct ipc_kludge", ["linux/ipc.h"], {"msgp": "msgp", "msgtyp": "msgtyp"}),
    ("msginfo", "struct msginfo", ["linux/msg.h"], {f: f for f in (
        "msgpool", "msgmap", "msgmax", "msgmnb", "msgmni", "msgssz", "msgtql", "msgseg")}),
    ("mq_attr", "struct mq_attr", ["linux/mqueue.h"], {
        "flags": "mq_flags", "maxmsg": "mq_maxmsg", "msgsize": "mq_msgsize", "curmsgs": "mq_curmsgs"}),
    ("timespec64", "struct __kernel_timespec", ["linux/time_types.h"], {"tv_sec": "tv_sec", "tv_nsec": "tv_nsec"}),
]
#: The same, for structures whose user-space view comes from glibc's headers.
LIBC_STRUCTS: list[tuple[str, str, list[str], dict[str, str]]] = [
    ("sigevent", "struct sigevent", ["signal.h"], {
        "value": "sigev_value", "signo": "sigev_signo", "notify": "sigev_notify",
        "tid": "_sigev_un._tid", "attribute": "_sigev_un._sigev_thread._attribute"}),
    ("siginfo", "siginfo_t", ["signal.h"], {
        "signo": "si_signo", "errno": "si_errno", "code": "si_code", "pid": "si_pid", "uid": "si_uid",
        "value": "si_value"}),
    # Without _TIME_BITS=64 a 32-bit glibc's timespec is the kernel's old_timespec32.
    ("timespec32", "struct timespec", ["time.h"], {"tv_sec": "tv_sec", "tv_nsec": "tv_nsec"}),
]


def _check(arch: str, structs: list[tuple[str, str, list[str], dict[str, str]]]) -> None:
    if cross.compiler(arch) is None:
        pytest.skip(cross.missing_reason(arch))
    abi = ABIS32[arch]
    for attr, ctype, headers, members in structs:
        lay: Layout = getattr(abi, attr)
        ours = offsets(lay)
        assert set(ours) == set(members), (attr, sorted(set(ours) ^ set(members)))
        # msgbuf's header ends where mtext starts (sizeof adds mtext[1] and padding).
        exprs = [f"offsetof({ctype}, mtext)" if attr == "msgbuf" else f"sizeof({ctype})"]
        for f in ours:
            m = members[f]
            exprs += [f"offsetof({ctype}, {m})", f"sizeof((({ctype} *)0)->{m})"]
        got = cross.c_constants(arch, headers, exprs)
        assert got[0] == lay.size, f"{arch} {ctype}: C sizeof {got[0]}, ours {lay.size}"
        for k, f in enumerate(ours):
            c_off, c_size = got[1 + 2 * k], got[2 + 2 * k]
            assert (c_off, c_size) == ours[f], f"{arch} {ctype}.{members[f]}: C {(c_off, c_size)}, ours {ours[f]}"


@pytest.mark.parametrize("arch", ARCHES32)
def test_kernel_structs_match_the_compiler(arch: str) -> None:
    _check(arch, KERNEL_STRUCTS)


@pytest.mark.parametrize("arch", ARCHES32)
def test_libc_structs_match_the_compiler(arch: str) -> None:
    _check(arch, LIBC_STRUCTS)


@pytest.mark.parametrize("arch", ARCHES32)
def test_byte_order_matches_the_compiler(arch: str) -> None:
    if cross.compiler(arch) is None:
        pytest.skip(cross.missing_reason(arch))
    little = "__ORDER_LITTLE_ENDIAN__" in cross.c_defines(arch, "stddef.h").get("__BYTE_ORDER__", "")
    assert ABIS32[arch].little is little
    assert all(lay.codec.format[0] == ("<" if little else ">")
               for lay in (ABIS32[arch].msqid64_ds, ABIS32[arch].mq_attr, ABIS32[arch].sigevent))


def test_mips_errno_table_matches_the_headers() -> None:
    if cross.compiler("mips") is None or cross.compiler("i386") is None:
        pytest.skip(cross.missing_reason("mips" if cross.compiler("mips") is None else "i386"))
    mips = cross.c_defines("mips", "asm/errno.h")
    generic = cross.c_defines("i386", "asm/errno.h")
    want = {int(v): int(mips[k]) for k, v in generic.items()
            if k.startswith("E") and v.isdigit() and k in mips and mips[k] != v}
    assert MIPS_ERRNO == want
    assert ABIS32["i386"].errno_out == {} and ABIS32["arm"].errno_out == {}


def test_mips_open_flags_match_the_headers() -> None:
    if cross.compiler("mips") is None:
        pytest.skip(cross.missing_reason("mips"))
    names = ["O_APPEND", "O_DSYNC", "O_NONBLOCK", "O_CREAT", "O_TRUNC", "O_EXCL", "O_NOCTTY", "FASYNC",
             "O_LARGEFILE", "__O_SYNC", "O_DIRECT", "O_DIRECTORY"]
    mips = cross.c_constants("mips", ["asm/fcntl.h"], names)
    ours = [g for g, _s in ABIS32["mips"].open_flags]
    assert ours == mips
    sentry = [s for _g, s in ABIS32["mips"].open_flags]
    assert sentry == [F.O_APPEND, F.O_DSYNC, F.O_NONBLOCK, F.O_CREAT, F.O_TRUNC, F.O_EXCL, F.O_NOCTTY, F.O_ASYNC,
                      F.O_LARGEFILE, F.O_SYNC & ~F.O_DSYNC, F.O_DIRECT, F.O_DIRECTORY]


def test_mips_flag_translation_round_trips() -> None:
    abi = ABIS32["mips"]
    for guest in (0, 2, 0x80, 0x100 | 0x400 | 1, 0x80000 | 0x80 | 2):
        assert abi.flags_out(abi.flags_in(guest)) == guest
    assert abi.flags_in(0x100 | 0x400 | 0x80 | 2) == F.O_CREAT | F.O_EXCL | F.O_NONBLOCK | 2
