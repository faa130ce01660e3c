"""Paths on the scratch directory: open/creat flags, mkdir/unlink/rmdir errors, umask, read/write/lseek,
getdents64 and fchmod/fchown.

Linux counterpart: fs/namei.c (path_openat, do_mkdirat, do_rmdir, do_unlinkat, may_delete),
fs/open.c, fs/read_write.c, fs/readdir.c. gVisor counterpart: test/syscalls/linux/open.cc,
open_create.cc, mkdir.cc, unlink.cc, getdents.cc, read.cc, write.cc, lseek.cc (ideas only).
"""

from __future__ import annotations

import os

from mqsentry.abi.linux.errno import (
    EACCES,
    EBADF,
    EEXIST,
    EINVAL,
    EISDIR,
    ENAMETOOLONG,
    ENOENT,
    ENOTDIR,
    ENOTEMPTY,
    EPERM,
)
from mqsentry.abi.linux.file import (
    DT_DIR,
    DT_REG,
    F_GETFL,
    F_SETFL,
    O_APPEND,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    S_IFDIR,
    S_IFMT,
    S_IFREG,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)
from mqsentry.testsuite.fs import reg, scratch, touch
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target

AT_FDCWD = -100


def test_create_write_read_seek(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "rw")
    f = os.path.join(d, "file")
    fd = proc.openat(f, O_CREAT | O_RDWR, 0o600)
    assert proc.write_fd(fd, b"hello world") == 11
    assert proc.lseek(fd, 0, SEEK_CUR) == 11
    assert proc.lseek(fd, 0, SEEK_SET) == 0
    assert proc.read_fd(fd, 5) == b"hello"
    assert proc.read_fd(fd, 100) == b" world"
    assert proc.read_fd(fd, 100) == b""
    assert proc.pread(fd, 5, 6) == b"world"
    assert proc.lseek(fd, 0, SEEK_CUR) == 11  # pread leaves the position alone
    assert proc.lseek(fd, -5, SEEK_END) == 6
    with expect_errno(EINVAL):
        proc.lseek(fd, reg(-100), SEEK_SET)
    with expect_errno(EINVAL):
        proc.lseek(fd, 0, 17)
    assert proc.call("pwrite64", fd, proc.buf(b"W"), 1, 6) == 1
    assert proc.pread(fd, 11, 0) == b"hello World"
    with expect_errno(EINVAL):
        proc.call("pread64", fd, proc.alloc(8), 8, reg(-1))
    st = proc.fstat(fd)
    assert st.size == 11 and st.mode & S_IFMT == S_IFREG
    # F_GETFL keeps the access mode and O_LARGEFILE, drops O_CREAT.
    fl = proc.fcntl(fd, F_GETFL)
    assert fl & 0o3 == O_RDWR and not fl & O_CREAT


def test_access_mode_checks(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "acc")
    f = os.path.join(d, "file")
    touch(proc, f)
    ro = proc.openat(f, O_RDONLY)
    wo = proc.openat(f, O_WRONLY)
    with expect_errno(EBADF):
        proc.write_fd(ro, b"x")
    with expect_errno(EBADF):
        proc.read_fd(wo, 1)
    with expect_errno(EBADF):
        proc.pread(wo, 1, 0)
    with expect_errno(EBADF):
        proc.call("read", 999, proc.alloc(8), 8)
    # An unreadable buffer after the fd checks is EFAULT.
    assert proc.sys("read", ro, target.bad_addr, 8) in (0, -14)


def test_append_and_trunc(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "app")
    f = os.path.join(d, "file")
    fd = proc.openat(f, O_CREAT | O_WRONLY, 0o600)
    proc.write_fd(fd, b"abc")
    proc.close(fd)
    fd = proc.openat(f, O_WRONLY | O_APPEND)
    proc.write_fd(fd, b"def")
    proc.close(fd)
    fd = proc.openat(f, O_RDONLY)
    assert proc.read_fd(fd, 10) == b"abcdef"
    proc.close(fd)
    fd = proc.openat(f, O_WRONLY | O_TRUNC)
    assert proc.fstat(fd).size == 0


