"""File, path, mount, rlimit, poll and epoll syscalls.

Linux counterpart: fs/open.c (``close``, ``openat``, ``fchmod``, ``fchown``, ``umask`` in
kernel/sys.c), fs/file.c (``dup``, ``dup2``, ``dup3``), fs/fcntl.c, fs/read_write.c (``read``,
``write``, ``pread64``, ``pwrite64``, ``lseek``), fs/stat.c, fs/statfs.c, fs/readdir.c
(``getdents64``), fs/namei.c (``mkdirat``, ``unlinkat``, ``rmdir``), fs/namespace.c (``mount``,
``umount``), kernel/sys.c (``prlimit64``, ``getrlimit``, ``setrlimit``, ``do_prlimit``), fs/select.c
(``poll``, ``ppoll``) and fs/eventpoll.c (``epoll_create1``, ``epoll_ctl``, ``epoll_wait``,
``epoll_pwait``). gVisor counterpart: pkg/sentry/syscalls/linux/{sys_file,sys_read_write,sys_stat,
sys_mount,sys_rlimit,sys_poll,sys_epoll}.go.

Handlers convert raw registers to the C parameter types, copy user memory and keep Linux's order of
checks; the work is done in :mod:`mqsentry.fs.vfs`.
"""

from __future__ import annotations

import struct

from mqsentry.abi.linux.capability import CAP_FOWNER, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import (
    EBADF,
    EBUSY,
    EFAULT,
    EINTR,
    EINVAL,
    ENOENT,
    EOVERFLOW,
    EPERM,
    ERESTART_RESTARTBLOCK,
    ERESTARTNOHAND,
    ESPIPE,
    ESRCH,
)
from mqsentry.abi.linux.file import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_NO_AUTOMOUNT,
    AT_REMOVEDIR,
    AT_STATX_SYNC_TYPE,
    AT_SYMLINK_NOFOLLOW,
    DIRENT64_HDR,
    EPOLL_CLOEXEC,
    EPOLL_CTL_DEL,
    EPOLL_EVENT,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_CLOEXEC,
    O_CREAT,
    O_EXCL,
    O_NOATIME,
    O_NOCTTY,
    O_TRUNC,
    O_WRONLY,
    PATH_MAX,
    POLLFD,
    SEEK_HOLE,
    STAT,
    STATFS,
    dirent64_reclen,
    o_flags,
)
from mqsentry.abi.linux.limits import NR_OPEN, RLIM_NLIMITS, RLIMIT64, RLIMIT_NOFILE
from mqsentry.abi.linux.signal import SIGSET_SIZE, UNBLOCKABLE
from mqsentry.abi.linux.time import NSEC_PER_SEC, TIMESPEC, timespec_valid
from mqsentry.fs.vfs import vfsops
from mqsentry.fs.vfs.context import fd_table, fs_context
from mqsentry.fs.vfs.epoll import EpollInstance, do_poll
from mqsentry.fs.vfs.epoll import epoll_wait as ep_poll
from mqsentry.fs.vfs.file import FileDescription
from mqsentry.fs.vfs.inode import Stat, StatFS
from mqsentry.fs.vfs.namei import getname, resolve
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.memory import TASK_SIZE
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, int64, mode_t, uint32, uint64
from mqsentry.syscalls.linux.table import Syscall

#: MAX_RW_COUNT: INT_MAX rounded down to a page.
MAX_RW_COUNT = 0x7FFF_F000
_MAX_OFF = 0x7FFF_FFFF_FFFF_FFFF


def _access_ok(addr: int, size: int) -> bool:
    return size <= TASK_SIZE and addr <= TASK_SIZE - size


def _fd(t: Task, fd: int) -> FileDescription:
    """``fdget``: the description; O_PATH descriptors count as not open for I/O (EBADF)."""
    desc = fd_table(t).get(fd)
    if desc.is_path:
        raise SysError(EBADF)
    return desc


# -- fd table ----------------------------------------------------------------------------------------------------
def close(t: Task, fd: int, *_: int) -> int:
    fd_table(t).close(t, uint32(fd))
    return 0


