"""msgctl: IPC_STAT/MSG_STAT/MSG_STAT_ANY, IPC_SET, IPC_RMID, IPC_INFO/MSG_INFO, and the order of
their checks.

Linux counterpart: ipc/msg.c ksys_msgctl/msgctl_stat/msgctl_down/msgctl_info, ipc/util.c
ipcctl_obtain_check/ipc_update_perm. gVisor counterpart: test/syscalls/linux/msgqueue.cc
MsgCtlIpcStat, MsgCtlIpcSet, MsgCtlIpcSetMaxBytes, MsgCtlIpcInfo, MsgCtlMsgInfo.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EACCES, EFAULT, EINVAL, EPERM
from mqsentry.abi.linux.ipc import (
    IPC_64,
    IPC_CREAT,
    IPC_EXCL,
    IPC_INFO,
    IPC_NOWAIT,
    IPC_PRIVATE,
    IPC_RMID,
    IPC_SET,
    IPC_STAT,
)
from mqsentry.abi.linux.msgqueue import (
    MSG_INFO,
    MSG_STAT,
    MSG_STAT_ANY,
    MSGMAX,
    MSGMNB,
    MSGMNI,
    MSGPOOL,
    MSGSEG,
    MSGSSZ,
    MSGTQL,
    MSQID64_DS,
)
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import KEY, MSG_SIZE, TEXT, new_queue
from mqsentry.testsuite.targets.base import Target

UNUSED_ID = 12345


def _seconds(proc: Proc) -> int:
    return int(proc.realtime())


def assert_time_between(lo: int, t: int, hi: int) -> None:
    # The kernel stamps with ktime_get_real_seconds(), which trails clock_gettime() by up to a tick
    # right after a second boundary: allow that one second of slack below.
    assert lo - 1 <= t <= hi, (lo, t, hi)


# -- gVisor MsgCtl* -------------------------------------------------------------------------------------

def test_ipc_stat(proc: Proc) -> None:
    uid, gid, pid = proc.getuid(), proc.getgid(), proc.getpid()
    start = _seconds(proc)
    q = new_queue(proc)
    ret, ds = proc.msgctl_stat(q, IPC_STAT)
    now = _seconds(proc)
    assert ret == 0
    assert (ds.key, ds.uid, ds.gid, ds.cuid, ds.cgid, ds.mode) == (IPC_PRIVATE, uid, gid, uid, gid, 0o600)
    assert (ds.stime, ds.rtime) == (0, 0)
    assert_time_between(start, ds.ctime, now)
    assert (ds.cbytes, ds.qnum, ds.qbytes, ds.lspid, ds.lrpid) == (0, 0, MSGMNB, 0, 0)
    ctime = ds.ctime

    pre_send = _seconds(proc)
    proc.msgsnd(q, 1, TEXT)
    ds = proc.msgstat(q)
    now = _seconds(proc)
    assert_time_between(pre_send, ds.stime, now)
    assert (ds.rtime, ds.ctime) == (0, ctime)
    assert (ds.cbytes, ds.qnum, ds.qbytes, ds.lspid, ds.lrpid) == (MSG_SIZE, 1, MSGMNB, pid, 0)
    stime = ds.stime

    pre_receive = _seconds(proc)
    assert proc.msgrcv(q, MSG_SIZE) == (1, TEXT)
    ds = proc.msgstat(q)
    now = _seconds(proc)
    assert_time_between(pre_receive, ds.rtime, now)
    assert (ds.stime, ds.ctime) == (stime, ctime)
    assert (ds.cbytes, ds.qnum, ds.qbytes, ds.lspid, ds.lrpid) == (0, 0, MSGMNB, pid, pid)


def test_ipc_set_mode(proc: Proc) -> None:
    q = new_queue(proc)
    assert proc.msgstat(q).mode == 0o600
    proc.msgctl_set(q, mode=0o777)
    assert proc.msgstat(q).mode == 0o777


def test_ipc_set_max_bytes(proc: Proc) -> None:
    proc.drop_cap(CAP_SYS_RESOURCE)
    q = new_queue(proc)
    assert proc.msgstat(q).qbytes == MSGMNB
    proc.msgctl_set(q, qbytes=MSGMNB - 10)
    assert proc.msgstat(q).qbytes == MSGMNB - 10
    with expect_errno(EPERM):
        proc.msgctl_set(q, qbytes=MSGMNB + 10)
    assert proc.msgstat(q).qbytes == MSGMNB - 10
    proc.msgctl_set(q, qbytes=MSGMNB)  # back up to exactly msgmnb is allowed


def test_ipc_info(proc: Proc) -> None:
    ret, info = proc.msgctl_info(IPC_INFO, 0)
    assert ret == 0  # no queue: highest index reported as 0
    assert info == {"msgpool": MSGPOOL, "msgmap": 16384, "msgmax": MSGMAX, "msgmnb": MSGMNB,
                    "msgmni": MSGMNI, "msgssz": MSGSSZ, "msgtql": MSGTQL, "msgseg": MSGSEG}


def test_msg_info(proc: Proc) -> None:
    ret, base = proc.msgctl_info(MSG_INFO, 0)
    assert ret == 0
    # A fresh namespace: no queues, messages or bytes.
    assert (base["msgpool"], base["msgmap"], base["msgtql"]) == (0, 0, 0)
    assert (base["msgmax"], base["msgmnb"], base["msgmni"], base["msgssz"], base["msgseg"]) == (
        MSGMAX, MSGMNB, MSGMNI, MSGSSZ, MSGSEG)
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    ret, info = proc.msgctl_info(MSG_INFO, 0)
    assert ret == q  # the only queue has index 0 ... and its id is 0 too in a fresh namespace
    assert info["msgpool"] == base["msgpool"] + 1
    assert info["msgmap"] == base["msgmap"] + 1
    assert info["msgtql"] == base["msgtql"] + MSG_SIZE
    assert info["msgssz"] == MSGSSZ
    q2 = new_queue(proc)
    proc.msgsnd(q2, 1, b"abc")
    proc.msgsnd(q2, 2, b"")
    ret, info = proc.msgctl_info(MSG_INFO, 0)
    assert (ret, info["msgpool"], info["msgmap"], info["msgtql"]) == (1, 2, 3, MSG_SIZE + 3)
    proc.msgctl_rmid(q2)
    proc.msgrcv(q, MSG_SIZE)
    ret, info = proc.msgctl_info(MSG_INFO, 0)
    assert (ret, info["msgpool"], info["msgmap"], info["msgtql"]) == (0, 1, 0, 0)


# -- IPC_INFO / MSG_INFO beyond gVisor ------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [IPC_INFO, MSG_INFO])
def test_info_returns_highest_index(proc: Proc, cmd: int) -> None:
    qs = [new_queue(proc) for _ in range(10)]
    assert qs == list(range(10))
    assert proc.msgctl_info(cmd)[0] == 9
    proc.msgctl_rmid(qs[5])
    assert proc.msgctl_info(cmd)[0] == 9
    proc.msgctl_rmid(qs[9])
    proc.msgctl_rmid(qs[8])
    assert proc.msgctl_info(cmd)[0] == 7
    for q in qs[:5] + qs[6:8]:
        proc.msgctl_rmid(q)
    assert proc.msgctl_info(cmd)[0] == 0


@pytest.mark.parametrize("cmd", [IPC_INFO, MSG_INFO])
def test_info_id_checks(target: Target, proc: Proc, cmd: int) -> None:
    p = proc.alloc(64)
    assert proc.msgctl_raw(UNUSED_ID, cmd, p) == 0  # the id is otherwise ignored
    with expect_errno(EINVAL):
        proc.msgctl_raw(-1, cmd, p)
    with expect_errno(EFAULT):
        proc.msgctl_raw(0, cmd, target.bad_addr)
    with expect_errno(EINVAL):
        proc.msgctl_raw(0, cmd | IPC_64, p)


def test_info_needs_no_permission(target: Target, proc: Proc) -> None:
    new_queue(proc, 0o000)
    other = Proc(target.spawn(uid=1000, gid=1000))
    assert other.msgctl_info(MSG_INFO)[1]["msgpool"] == 1


# -- command validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO, MSG_STAT, MSG_INFO, MSG_STAT_ANY])
def test_ipc_64_is_an_unknown_command(proc: Proc, cmd: int) -> None:
    q = new_queue(proc)
    p = proc.buf(proc.msgstat(q).pack())
    with expect_errno(EINVAL):
        proc.msgctl_raw(q, cmd | IPC_64, p)
    assert proc.msgstat(q).qbytes == MSGMNB  # still there, unchanged


@pytest.mark.parametrize("cmd", [-1, 4, 10, 14, 99, 0x7FFFFFFF])
def test_unknown_command(proc: Proc, cmd: int) -> None:
    q = new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgctl_raw(q, cmd, proc.alloc(MSQID64_DS.size))


@pytest.mark.parametrize("cmd", [IPC_STAT, IPC_SET, IPC_RMID, MSG_STAT, MSG_STAT_ANY])
def test_negative_id(proc: Proc, cmd: int) -> None:
    new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgctl_raw(-1, cmd, proc.alloc(MSQID64_DS.size))


# -- IPC_STAT / MSG_STAT / MSG_STAT_ANY -------------------------------------------------------------------

def test_ipc_stat_errors(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    with expect_errno(EFAULT):
        proc.msgctl_raw(q, IPC_STAT, target.bad_addr)
    with expect_errno(EINVAL):  # the lookup precedes the copy-out
        proc.msgctl_raw(UNUSED_ID, IPC_STAT, target.bad_addr)
    with expect_errno(EINVAL):  # a stale sequence number is just an invalid id
        proc.msgctl_raw(q + 32768, IPC_STAT, proc.alloc(MSQID64_DS.size))


def test_msg_stat_by_index(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/kernel/msg_next_id", b"32777")  # seq 1, index 9
    q = proc.msgget(KEY, IPC_CREAT | 0o640)
    assert q == 32777
    ret, ds = proc.msgctl_stat(9, MSG_STAT)
    assert ret == q  # the full id, not 0
    assert (ds.key, ds.mode, ds.seq) == (KEY, 0o640, 1)
    assert ds == proc.msgstat(q)
    assert proc.msgctl_stat(q, MSG_STAT)[0] == q  # only the index bits are used
    assert proc.msgctl_stat(9 + 5 * 32768, MSG_STAT_ANY)[0] == q
    with expect_errno(EINVAL):
        proc.msgctl_stat(9, IPC_STAT)  # IPC_STAT wants the full id
    for idx in (0, 8, 10, 32767):
        for cmd in (MSG_STAT, MSG_STAT_ANY):
            with expect_errno(EINVAL):
                proc.msgctl_stat(idx, cmd)


def test_msg_stat_permissions(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o600)
    other = Proc(target.spawn(uid=1000, gid=1000))
    with expect_errno(EACCES):
        other.msgctl_stat(q, IPC_STAT)
    with expect_errno(EACCES):
        other.msgctl_stat(q, MSG_STAT)
    ret, ds = other.msgctl_stat(q, MSG_STAT_ANY)
    assert (ret, ds.mode, ds.uid) == (q, 0o600, 0)
    with expect_errno(EFAULT):
        other.msgctl_raw(q, MSG_STAT_ANY, target.bad_addr)


# -- IPC_SET ------------------------------------------------------------------------------------------------

def test_ipc_set_changes_only_settable_fields(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    proc.msgsnd(q, 1, TEXT)
    before = proc.msgstat(q)
    start = _seconds(proc)
    proc.msgctl_set(q, before, mode=0o7764, uid=1000, gid=2000, qbytes=1000, key=77, cuid=5, cgid=6,
                    seq=9, stime=1, rtime=2, ctime=3, cbytes=4, qnum=5, lspid=6, lrpid=7)
    ds = proc.msgstat(q)
    now = _seconds(proc)
    assert (ds.mode, ds.uid, ds.gid, ds.qbytes) == (0o764, 1000, 2000, 1000)
    assert (ds.key, ds.cuid, ds.cgid, ds.seq) == (KEY, 0, 0, before.seq)
    assert (ds.stime, ds.rtime, ds.cbytes, ds.qnum, ds.lspid, ds.lrpid) == (
        before.stime, 0, MSG_SIZE, 1, before.lspid, 0)
    assert_time_between(start, ds.ctime, now)  # ctime is the time of the change


def test_ipc_set_copy_in_before_lookup(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    with expect_errno(EFAULT):
        proc.msgctl_raw(q, IPC_SET, target.bad_addr)
    with expect_errno(EFAULT):
        proc.msgctl_raw(UNUSED_ID, IPC_SET, target.bad_addr)
    with expect_errno(EINVAL):
        proc.msgctl_raw(-1, IPC_SET, target.bad_addr)
    good = proc.buf(proc.msgstat(q).pack())
    with expect_errno(EINVAL):
        proc.msgctl_raw(UNUSED_ID, IPC_SET, good)


def test_ipc_set_non_owner(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o666)
    ds = proc.msgstat(q)
    other = Proc(target.spawn(uid=1000, gid=0))
    with expect_errno(EPERM):
        other.msgctl_set(q, ds, mode=0o600)
    # CAP_IPC_OWNER grants access, not ownership.
    ipc_owner = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_IPC_OWNER))
    with expect_errno(EPERM):
        ipc_owner.msgctl_set(q, ds, mode=0o600)
    admin = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_SYS_ADMIN))
    admin.msgctl_set(q, ds, mode=0o640)
    assert proc.msgstat(q).mode == 0o640


def test_ipc_set_owner_and_creator_may_set(target: Target, proc: Proc) -> None:
    creator = Proc(target.spawn(uid=1000, gid=1000))
    q = creator.msgget(KEY, IPC_CREAT | 0o600)
    creator.msgctl_set(q, uid=2000)
    owner = Proc(target.spawn(uid=2000, gid=2000))
    owner.msgctl_set(q, mode=0o644)
    creator.msgctl_set(q, mode=0o640)
    assert proc.msgstat(q).mode == 0o640


def test_ipc_set_owner_check_before_qbytes_check(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    ds = proc.msgstat(q)
    other = Proc(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        other.msgctl_set(q, ds, qbytes=1)
    assert proc.msgstat(q).qbytes == MSGMNB


def test_ipc_set_qbytes_above_msgmnb_with_cap_sys_resource(proc: Proc) -> None:
    if not proc.capget()[0] & (1 << CAP_SYS_RESOURCE):
        pytest.skip("the target's root has no CAP_SYS_RESOURCE (e.g. a container without it)")
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=MSGMNB * 4)
    assert proc.msgstat(q).qbytes == MSGMNB * 4
    big = b"x" * MSGMAX
    for _ in range(4 * MSGMNB // MSGMAX):
        proc.msgsnd(q, 1, big, IPC_NOWAIT)


def test_ipc_set_qbytes_ceiling_follows_msgmnb(target: Target, proc: Proc) -> None:
    proc.drop_cap(CAP_SYS_RESOURCE)
    q = new_queue(proc)
    target.write_file("/proc/sys/kernel/msgmnb", b"20000")
    proc.msgctl_set(q, qbytes=20000)
    with expect_errno(EPERM):
        proc.msgctl_set(q, qbytes=20001)


def test_ipc_set_invalid_uid(proc: Proc) -> None:
    q = new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgctl_set(q, uid=0xFFFFFFFF, qbytes=100)
    with expect_errno(EINVAL):
        proc.msgctl_set(q, gid=0xFFFFFFFF, mode=0o666)
    ds = proc.msgstat(q)
    assert (ds.uid, ds.gid, ds.mode, ds.qbytes) == (0, 0, 0o600, MSGMNB)  # nothing applied


# -- IPC_RMID -------------------------------------------------------------------------------------------------

def test_rmid(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    proc.msgsnd(q, 1, TEXT)
    proc.msgctl_rmid(q)
    with expect_errno(EINVAL):
        proc.msgstat(q)
    with expect_errno(EINVAL):
        proc.msgctl_rmid(q)  # a stale id is EINVAL, never EIDRM
    assert proc.msgctl_info(MSG_INFO)[1]["msgmap"] == 0  # its messages are freed
    # The key is free again.
    assert proc.msgget(KEY, IPC_CREAT | IPC_EXCL | 0o600) != q


def test_rmid_bad_id(target: Target, proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.msgctl_rmid(UNUSED_ID)
    with expect_errno(EINVAL):
        proc.msgctl_rmid(-1)
    q = new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgctl_rmid(q + 32768)  # right index, wrong sequence
    proc.msgctl_raw(q, IPC_RMID, target.bad_addr)  # the buffer is ignored


def test_rmid_permissions(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o666)
    other = Proc(target.spawn(uid=1000, gid=0))
    with expect_errno(EPERM):
        other.msgctl_rmid(q)
    ipc_owner = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_IPC_OWNER))
    with expect_errno(EPERM):
        ipc_owner.msgctl_rmid(q)
    admin = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_SYS_ADMIN))
    admin.msgctl_rmid(q)
    with expect_errno(EINVAL):
        proc.msgstat(q)


def test_rmid_by_owner_and_creator(target: Target, proc: Proc) -> None:
    creator = Proc(target.spawn(uid=1000, gid=1000))
    owner = Proc(target.spawn(uid=2000, gid=2000))
    a = creator.msgget(KEY, IPC_CREAT | 0o600)
    b = creator.msgget(KEY + 1, IPC_CREAT | 0o600)
    creator.msgctl_set(a, uid=2000)
    creator.msgctl_set(b, uid=2000)
    owner.msgctl_rmid(a)
    creator.msgctl_rmid(b)
    assert proc.msgctl_info(MSG_INFO)[1]["msgpool"] == 0


# -- exact copy-out sizes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [IPC_INFO, MSG_INFO])
def test_info_copies_out_exactly_the_c_struct(proc: Proc, cmd: int) -> None:
    new_queue(proc)
    p = proc.buf(b"\xff" * 40)
    proc.msgctl_raw(0, cmd, p)
    raw = proc.read(p, 40)
    assert raw[30:32] == b"\0\0"  # sizeof(struct msginfo) is 32: the tail padding is copied, zeroed
    assert raw[32:] == b"\xff" * 8  # and nothing beyond it


@pytest.mark.parametrize("cmd", [IPC_STAT, MSG_STAT, MSG_STAT_ANY])
def test_stat_copies_out_exactly_msqid64_ds(proc: Proc, cmd: int) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    p = proc.buf(b"\xff" * (MSQID64_DS.size + 8))
    proc.msgctl_raw(q, cmd, p)
    raw = proc.read(p, MSQID64_DS.size + 8)
    assert raw[MSQID64_DS.size:] == b"\xff" * 8
    fields = MSQID64_DS.to_dict(raw[:MSQID64_DS.size])
    assert (fields["perm.unused1"], fields["perm.unused2"], fields["unused4"], fields["unused5"]) == (0, 0, 0, 0)
    assert raw[26:32] == b"\0" * 6  # ipc64_perm padding after the 16-bit seq
    assert fields["qnum"] == 1