def test_open_errors(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "oerr")
    f = os.path.join(d, "file")
    touch(proc, f)
    with expect_errno(EEXIST):
        proc.openat(f, O_CREAT | O_EXCL | O_RDWR, 0o600)
    with expect_errno(ENOENT):
        proc.openat(os.path.join(d, "missing"), O_RDONLY)
    with expect_errno(ENOENT):
        proc.openat(os.path.join(d, "nodir", "x"), O_CREAT | O_RDWR, 0o600)
    with expect_errno(ENOTDIR):
        proc.openat(os.path.join(f, "x"), O_RDONLY)
    with expect_errno(ENOTDIR):
        proc.openat(f, O_RDONLY | O_DIRECTORY)
    with expect_errno(EINVAL):
        proc.openat(os.path.join(d, "new"), O_CREAT | O_DIRECTORY | O_RDWR, 0o600)
    with expect_errno(EISDIR):
        proc.openat(d, O_RDWR)
    with expect_errno(EISDIR):
        proc.openat(d, O_CREAT | O_RDONLY, 0o600)
    with expect_errno(EISDIR):
        proc.openat(os.path.join(d, "new") + "/", O_CREAT | O_RDWR, 0o600)
    with expect_errno(ENOENT):
        proc.openat("", O_RDONLY)
    with expect_errno(ENAMETOOLONG):
        proc.openat(os.path.join(d, "n" * 256), O_CREAT | O_RDWR, 0o600)
    with expect_errno(ENAMETOOLONG):
        proc.openat("/" + "a" * 5000, O_RDONLY)
    with expect_errno(14):  # EFAULT
        proc.call("openat", reg(AT_FDCWD), target.bad_addr, O_RDONLY, 0)
    # A relative path against a bad dirfd or a non-directory fd.
    fd = proc.openat(f, O_RDONLY)
    with expect_errno(ENOTDIR):
        proc.openat("x", O_RDONLY, dirfd=fd)
    with expect_errno(EBADF):
        proc.openat("x", O_RDONLY, dirfd=900)
    # An absolute path ignores dirfd entirely.
    proc.close(proc.openat(f, O_RDONLY, dirfd=900))


def test_dirfd_relative(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "rel")
    dfd = proc.openat(d, O_RDONLY | O_DIRECTORY)
    fd = proc.openat("f", O_CREAT | O_RDWR, 0o600, dirfd=dfd)
    proc.write_fd(fd, b"x")
    assert proc.stat_path(os.path.join(d, "f")).size == 1
    proc.call("mkdirat", dfd, proc.cstr("sub"), 0o755)
    proc.call("unlinkat", dfd, proc.cstr("f"), 0)
    proc.call("unlinkat", dfd, proc.cstr("sub/../sub"), 0x200)
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(d, "f"))
    # ".." from the directory reaches its parent.
    assert proc.stat_path(os.path.join(d, "..")).ino == proc.stat_path(target.scratch_dir).ino


def test_umask(target: Target, proc: Proc) -> None:
    old = proc.umask(0o027)
    assert proc.umask(0o7777) == 0o027
    assert proc.umask(old) == 0o777  # only the permission bits are kept
    proc.umask(0o077)
    d = scratch(target, proc, "um")
    fd = proc.openat(os.path.join(d, "f"), O_CREAT | O_RDWR, 0o666)
    assert proc.fstat(fd).mode & 0o7777 == 0o600
    proc.mkdir(os.path.join(d, "sub"), 0o777)
    assert proc.stat_path(os.path.join(d, "sub")).mode == S_IFDIR | 0o700
    # fork copies the umask, threads share it.
    child = proc.fork()
    th = proc.thread()
    proc.umask(0o022)
    assert child.umask(0) == 0o077
    assert th.umask(0o022) == 0o022


