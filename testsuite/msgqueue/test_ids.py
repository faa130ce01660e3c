"""Queue IDs (``seq * 32768 + idx`` with cyclic index allocation), kernel.msg_next_id, and the exact
text of /proc/sysvipc/msg.

Linux counterpart: ipc/util.c ipc_idr_alloc/ipc_addid/ipc_rmid, ipc/ipc_sysctl.c (msg_next_id),
ipc/msg.c sysvipc_msg_proc_show, ipc/util.c sysvipc_proc_* (header, index order).
gVisor counterpart: none in msgqueue.cc (gVisor's registry differs: divergence D5 of
docs/gvisor-divergences.md).
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EINVAL, ENOENT, ENOSPC
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_PRIVATE, IPCMNI
from mqsentry.abi.linux.msgqueue import MSG_STAT
from mqsentry.testsuite.libc import LinuxError, Proc, expect_errno
from mqsentry.testsuite.libc.sysv import MsqidDs
from mqsentry.testsuite.msgqueue import KEY, new_queue
from mqsentry.testsuite.targets.base import Target

NEXT_ID = "/proc/sys/kernel/msg_next_id"
HEADER = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid"
          "      stime      rtime      ctime\n")


def row(q: int, ds: MsqidDs) -> str:
    """One /proc/sysvipc/msg line, as sysvipc_msg_proc_show prints it."""
    return (f"{ds.key:10d} {q:10d}  {ds.mode:4o}  {ds.cbytes:10d} {ds.qnum:10d} {ds.lspid:5d} {ds.lrpid:5d}"
            f" {ds.uid:5d} {ds.gid:5d} {ds.cuid:5d} {ds.cgid:5d} {ds.stime:10d} {ds.rtime:10d} {ds.ctime:10d}\n")


# -- ID arithmetic ------------------------------------------------------------------------------------------

def test_fresh_namespace_ids_count_up(proc: Proc) -> None:
    assert [new_queue(proc) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_removed_index_is_not_reused_at_once(proc: Proc) -> None:
    _a, b, _c = (new_queue(proc) for _ in range(3))
    proc.msgctl_rmid(b)
    assert new_queue(proc) == 3  # cyclic allocation continues after the last index


def test_index_wraps_after_64_with_new_sequence(proc: Proc) -> None:
    ids = []
    for _ in range(64):
        q = new_queue(proc)
        ids.append(q)
        proc.msgctl_rmid(q)
    assert ids == list(range(64))
    # With few queues in use the index range is [0, 64): the cursor wraps and the sequence grows.
    assert new_queue(proc) == IPCMNI
    assert new_queue(proc) == IPCMNI + 1


def test_index_range_grows_with_queues_in_use(proc: Proc) -> None:
    assert [new_queue(proc) for _ in range(64)] == list(range(64))
    # 64 in use: the range is [0, 96), so the cursor moves on to 64 with the same sequence.
    assert new_queue(proc) == 64


def test_stale_id_after_wrap(proc: Proc) -> None:
    for _ in range(64):
        proc.msgctl_rmid(new_queue(proc))
    q = new_queue(proc)
    assert q == IPCMNI
    with expect_errno(EINVAL):
        proc.msgstat(0)  # index 0 is in use, but with sequence 1
    assert proc.msgstat(q).seq == 1


def test_nearly_full_table_finds_the_last_free_indexes(target: Target, proc: Proc) -> None:
    """With every one of the IPCMNI indexes in use, msgget is ENOSPC; freed indexes are found by the
    cyclic search wherever they are (past the cursor's wrap, near the end), and IPC_INFO's highest
    index follows removals at the top."""
    target.write_file("/proc/sys/kernel/msgmni", str(IPCMNI).encode())
    assert [new_queue(proc) for _ in range(IPCMNI)] == list(range(IPCMNI))
    with expect_errno(ENOSPC):
        new_queue(proc)
    assert proc.msgctl_info()[0] == IPCMNI - 1
    for idx in (5, IPCMNI - 2, IPCMNI - 1):
        proc.msgctl_rmid(idx)
    assert proc.msgctl_info()[0] == IPCMNI - 3
    # The cursor is past the end: the search wraps to 0 (new sequence) and finds index 5 first.
    assert new_queue(proc) == IPCMNI + 5
    assert new_queue(proc) == IPCMNI + IPCMNI - 2
    assert new_queue(proc) == IPCMNI + IPCMNI - 1
    assert proc.msgctl_info()[0] == IPCMNI - 1
    with expect_errno(ENOSPC):
        new_queue(proc)


# -- kernel.msg_next_id ------------------------------------------------------------------------------------

def test_msg_next_id(target: Target, proc: Proc) -> None:
    assert target.read_file(NEXT_ID) == b"-1\n"
    target.write_file(NEXT_ID, b"100000")
    assert target.read_file(NEXT_ID) == b"100000\n"
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    assert q == 100000
    assert target.read_file(NEXT_ID) == b"-1\n"  # consumed by one allocation
    assert proc.msgstat(q).seq == 100000 // IPCMNI
    # The same desired id while it is in use: the next free index with that sequence.
    target.write_file(NEXT_ID, b"100000")
    assert new_queue(proc) == 100001
    # Normal allocation resumes from the cyclic cursor, untouched by msg_next_id.
    assert new_queue(proc) == 0
    assert proc.msgctl_info()[0] == 100001 % IPCMNI


def test_msg_next_id_for_ipc_private_and_lookup(target: Target, proc: Proc) -> None:
    target.write_file(NEXT_ID, b"7")
    assert proc.msgget(IPC_PRIVATE, 0o600) == 7
    assert new_queue(proc) == 0


def test_msg_next_id_rejects_negative(target: Target) -> None:
    for value in (b"-2", b"-1"):  # -1 is what it reads when unset, but it cannot be written
        try:
            target.write_file(NEXT_ID, value)
        except LinuxError as e:
            assert e.errno == EINVAL, str(e)
        else:
            raise AssertionError(f"writing {value!r} to kernel.msg_next_id succeeded")
    assert target.read_file(NEXT_ID) == b"-1\n"


def test_msg_next_id_int_max(target: Target, proc: Proc) -> None:
    target.write_file(NEXT_ID, b"2147483647")
    q = new_queue(proc)
    assert q == 2147483647  # sequence 65535, index 32767
    ds = proc.msgstat(q)
    assert ds.seq == 65535
    assert proc.msgctl_stat(32767, MSG_STAT)[0] == q
    assert proc.msgctl_info()[0] == 32767
    assert new_queue(proc) == 0


def test_msg_next_id_failed_msgget_keeps_it(target: Target, proc: Proc) -> None:
    target.write_file(NEXT_ID, b"40")
    with expect_errno(ENOENT):
        proc.msgget(KEY, 0)  # no allocation happened
    assert target.read_file(NEXT_ID) == b"40\n"
    assert proc.msgget(KEY, IPC_CREAT | 0o600) == 40


# -- /proc/sysvipc/msg ---------------------------------------------------------------------------------------

def test_proc_sysvipc_msg_empty(target: Target) -> None:
    assert target.read_file("/proc/sysvipc/msg").decode() == HEADER


def test_proc_sysvipc_msg_rows(target: Target, proc: Proc) -> None:
    target.write_file(NEXT_ID, b"5")
    a = proc.msgget(-5, IPC_CREAT | 0o600)  # index 5, negative key
    b = proc.msgget(KEY, IPC_CREAT | 0o644)  # index 0
    c = new_queue(proc, 0o640)  # index 1
    assert (a, b, c) == (5, 0, 1)
    proc.msgsnd(b, 1, b"x" * 10)
    proc.msgsnd(b, 2, b"y" * 20)
    proc.msgrcv(b, 64, 2)
    proc.msgctl_set(c, uid=1000, gid=2000)
    child = proc.fork()
    child.msgsnd(a, 3, b"")
    text = target.read_file("/proc/sysvipc/msg").decode()
    expected = HEADER + "".join(row(q, proc.msgstat(q)) for q in (b, c, a))
    assert text == expected
    lines = text.splitlines()
    assert lines[3].split()[:2] == ["-5", "5"]
    assert lines[3].split()[5] == str(child.pid)  # lspid
    proc.msgctl_rmid(c)
    assert target.read_file("/proc/sysvipc/msg").decode() == HEADER + row(b, proc.msgstat(b)) + row(
        a, proc.msgstat(a))


def test_proc_sysvipc_msg_shows_all_queues_regardless_of_permission(target: Target, proc: Proc) -> None:
    q = new_queue(proc, 0o000)
    assert target.read_file("/proc/sysvipc/msg").decode() == HEADER + row(q, proc.msgstat(q))
