"""mount/umount2 of tmpfs on the scratch directory, statfs/fstatfs, and mount namespaces.

Linux counterpart: fs/namespace.c (path_mount, do_new_mount, graft_tree, path_umount, do_umount,
copy_mnt_ns), fs/statfs.c, mm/shmem.c. gVisor counterpart: test/syscalls/linux/mount.cc, statfs.cc
(ideas only).
"""

from __future__ import annotations

import os

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EBUSY, EINVAL, ENODEV, ENOENT, ENOTDIR, EPERM
from mqsentry.abi.linux.file import O_CREAT, O_RDONLY, O_RDWR, S_IFDIR, TMPFS_MAGIC
from mqsentry.abi.linux.sched import CLONE_NEWNS
from mqsentry.testsuite.fs import scratch, statfs, touch
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target

MNT_DETACH = 2
ST_VALID = 0x20


def test_mount_tmpfs_statfs(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "mnt")
    touch(proc, os.path.join(d, "hidden"))
    proc.mount("none", d, "tmpfs", 0, b"mode=0750")
    st = statfs(proc, d)
    assert st["type"] == TMPFS_MAGIC and st["bsize"] == 4096 and st["namelen"] == 255
    assert st["flags"] & ST_VALID
    # The new filesystem is empty and has the requested root mode.
    assert proc.stat_path(d).mode == S_IFDIR | 0o750
    fd = proc.openat(d, O_RDONLY)
    assert sorted(n for n, _, _ in proc.getdents(fd)) == [".", ".."]
    assert proc.fstatfs(fd).type == TMPFS_MAGIC
    proc.close(fd)
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "hidden"))
    # Files made under the mount disappear with it.
    touch(proc, os.path.join(d, "inside"))
    proc.umount(d)
    proc.stat_path(os.path.join(d, "hidden"))
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "inside"))


def test_statfs_errors(target: Target, proc: Proc) -> None:
    with expect_errno(ENOENT):
        proc.statfs(os.path.join(target.scratch_dir, "missing"))
    with expect_errno(14):  # EFAULT
        proc.call("statfs", target.bad_addr, proc.alloc(120))
    with expect_errno(9):  # EBADF
        proc.fstatfs(999)


def test_mount_errors(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "merr")
    f = os.path.join(d, "file")
    touch(proc, f)
    with expect_errno(ENODEV):
        proc.mount("none", d, "nosuchfs")
    with expect_errno(ENOENT):
        proc.mount("none", os.path.join(d, "missing"), "tmpfs")
    with expect_errno(ENOTDIR):
        proc.mount("none", os.path.join(f, "x"), "tmpfs")
    with expect_errno(ENOTDIR):
        proc.mount("none", f, "tmpfs")
    with expect_errno(EINVAL):
        proc.mount("none", d, "tmpfs", 0, b"bogus_option=1")
    with expect_errno(EINVAL):
        proc.umount(d)  # not a mount point
    with expect_errno(EINVAL):
        proc.umount(d, 0x100)  # unknown flag
    with expect_errno(ENOENT):
        proc.umount(os.path.join(d, "missing"))


def test_mount_needs_cap_sys_admin(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "mperm")
    proc.mount("none", d, "tmpfs")
    alice = proc.__class__(target.spawn(uid=1000, gid=1000))
    # /tmp exists everywhere and is searchable: the lookup succeeds, then may_mount fails.
    with expect_errno(EPERM):
        alice.mount("none", "/tmp", "tmpfs")
    with expect_errno(EPERM):
        alice.umount("/tmp")
    # umount2 looks the path up before it checks the capability.
    with expect_errno(ENOENT):
        alice.umount("/no/such/path")
    proc.drop_cap(CAP_SYS_ADMIN)
    with expect_errno(EPERM):
        proc.umount(d)
    with expect_errno(EPERM):
        proc.mount("none", d, "tmpfs")


def test_umount_busy_and_detach(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "busy")
    proc.mount("none", d, "tmpfs")
    fd = proc.openat(os.path.join(d, "f"), O_CREAT | O_RDWR, 0o600)
    with expect_errno(EBUSY):
        proc.umount(d)
    proc.umount(d, MNT_DETACH)
    # The open file still works after a lazy unmount.
    assert proc.write_fd(fd, b"abc") == 3
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "f"))


def test_stacked_mounts(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "stack")
    proc.mount("none", d, "tmpfs")
    touch(proc, os.path.join(d, "lower"))
    proc.mount("none", d, "tmpfs")
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "lower"))
    proc.umount(d)
    proc.stat_path(os.path.join(d, "lower"))
    proc.umount(d)
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "lower"))


def test_rmdir_mountpoint_busy(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "mp")
    sub = os.path.join(d, "sub")
    proc.mkdir(sub)
    proc.mount("none", sub, "tmpfs")
    with expect_errno(EBUSY):
        proc.rmdir(sub)
    proc.umount(sub)
    proc.rmdir(sub)


def test_dotdot_leaves_mount(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "dd")
    sub = os.path.join(d, "sub")
    proc.mkdir(sub)
    touch(proc, os.path.join(d, "sibling"))
    proc.mount("none", sub, "tmpfs")
    proc.stat_path(os.path.join(sub, "..", "sibling"))
    assert proc.stat_path(os.path.join(sub, "..")).ino == proc.stat_path(d).ino


def test_unshare_newns_private_mounts(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "ns")
    other = proc.fork()
    proc.unshare(CLONE_NEWNS)
    proc.mount("none", d, "tmpfs")
    touch(proc, os.path.join(d, "x"))
    # The mount is invisible to the process that stayed in the old namespace.
    with expect_errno(ENOENT):
        other.stat_path(os.path.join(d, "x"))
    assert other.statfs(d).type != TMPFS_MAGIC or proc.statfs(d).type == TMPFS_MAGIC
    # A mount made in the old namespace after the copy does not appear in the new one.
    d2 = scratch(target, other, "ns2")
    other.mount("none", d2, "tmpfs", 0, b"mode=0711")
    assert other.stat_path(d2).mode & 0o777 == 0o711
    assert proc.stat_path(d2).mode & 0o777 != 0o711
    other.umount(d2)