def test_mkdir_rmdir_unlink_errors(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "mk")
    sub = os.path.join(d, "sub")
    f = os.path.join(d, "file")
    proc.mkdir(sub)
    touch(proc, f)
    touch(proc, os.path.join(sub, "inner"))
    with expect_errno(EEXIST):
        proc.mkdir(sub)
    with expect_errno(EEXIST):
        proc.mkdir(f)
    with expect_errno(EEXIST):
        proc.mkdir(os.path.join(d, "."))
    with expect_errno(ENOENT):
        proc.mkdir(os.path.join(d, "no", "x"))
    with expect_errno(ENOTEMPTY):
        proc.rmdir(sub)
    with expect_errno(ENOTDIR):
        proc.rmdir(f)
    with expect_errno(EINVAL):
        proc.rmdir(os.path.join(sub, "."))
    with expect_errno(ENOTEMPTY):
        proc.rmdir(os.path.join(sub, ".."))
    with expect_errno(EISDIR):
        proc.unlink_path(sub)
    with expect_errno(ENOTDIR):
        proc.unlink_path(f + "/")
    with expect_errno(ENOENT):
        proc.unlink_path(os.path.join(d, "missing"))
    with expect_errno(EINVAL):
        proc.call("unlinkat", reg(AT_FDCWD), proc.cstr(f), 0x400)
    proc.unlink_path(os.path.join(sub, "inner"))
    proc.rmdir(sub + "/")
    proc.unlink_path(f)
    with expect_errno(ENOENT):
        proc.stat_path(sub)