def dup(t: Task, fildes: int, *_: int) -> int:
    table = fd_table(t)
    desc = table.get(uint32(fildes))
    return table.install(t, desc, False)


def _dup3(t: Task, oldfd: int, newfd: int, cloexec: bool) -> int:
    """``do_dup2`` after the argument checks."""
    table = fd_table(t)
    if newfd >= t.tg.rlimits[RLIMIT_NOFILE][0]:
        raise SysError(EBADF)
    desc = table.get(oldfd)
    with table.mu:
        ent = table._fds.get(newfd)
        if ent is not None and ent[0] is None:
            raise SysError(EBUSY)  # another thread is between reserve and fill
    old = table.install_at(newfd, desc, cloexec)
    if old is not None:
        try:
            old.flush(t)
        finally:
            old.decref()
    return newfd


def dup2(t: Task, oldfd: int, newfd: int, *_: int) -> int:
    oldfd, newfd = uint32(oldfd), uint32(newfd)
    if oldfd == newfd:
        fd_table(t).get(oldfd)
        return newfd
    return _dup3(t, oldfd, newfd, False)


def dup3(t: Task, oldfd: int, newfd: int, flags: int, *_: int) -> int:
    oldfd, newfd, flags = uint32(oldfd), uint32(newfd), int32(flags)
    if flags & ~O_CLOEXEC:
        raise SysError(EINVAL)
    if oldfd == newfd:
        raise SysError(EINVAL)
    return _dup3(t, oldfd, newfd, bool(flags & O_CLOEXEC))


def fcntl(t: Task, fd: int, cmd: int, arg: int, *_: int) -> int:
    fd, cmd = uint32(fd), uint32(cmd)
    table = fd_table(t)
    desc = table.get(fd)  # fdget_raw, then check_fcntl_cmd for O_PATH descriptors
    if desc.is_path and cmd not in (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL):
        raise SysError(EBADF)
    argi = int32(arg)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        start = argi & 0xFFFF_FFFF  # f_dupfd takes an unsigned int
        if start >= t.tg.rlimits[RLIMIT_NOFILE][0]:
            raise SysError(EINVAL)
        return table.install(t, desc, cmd == F_DUPFD_CLOEXEC, start)
    if cmd == F_GETFD:
        return table.get_flags(fd)
    if cmd == F_SETFD:
        table.set_flags(fd, argi & FD_CLOEXEC)
        return 0
    if cmd == F_GETFL:
        with desc.mu:
            return desc.flags & 0xFFFF_FFFF  # f_flags is an unsigned int
    if cmd == F_SETFL:
        of = o_flags(t.kernel.arch)
        if argi & O_NOATIME and not desc.flags & O_NOATIME:
            inode = desc.inode
            if inode is None or (t.creds.fsuid != inode.uid and not t.creds.has_cap(CAP_FOWNER)):
                raise SysError(EPERM)
        with desc.mu:
            desc.flags = (argi & of.SETFL_MASK) | (desc.flags & ~of.SETFL_MASK)
        return 0
    raise SysError(EINVAL)


# -- read / write / seek ---------------------------------------------------------------------------------------------
#: Bytes of guest memory a write copies in at a time: a hostile count never turns into one huge
#: request to the memory adapter (Linux copies page by page too).
_WRITE_CHUNK = 64 * 1024


def _rw_checks(t: Task, fd: int, buf: int, count: int, pos: int | None,
               write: bool) -> tuple[FileDescription, int]:
    """The checks ``vfs_read``/``vfs_write`` (and ``ksys_pread64``/``ksys_pwrite64``) make before
    any I/O, in Linux's order: FMODE_READ/WRITE (EBADF), FMODE_CAN_READ/WRITE, i.e. the file has the
    op (EINVAL, before the buffer is touched), access_ok (EFAULT), a positioned call on a stream
    (ESPIPE); the count is clamped to MAX_RW_COUNT. Returns the description and the count."""
    desc = _fd(t, fd)
    if not (desc.writable() if write else desc.readable()):
        raise SysError(EBADF)
    has_op = (type(desc).write is not FileDescription.write) if write else (type(desc).read is not FileDescription.read)
    if not has_op:
        raise SysError(EINVAL)
    if not _access_ok(buf, count):
        raise SysError(EFAULT)
    if pos is not None and getattr(desc, "stream", False):
        raise SysError(ESPIPE)
    return desc, min(count, MAX_RW_COUNT)


