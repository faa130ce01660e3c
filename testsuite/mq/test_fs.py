"""The mqueue filesystem: mounting (CAP_SYS_ADMIN), several mounts showing one namespace's tree,
open(2) of a queue giving a real mq descriptor, open(O_CREAT) creating a queue with default
attributes, unlink(2) as mq_unlink, getdents64, statfs magic, the sticky 01777 root and its size.

Linux counterpart: ipc/mqueue.c mqueue_fs_type/mqueue_fill_super/mqueue_create/mqueue_unlink,
mqueue_get_inode. gVisor counterpart: test/syscalls/linux/mq.cc Mount, MountSeveral, OpenAsFile,
UnlinkAsFile.
"""

from __future__ import annotations

import os

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EBADF, ENOENT, EPERM
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY, S_IFDIR, S_IFREG
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.libc.posix import MQUEUE_MAGIC, MqAttr
from mqsentry.testsuite.mq import MAXMSG, MSG, MSGSIZE, NAME, O_DIRECTORY, create, mountpoint, status
from mqsentry.testsuite.targets.base import Target

# -- gVisor ------------------------------------------------------------------------------------------------------


def test_mount(target: Target, proc: Proc) -> None:
    create(proc)
    mountpoint(target, proc)


def test_mount_several(target: Target, proc: Proc) -> None:
    create(proc)
    mounts = [mountpoint(target, proc, f"mq{i}") for i in range(3)]
    for m in mounts:
        st = proc.stat_path(os.path.join(m, "q"))
        assert st.mode & 0o170000 == S_IFREG
    # A queue created later appears in every mount.
    create(proc, "/later")
    for m in mounts:
        proc.stat_path(os.path.join(m, "later"))


def test_open_as_file(target: Target, proc: Proc) -> None:
    qfd = create(proc)
    m = mountpoint(target, proc)
    fd = proc.openat(os.path.join(m, "q"), O_RDONLY)
    assert proc.read_fd(fd, 59) == b"QSIZE:0          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     "
    # It is a real mq descriptor: the mq calls accept it (with its access mode).
    with expect_errno(EBADF):
        proc.mq_send(fd, b"", 0)
    proc.mq_send(qfd, b"hello", 4)
    assert proc.mq_receive(fd, MSGSIZE) == (b"hello", 4)
    assert proc.mq_getattr(fd) == MqAttr(0, MAXMSG, MSGSIZE, 0)


def test_open_as_file_write_sends(target: Target, proc: Proc) -> None:
    qfd = create(proc)
    m = mountpoint(target, proc)
    wr = proc.openat(os.path.join(m, "q"), O_WRONLY)
    proc.mq_timedsend(wr, MSG, 3, None)
    assert proc.mq_receive(qfd, MSGSIZE) == (MSG, 3)
    proc.mq_notify(wr, {"notify": 1})
    assert proc.pread(qfd, 100, 0) == status(0, 1, 0, proc.pid)


def test_unlink_as_file(target: Target, proc: Proc) -> None:
    create(proc)
    m = mountpoint(target, proc)
    proc.unlink_path(os.path.join(m, "q"))
    with expect_errno(ENOENT):
        proc.mq_unlink(NAME)
    with expect_errno(ENOENT):
        proc.unlink_path(os.path.join(m, "q"))


# -- Linux rules -------------------------------------------------------------------------------------------------


def test_mount_needs_cap_sys_admin(target: Target, proc: Proc) -> None:
    base = getattr(target, "scratch_dir", "/tmp")
    path = os.path.join(base, "mq")
    proc.mkdir(path, 0o755)
    proc.drop_cap(CAP_SYS_ADMIN)
    with expect_errno(EPERM):
        proc.mount("none", path, "mqueue", 0, b"")


def test_open_creat_creates_queue_with_defaults(target: Target, proc: Proc) -> None:
    m = mountpoint(target, proc)
    proc.umask(0o022)
    fd = proc.openat(os.path.join(m, "new"), O_RDWR | O_CREAT | O_EXCL, 0o666)
    assert proc.mq_getattr(fd) == MqAttr(0, MAXMSG, MSGSIZE, 0)
    assert proc.fstat(fd).mode == S_IFREG | 0o644
    qfd = proc.mq_open("/new", O_RDWR)
    proc.mq_send(fd, b"through the fs", 1)
    assert proc.mq_receive(qfd, MSGSIZE) == (b"through the fs", 1)


def test_open_creat_defaults_follow_sysctls(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/fs/mqueue/msg_default", b"4\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_default", b"256\n")
    m = mountpoint(target, proc)
    fd = proc.openat(os.path.join(m, "new"), O_RDWR | O_CREAT, 0o600)
    assert proc.mq_getattr(fd) == MqAttr(0, 4, 256, 0)


def test_getdents_lists_queues(target: Target, proc: Proc) -> None:
    for name in ("/alpha", "/beta", "/gamma"):
        create(proc, name)
    m = mountpoint(target, proc)
    d = proc.openat(m, O_RDONLY | O_DIRECTORY[target.arch])
    names = sorted(n for n, _, _ in proc.getdents(d))
    assert names == [".", "..", "alpha", "beta", "gamma"]


def test_statfs_magic(target: Target, proc: Proc) -> None:
    fd = create(proc)
    m = mountpoint(target, proc)
    assert proc.statfs(m).type == MQUEUE_MAGIC
    assert proc.fstatfs(fd).type == MQUEUE_MAGIC


def test_root_directory(target: Target, proc: Proc) -> None:
    m = mountpoint(target, proc)
    st = proc.stat_path(m)
    assert st.mode == S_IFDIR | 0o1777
    assert (st.uid, st.gid) == (0, 0)
    # 40 bytes plus 20 per queue.
    assert st.size == 40
    create(proc, "/a")
    create(proc, "/b")
    assert proc.stat_path(m).size == 80
    proc.mq_unlink("/a")
    assert proc.stat_path(m).size == 60


def test_queue_inode_through_mount(target: Target, proc: Proc) -> None:
    proc.umask(0)
    create(proc, mode=0o604)
    m = mountpoint(target, proc)
    st = proc.stat_path(os.path.join(m, "q"))
    assert st.mode == S_IFREG | 0o604
    assert st.size == 80
    assert st.nlink == 1