def test_sticky_and_permissions(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "sticky", 0o1777)
    # The scratch dir itself must be searchable by the unprivileged users.
    top = proc.openat(target.scratch_dir, O_RDONLY)
    proc.fchmod(top, 0o755)
    f = os.path.join(d, "owned")
    touch(proc, f)
    alice = proc.__class__(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        alice.unlink_path(f)
    touch(alice, os.path.join(d, "mine"))
    alice.unlink_path(os.path.join(d, "mine"))
    with expect_errno(EACCES):
        alice.openat(f, O_WRONLY)
    # A 0755 root-owned directory: no creating or removing inside it.
    closed = scratch(target, proc, "closed", 0o755)
    touch(proc, os.path.join(closed, "x"))
    with expect_errno(EACCES):
        alice.openat(os.path.join(closed, "y"), O_CREAT | O_RDWR, 0o600)
    with expect_errno(EACCES):
        alice.mkdir(os.path.join(closed, "y"))
    with expect_errno(EACCES):
        alice.unlink_path(os.path.join(closed, "x"))
    # EEXIST is reported before the permission check.
    with expect_errno(EEXIST):
        alice.mkdir(os.path.join(closed, "x"))
    # Search permission is needed to walk through a directory.
    private = scratch(target, proc, "private", 0o700)
    touch(proc, os.path.join(private, "x"))
    with expect_errno(EACCES):
        alice.stat_path(os.path.join(private, "x"))


def test_getdents64(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "dents")
    touch(proc, os.path.join(d, "a"))
    touch(proc, os.path.join(d, "b"))
    proc.mkdir(os.path.join(d, "c"))
    fd = proc.openat(d, O_RDONLY | O_DIRECTORY)
    ents = proc.getdents(fd)
    names = sorted(n for n, _, _ in ents)
    assert names == [".", "..", "a", "b", "c"]
    types = {n: t for n, _, t in ents}
    assert types["a"] == DT_REG and types["c"] == DT_DIR and types["."] == DT_DIR
    inos = {n: i for n, i, _ in ents}
    assert inos["."] == proc.stat_path(d).ino
    assert inos["a"] == proc.stat_path(os.path.join(d, "a")).ino
    # At the end, getdents64 returns 0; a rewind lists again.
    assert proc.call("getdents64", fd, proc.alloc(4096), 4096) == 0
    proc.lseek(fd, 0, SEEK_SET)
    assert len(proc.getdents(fd)) == 5
    # Small buffers: one entry at a time still works; too small for any entry is EINVAL.
    proc.lseek(fd, 0, SEEK_SET)
    assert len(proc.getdents(fd, 24)) == 5
    proc.lseek(fd, 0, SEEK_SET)
    with expect_errno(EINVAL):
        proc.call("getdents64", fd, proc.alloc(16), 16)
    f = proc.openat(os.path.join(d, "a"), O_RDONLY)
    with expect_errno(ENOTDIR):
        proc.call("getdents64", f, proc.alloc(4096), 4096)
    with expect_errno(EBADF):
        proc.call("getdents64", 999, proc.alloc(4096), 4096)


def test_directory_fd_io(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "dio")
    fd = proc.openat(d, O_RDONLY | O_DIRECTORY)
    with expect_errno(EISDIR):
        proc.read_fd(fd, 8)
    with expect_errno(EBADF):
        proc.write_fd(fd, b"x")
    with expect_errno(EISDIR):
        proc.pread(fd, 8, 0)
    assert proc.fstat(fd).mode & S_IFMT == S_IFDIR


def test_lseek_noop_on_epoll(proc: Proc) -> None:
    ep = proc.call("epoll_create1", 0)
    # eventpoll's llseek is noop_llseek: the position never moves.
    assert proc.lseek(ep, 100, SEEK_SET) == 0
    assert proc.lseek(ep, 5, SEEK_END) == 0
    with expect_errno(EINVAL):
        proc.lseek(ep, 0, 5)
    with expect_errno(EBADF):
        proc.lseek(999, 0, SEEK_SET)


def test_fchmod_fchown(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "attr")
    top = proc.openat(target.scratch_dir, O_RDONLY)
    proc.fchmod(top, 0o755)
    f = os.path.join(d, "file")
    touch(proc, f)
    fd = proc.openat(f, O_RDONLY)
    proc.fchmod(fd, 0o4640)
    assert proc.fstat(fd).mode == S_IFREG | 0o4640
    proc.call("fchown", fd, 1000, 1000)
    st = proc.fstat(fd)
    assert (st.uid, st.gid) == (1000, 1000)
    assert st.mode & 0o7777 == 0o640  # chown clears set-user-ID
    proc.call("fchown", fd, reg(-1), 0)
    st = proc.fstat(fd)
    assert (st.uid, st.gid) == (1000, 0)
    alice = proc.__class__(target.spawn(uid=1000, gid=1000))
    afd = alice.openat(f, O_RDONLY)
    alice.fchmod(afd, 0o600)  # the owner may chmod
    with expect_errno(EPERM):
        alice.call("fchown", afd, 0, reg(-1))
    bob = proc.__class__(target.spawn(uid=1001, gid=1001))
    proc.fchmod(fd, 0o644)
    bfd = bob.openat(f, O_RDONLY)
    with expect_errno(EPERM):
        bob.fchmod(bfd, 0o777)
    with expect_errno(EBADF):
        proc.fchmod(999, 0o600)


def test_o_path_descriptor(target: Target, proc: Proc) -> None:
    d = scratch(target, proc, "opath")
    f = os.path.join(d, "f")
    touch(proc, f)
    fd = proc.openat(f, O_PATH | O_RDWR)
    # Only the location: no I/O, no epoll, POLLNVAL in poll; fstat, dup and F_GETFL work.
    with expect_errno(EBADF):
        proc.read_fd(fd, 1)
    with expect_errno(EBADF):
        proc.write_fd(fd, b"x")
    with expect_errno(EBADF):
        proc.fcntl(fd, F_SETFL, 0)
    assert proc.fcntl(fd, F_GETFL) & O_PATH
    assert proc.fstat(fd).mode & S_IFMT == S_IFREG
    ep = proc.call("epoll_create1", 0)
    with expect_errno(EBADF):
        proc.epoll_ctl(ep, 1, fd, 1)
    assert proc.poll([(fd, 1)], 0) == [0x20]
    proc.close(proc.dup(fd))
    # A directory opened with O_PATH still works as a dirfd.
    dfd = proc.openat(d, O_PATH | O_DIRECTORY)
    proc.close(proc.openat("f", O_RDONLY, dirfd=dfd))