def _do_read(t: Task, fd: int, buf: int, count: int, pos: int | None) -> int:
    desc, count = _rw_checks(t, fd, buf, count, pos, write=False)
    data = desc.read(t, count, pos)
    t.copy_out(buf, data)
    return len(data)


def _do_write(t: Task, fd: int, buf: int, count: int, pos: int | None) -> int:
    desc, count = _rw_checks(t, fd, buf, count, pos, write=True)
    if count <= _WRITE_CHUNK:
        return desc.write(t, t.copy_in(buf, count), pos)
    # Large writes go chunk by chunk; a fault or a full filesystem after some progress is a short
    # write, as in generic_perform_write.
    done = 0
    while done < count:
        n = min(_WRITE_CHUNK, count - done)
        try:
            wrote = desc.write(t, t.copy_in(buf + done, n), None if pos is None else pos + done)
        except SysError:
            if done:
                break
            raise
        done += wrote
        if wrote < n:
            break
    return done


def read(t: Task, fd: int, buf: int, count: int, *_: int) -> int:
    return _do_read(t, uint32(fd), uint64(buf), uint64(count), None)


def write(t: Task, fd: int, buf: int, count: int, *_: int) -> int:
    return _do_write(t, uint32(fd), uint64(buf), uint64(count), None)


def pread64(t: Task, fd: int, buf: int, count: int, pos: int, *_: int) -> int:
    p = int64(pos)
    if p < 0:
        raise SysError(EINVAL)
    return _do_read(t, uint32(fd), uint64(buf), uint64(count), p)


def pwrite64(t: Task, fd: int, buf: int, count: int, pos: int, *_: int) -> int:
    p = int64(pos)
    if p < 0:
        raise SysError(EINVAL)
    return _do_write(t, uint32(fd), uint64(buf), uint64(count), p)


def lseek(t: Task, fd: int, offset: int, whence: int, *_: int) -> int:
    desc = _fd(t, uint32(fd))
    w = uint32(whence)
    if w > SEEK_HOLE:
        raise SysError(EINVAL)
    res = desc.seek(t, int64(offset), w)
    if res > _MAX_OFF:
        raise SysError(EOVERFLOW)
    return res


# -- stat --------------------------------------------------------------------------------------------------------------
def _pack_stat(t: Task, st: Stat) -> bytes:
    lay = STAT[t.kernel.arch]
    a, m, c = st.atime_ns, st.mtime_ns, st.ctime_ns
    return lay.pack(st.dev, st.ino, st.nlink, st.mode, st.uid, st.gid, st.rdev, st.size, st.blksize, st.blocks,
                    a // NSEC_PER_SEC, a % NSEC_PER_SEC, m // NSEC_PER_SEC, m % NSEC_PER_SEC,
                    c // NSEC_PER_SEC, c % NSEC_PER_SEC) if t.kernel.arch == "amd64" else \
        lay.pack(st.dev, st.ino, st.mode, st.nlink, st.uid, st.gid, st.rdev, st.size, st.blksize, st.blocks,
                 a // NSEC_PER_SEC, a % NSEC_PER_SEC, m // NSEC_PER_SEC, m % NSEC_PER_SEC,
                 c // NSEC_PER_SEC, c % NSEC_PER_SEC)


def _fd_stat(t: Task, fd: int) -> Stat:
    desc = fd_table(t).get(fd)  # fstat works on O_PATH descriptors
    if desc.is_path:
        assert desc.inode is not None
        return desc.inode.stat()
    return desc.stat(t)


def fstat(t: Task, fd: int, statbuf: int, *_: int) -> int:
    st = _fd_stat(t, uint32(fd))
    t.copy_out(uint64(statbuf), _pack_stat(t, st))
    return 0


_STAT_FLAGS = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE


def newfstatat(t: Task, dirfd: int, pathname: int, statbuf: int, flag: int, *_: int) -> int:
    """``vfs_fstatat``: an empty path with AT_EMPTY_PATH is fstat(dirfd) (or the cwd for AT_FDCWD)."""
    dfd, flags = int32(dirfd), int32(flag)
    empty_ok = bool(flags & AT_EMPTY_PATH)
    name = getname(t, uint64(pathname), allow_empty=empty_ok) if pathname or not empty_ok else ""
    if name == "" and dfd >= 0:
        st = _fd_stat(t, dfd)
    else:
        if flags & ~_STAT_FLAGS:
            raise SysError(EINVAL)
        if name == "":
            st = fs_context(t).cwd.inode.stat() if dfd == AT_FDCWD else _fd_stat(t, dfd)
        else:
            st = vfsops.stat_at(t, dfd, name)
    t.copy_out(uint64(statbuf), _pack_stat(t, st))
    return 0


def stat(t: Task, filename: int, statbuf: int, *_: int) -> int:
    st = vfsops.stat_at(t, AT_FDCWD, getname(t, uint64(filename)))
    t.copy_out(uint64(statbuf), _pack_stat(t, st))
    return 0


def _pack_statfs(st: StatFS, dev: int) -> bytes:
    # f_fsid: the device number split into two ints (huge_encode_dev).
    return STATFS.pack(st.type, st.bsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree,
                       dev & 0xFFFF_FFFF, dev >> 32, st.namelen, st.frsize, st.flags, 0, 0, 0, 0)


def statfs(t: Task, pathname: int, buf: int, *_: int) -> int:
    p = resolve(t, AT_FDCWD, getname(t, uint64(pathname)))
    st = vfsops.statfs_path(t, p)
    t.copy_out(uint64(buf), _pack_statfs(st, p.inode.fs.dev))
    return 0


def fstatfs(t: Task, fd: int, buf: int, *_: int) -> int:
    desc = fd_table(t).get(uint32(fd))
    if desc.path is not None:
        st = vfsops.statfs_path(t, desc.path)
        dev = desc.path.inode.fs.dev
    else:
        st = desc.statfs(t)
        st.flags = vfsops.statfs_flags(None)
        dev = desc.inode.fs.dev if desc.inode is not None else 0
    t.copy_out(uint64(buf), _pack_statfs(st, dev))
    return 0


# -- open / create / remove --------------------------------------------------------------------------------------------
def _open(t: Task, dirfd: int, pathname: int, flags: int, mode: int) -> int:
    """``do_sys_openat2``: name, flags, fd reservation (EMFILE), then the open itself."""
    name = getname(t, pathname)
    flags, mode, acc = vfsops.build_open_flags(t, flags, mode)
    table = fd_table(t)
    fd = table.reserve(t, bool(flags & O_CLOEXEC))
    try:
        desc = vfsops.open_at(t, dirfd, name, flags, mode, acc)
    except BaseException:
        table.unreserve(fd)
        raise
    with desc.mu:
        desc.flags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)
    table.fill(fd, desc)
    desc.decref()
    return fd


def openat(t: Task, dirfd: int, pathname: int, flags: int, mode: int, *_: int) -> int:
    return _open(t, int32(dirfd), uint64(pathname), int32(flags) & 0xFFFF_FFFF, mode_t(mode))


def open_(t: Task, pathname: int, flags: int, mode: int, *_: int) -> int:
    return _open(t, AT_FDCWD, uint64(pathname), int32(flags) & 0xFFFF_FFFF, mode_t(mode))


def creat(t: Task, pathname: int, mode: int, *_: int) -> int:
    return _open(t, AT_FDCWD, uint64(pathname), O_CREAT | O_WRONLY | O_TRUNC, mode_t(mode))


def unlinkat(t: Task, dirfd: int, pathname: int, flag: int, *_: int) -> int:
    flags = int32(flag)
    if flags & ~AT_REMOVEDIR:
        raise SysError(EINVAL)
    name = getname(t, uint64(pathname))
    if flags & AT_REMOVEDIR:
        vfsops.rmdir_at(t, int32(dirfd), name)
    else:
        vfsops.unlink_at(t, int32(dirfd), name)
    return 0


def unlink(t: Task, pathname: int, *_: int) -> int:
    vfsops.unlink_at(t, AT_FDCWD, getname(t, uint64(pathname)))
    return 0


def rmdir(t: Task, pathname: int, *_: int) -> int:
    vfsops.rmdir_at(t, AT_FDCWD, getname(t, uint64(pathname)))
    return 0


def mkdirat(t: Task, dirfd: int, pathname: int, mode: int, *_: int) -> int:
    vfsops.mkdir_at(t, int32(dirfd), getname(t, uint64(pathname)), mode_t(mode))
    return 0


def mkdir(t: Task, pathname: int, mode: int, *_: int) -> int:
    vfsops.mkdir_at(t, AT_FDCWD, getname(t, uint64(pathname)), mode_t(mode))
    return 0


def getdents64(t: Task, fd: int, dirent: int, count: int, *_: int) -> int:
    desc = _fd(t, uint32(fd))
    cnt = uint32(count)
    addr = uint64(dirent)
    entries = desc.iterate_dir(t)  # ENOTDIR for non-directories
    if desc.inode is not None and desc.inode.is_dir() and desc.inode.nlink == 0:
        raise SysError(ENOENT)  # IS_DEADDIR
    out = bytearray()
    with desc.mu:
        pos = desc.pos
        i = pos
        while i < len(entries):
            name, ino, dtype = entries[i]
            raw = name.encode("utf-8", "surrogateescape")
            reclen = dirent64_reclen(len(raw))
            if len(out) + reclen > cnt:
                break
            rec = DIRENT64_HDR.pack(ino, i + 1, reclen, dtype) + raw
            out += rec + bytes(reclen - len(rec))
            i += 1
        if not out and i < len(entries):
            raise SysError(EINVAL)  # buffer too small for one entry
        t.copy_out(addr, bytes(out))
        desc.pos = i
    return len(out)


# -- attributes --------------------------------------------------------------------------------------------------------
def fchmod(t: Task, fd: int, mode: int, *_: int) -> int:
    desc = _fd(t, uint32(fd))
    m = mode_t(mode)
    if desc.inode is None:
        if not t.creds.has_cap(CAP_FOWNER):
            raise SysError(EPERM)
        return 0
    if desc.path is not None:
        vfsops._want_write(desc.path)
    desc.inode.setattr(t, mode=m & 0o7777)
    return 0


def fchown(t: Task, fd: int, user: int, group: int, *_: int) -> int:
    desc = _fd(t, uint32(fd))
    uid, gid = uint32(user), uint32(group)
    if desc.inode is None:
        return 0 if t.creds.has_cap(CAP_FOWNER) else _raise(EPERM)
    if desc.path is not None:
        vfsops._want_write(desc.path)
    desc.inode.setattr(t, uid=uid, gid=gid)
    return 0


def _raise(errno: int) -> int:
    raise SysError(errno)


def umask(t: Task, mask: int, *_: int) -> int:
    ctx = fs_context(t)
    with ctx.mu:
        old = ctx.umask
        ctx.umask = int32(mask) & 0o777
    return old


# -- mount -------------------------------------------------------------------------------------------------------------
def _mount_string(t: Task, addr: int) -> str | None:
    """``copy_mount_string``: NULL stays NULL; no NUL within PATH_MAX is EINVAL (strndup_user)."""
    if addr == 0:
        return None
    raw = t.copy_in_string(addr, PATH_MAX)
    if raw is None:
        raise SysError(EINVAL)
    return raw.decode("utf-8", "surrogateescape")


def _mount_options(t: Task, addr: int) -> bytes:
    """``copy_mount_options``: up to a page, stopping quietly at the first unreadable byte."""
    if addr == 0:
        return b""
    out = b""
    first = 4096 - (addr & 4095)
    try:
        out = t.copy_in(addr, first)
    except SysError:
        raise SysError(EFAULT) from None
    if first < 4096:
        try:
            out += t.copy_in(addr + first, 4096 - first)
        except SysError:
            pass
    return out


def mount(t: Task, dev_name: int, dir_name: int, type_: int, flags: int, data: int, *_: int) -> int:
    fstype = _mount_string(t, uint64(type_))
    source = _mount_string(t, uint64(dev_name))
    options = _mount_options(t, uint64(data))
    target = getname(t, uint64(dir_name))
    vfsops.do_mount(t, source, target, fstype, uint64(flags), options)
    return 0


def umount2(t: Task, name: int, flags: int, *_: int) -> int:
    f = int32(flags)
    if f & ~vfsops.UMOUNT_FLAGS:
        raise SysError(EINVAL)
    vfsops.do_umount(t, getname(t, uint64(name)), f)
    return 0


# -- resource limits ---------------------------------------------------------------------------------------------------
def _do_prlimit(t: Task, target: Task, resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """``do_prlimit``: EINVAL for a bad resource or soft > hard, EPERM above nr_open or for raising
    the hard limit without CAP_SYS_RESOURCE. Returns the old limit."""
    if resource >= RLIM_NLIMITS:
        raise SysError(EINVAL)
    if new is not None:
        cur, mx = new
        if cur > mx:
            raise SysError(EINVAL)
        if resource == RLIMIT_NOFILE and mx > NR_OPEN:
            raise SysError(EPERM)
    tg = target.tg
    with tg.rlimit_mu:
        old = tg.rlimits[resource]
        if new is not None:
            if new[1] > old[1] and not t.creds.has_cap(CAP_SYS_RESOURCE):
                raise SysError(EPERM)
            tg.rlimits[resource] = new
    return old


def prlimit64(t: Task, pid: int, resource: int, new_rlim: int, old_rlim: int, *_: int) -> int:
    p, res = int32(pid), uint32(resource)
    new = None
    if uint64(new_rlim):
        new = RLIMIT64.unpack(t.copy_in(uint64(new_rlim), RLIMIT64.size))
    if p == 0:
        target = t
    else:
        found = t.kernel.find_task(p) if p > 0 else None
        if found is None:
            raise SysError(ESRCH)
        target = found
    if target is not t:
        c, tc = t.creds, target.creds
        same = (c.ruid == tc.euid == tc.suid == tc.ruid) and (c.rgid == tc.egid == tc.sgid == tc.rgid)
        if not same and not c.has_cap(CAP_SYS_RESOURCE):
            raise SysError(EPERM)
    old = _do_prlimit(t, target, res, new)
    if uint64(old_rlim):
        t.copy_out(uint64(old_rlim), RLIMIT64.pack(*old))
    return 0


def getrlimit(t: Task, resource: int, rlim: int, *_: int) -> int:
    res = uint32(resource)
    if res >= RLIM_NLIMITS:
        raise SysError(EINVAL)
    with t.tg.rlimit_mu:
        cur = t.tg.rlimits[res]
    t.copy_out(uint64(rlim), RLIMIT64.pack(*cur))
    return 0


def setrlimit(t: Task, resource: int, rlim: int, *_: int) -> int:
    new = RLIMIT64.unpack(t.copy_in(uint64(rlim), RLIMIT64.size))
    _do_prlimit(t, t, uint32(resource), new)
    return 0


# -- poll --------------------------------------------------------------------------------------------------------------
def _poll_common(t: Task, ufds: int, nfds: int, deadline: int | None, zero: bool) -> int:
    """``do_sys_poll``."""
    if nfds > t.tg.rlimits[RLIMIT_NOFILE][0]:
        raise SysError(EINVAL)
    raw = t.copy_in(ufds, nfds * POLLFD.size)
    fds = [(fd, ev & 0xFFFF) for fd, ev, _ in POLLFD.codec.iter_unpack(raw)] if nfds else []
    revents = do_poll(t, fd_table(t), fds, deadline, zero)
    out = bytearray(raw)
    count = 0
    for i, r in enumerate(revents):
        struct.pack_into("<H", out, i * 8 + 6, r)
        if r:
            count += 1
    t.copy_out(ufds, bytes(out))
    return count


def poll(t: Task, ufds: int, nfds: int, timeout_msecs: int, *_: int) -> int:
    n, ms = uint32(nfds), int32(timeout_msecs)
    deadline = None
    zero = ms == 0
    if ms > 0:
        deadline = t.kernel.clock.now_ns() + ms * 1_000_000
    try:
        return _poll_common(t, uint64(ufds), n, deadline, zero)
    except SysError as e:
        if e.errno == ERESTARTNOHAND:
            # Linux restarts poll through restart_block (do_restart_poll): EINTR after a handler,
            # a transparent restart otherwise. The sentry restarts with the original timeout.
            raise SysError(ERESTART_RESTARTBLOCK) from None
        raise


class _SigmaskSwap:
    """``set_user_sigmask`` / ``restore_saved_sigmask_unless``: install the syscall's temporary
    mask; if the syscall is interrupted the old mask is restored only after signal delivery (the
    handler runs under the temporary mask), through ``Task.saved_sig_mask``."""

    __slots__ = ("t", "old")

    def __init__(self, t: Task, sigmask: int, sigsetsize: int) -> None:
        self.t = t
        self.old: int | None = None
        if sigmask:
            if sigsetsize != SIGSET_SIZE:
                raise SysError(EINVAL)
            (mask,) = struct.unpack("<Q", t.copy_in(sigmask, 8))
            self.old = t.sig_mask
            t.set_sig_mask(mask & ~UNBLOCKABLE)

    def finish(self, interrupted: bool) -> None:
        if self.old is None:
            return
        if interrupted:
            self.t.saved_sig_mask = self.old
        else:
            self.t.set_sig_mask(self.old)


def ppoll(t: Task, ufds: int, nfds: int, tsp: int, sigmask: int, sigsetsize: int, *_: int) -> int:
    ts_addr = uint64(tsp)
    deadline = None
    zero = False
    clock = t.kernel.clock
    if ts_addr:
        sec, nsec = TIMESPEC.unpack(t.copy_in(ts_addr, TIMESPEC.size))
        if not timespec_valid(sec, nsec):
            raise SysError(EINVAL)
        zero = sec == 0 and nsec == 0
        if not zero:
            deadline = clock.now_ns() + sec * NSEC_PER_SEC + nsec
    swap = _SigmaskSwap(t, uint64(sigmask), uint64(sigsetsize))
    ret: int
    try:
        ret = _poll_common(t, uint64(ufds), uint32(nfds), deadline, zero)
    except SysError as e:
        ret = -e.errno
    except BaseException:
        swap.finish(False)  # a host exception or a bug: never leave the temporary mask installed
        raise
    swap.finish(ret == -ERESTARTNOHAND)
    if ts_addr and not zero:
        # poll_select_finish: write back the time left; if that faults the call can't be restarted.
        left = max(0, deadline - clock.now_ns()) if deadline is not None else 0
        try:
            t.copy_out(ts_addr, TIMESPEC.pack(left // NSEC_PER_SEC, left % NSEC_PER_SEC))
        except SysError:
            if ret == -ERESTARTNOHAND:
                ret = -EINTR
    if ret < 0:
        raise SysError(-ret)
    return ret


# -- epoll -------------------------------------------------------------------------------------------------------------
def epoll_create1(t: Task, flags: int, *_: int) -> int:
    f = int32(flags)
    if f & ~EPOLL_CLOEXEC:
        raise SysError(EINVAL)
    ep = EpollInstance()
    fd = fd_table(t).install(t, ep, bool(f & EPOLL_CLOEXEC))
    ep.decref()
    return fd


def epoll_create(t: Task, size: int, *_: int) -> int:
    if int32(size) <= 0:
        raise SysError(EINVAL)
    return epoll_create1(t, 0)


def epoll_ctl(t: Task, epfd: int, op: int, fd: int, event: int, *_: int) -> int:
    epfd, op, fd = int32(epfd), int32(op), int32(fd)
    lay = EPOLL_EVENT[t.kernel.arch]
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = lay.unpack(t.copy_in(uint64(event), lay.size))
    ep = _fd(t, epfd)
    target = _fd(t, fd)
    if not target.pollable:
        raise SysError(EPERM)
    if ep is target or not isinstance(ep, EpollInstance):
        raise SysError(EINVAL)
    ep.ctl(op, fd, target, events & 0xFFFF_FFFF, data)
    return 0


def _epoll_wait(t: Task, epfd: int, events: int, maxevents: int, timeout: int) -> int:
    """``do_epoll_wait`` (Linux 6.18 order, verified: the fd, maxevents, the buffer's range, then
    whether the fd is an epoll instance)."""
    lay = EPOLL_EVENT[t.kernel.arch]
    ep = fd_table(t).get(int32(epfd))
    n = int32(maxevents)
    if n <= 0 or n > 0x7FFF_FFFF // lay.size:
        raise SysError(EINVAL)
    addr = uint64(events)
    if not _access_ok(addr, n * lay.size):
        raise SysError(EFAULT)
    if not isinstance(ep, EpollInstance):
        raise SysError(EINVAL)
    ms = int32(timeout)
    deadline = t.kernel.clock.now_ns() + ms * 1_000_000 if ms > 0 else None
    got = ep_poll(t, ep, n, deadline, ms == 0)
    if not got:
        return 0
    out = b"".join(lay.pack(ev, data) for ev, data in got)
    try:
        t.copy_out(addr, out)
    except SysError:
        ep.put_back(got)
        raise
    return len(got)


def epoll_wait(t: Task, epfd: int, events: int, maxevents: int, timeout: int, *_: int) -> int:
    return _epoll_wait(t, epfd, events, maxevents, timeout)


def epoll_pwait(t: Task, epfd: int, events: int, maxevents: int, timeout: int, sigmask: int, sigsetsize: int,
                *_: int) -> int:
    swap = _SigmaskSwap(t, uint64(sigmask), uint64(sigsetsize))
    try:
        ret = _epoll_wait(t, epfd, events, maxevents, timeout)
    except SysError as e:
        swap.finish(e.errno == EINTR)
        raise
    except BaseException:
        swap.finish(False)  # a host exception or a bug: never leave the temporary mask installed
        raise
    swap.finish(False)
    return ret


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("close", close), Syscall("dup", dup), Syscall("dup2", dup2), Syscall("dup3", dup3),
    Syscall("fcntl", fcntl, "partial", "F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL; others EINVAL"),
    Syscall("read", read), Syscall("pread64", pread64), Syscall("write", write), Syscall("pwrite64", pwrite64),
    Syscall("lseek", lseek), Syscall("fstat", fstat), Syscall("newfstatat", newfstatat), Syscall("stat", stat),
    Syscall("lstat", stat), Syscall("openat", openat), Syscall("open", open_), Syscall("creat", creat),
    Syscall("unlinkat", unlinkat), Syscall("unlink", unlink), Syscall("mkdirat", mkdirat), Syscall("mkdir", mkdir),
    Syscall("rmdir", rmdir), Syscall("getdents64", getdents64), Syscall("statfs", statfs),
    Syscall("fstatfs", fstatfs), Syscall("fchmod", fchmod), Syscall("fchown", fchown),
    Syscall("mount", mount, "partial", "tmpfs, mqueue, bind mounts, remount ro/rw; propagation flags are accepted "
            "but every mount is private"),
    Syscall("umount2", umount2), Syscall("umask", umask), Syscall("prlimit64", prlimit64),
    Syscall("getrlimit", getrlimit), Syscall("setrlimit", setrlimit),
    Syscall("poll", poll, "partial", "a restart after a stop signal starts the full timeout again"),
    Syscall("ppoll", ppoll), Syscall("epoll_create1", epoll_create1), Syscall("epoll_create", epoll_create),
    Syscall("epoll_ctl", epoll_ctl), Syscall("epoll_wait", epoll_wait), Syscall("epoll_pwait", epoll_pwait),
)}

__all__ = ["SYSCALLS"]
