"""mount(2) of the mqueue filesystem by a real program: the sentry's queues, mounted where it asked.

Linux counterpart: fs/namespace.c (``do_mount``/``path_mount``: the path lookup as the caller,
MS_NOUSER, ``may_mount``, ``do_new_mount``, ``do_add_mount``'s EBUSY, ``graft_tree``'s ENOTDIR),
fs/fs_context.c (``vfs_parse_fs_param``: the common sb options, "source"), fs/super.c
(``mount_capable``) and ipc/mqueue.c (``mqueue_init_fs_context``/``mqueue_get_tree``: the mount shows
the *caller's* IPC namespace). gVisor counterpart: pkg/sentry/syscalls/linux/vfs/mount.go with
pkg/sentry/fsimpl/mqfs's ``FilesystemType.GetFilesystem`` (the caller's IPC namespace's fs).

What is served: mount(2) whose type string reads "mqueue" and which makes a new mount (not MS_REMOUNT,
MS_BIND, MS_MOVE or a propagation change: those do not look at the type and continue natively, as do
all other types). Continuing is safe: a program that rewrites the type string after our read gets
what the host gives (the host's mqueue filesystem), and nothing in the sentry depends on that mount.
The new mount API is not served: fsopen("mqueue") fails with ENOSYS, what a kernel without fsopen
says (mount(8) and libmount then fall back to mount(2), which is served); fsopen of other types
continues natively. Faking an fs context would mean emulating fsconfig/fsmount/move_mount for it.

Linux's checks, in order, each made on the host's own state: the strings (type, source, options:
EFAULT/EINVAL), the target's lookup *as the caller* (in a fresh thread that unshares CLONE_FS, enters
the caller's mount namespace with ``setns`` on its /proc/<tid>/ns/mnt, takes its root and cwd from
the /proc/<tid>/root and cwd descriptors, and the caller's fsuid, fsgid, groups and capabilities;
the path text is only ever resolved there), MS_NOUSER (EINVAL), ``may_mount`` (CAP_SYS_ADMIN in the
user namespace owning the caller's mount namespace: EPERM), the options (EINVAL), ``mount_capable``
(CAP_SYS_ADMIN in the user namespace owning the caller's IPC namespace: EPERM), EBUSY (the same
namespace's mqueue already mounted right there), ENOTDIR. Every /proc read is followed by the
notification's ID_VALID. Then the same thread mounts a new FUSE connection (mqfuse.py) with
fsopen/fsconfig/fsmount and ``move_mount`` onto the looked-up descriptor (no path text), with the
mount flags the caller gave (ro, nosuid, nodev, noexec, atime, nosymfollow).

Locks: ``_mu`` guards ``servers``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat as stat_mod
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN
from mqsentry.abi.linux.file import (
    MS_BIND,
    MS_MGC_MSK,
    MS_MGC_VAL,
    MS_MOVE,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_NOUSER,
    MS_PROPAGATION,
    MS_RDONLY,
    MS_REMOUNT,
    MS_STRICTATIME,
)
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.platform import procfs, userns
from mqsentry.kernel.platform.mqfuse import MqueueFuse

if TYPE_CHECKING:
    from mqsentry.fs.mqfs import MqueueFilesystem
    from mqsentry.kernel.auth.credentials import Credentials
    from mqsentry.kernel.auth.user_namespace import UserNamespace
    from mqsentry.kernel.platform.loop import Platform
    from mqsentry.kernel.platform.seccomp import Notification
    from mqsentry.kernel.task import Task

log = logging.getLogger("mqsentry.platform")

NR_MOUNT, NR_FSOPEN = 165, 430
#: i386 numbers of the same calls.
NR_MOUNT_I386, NR_FSOPEN_I386 = 21, 430
_PAGE = 4096
#: fs/nsfs.c ``NS_GET_USERNS``: the user namespace owning a namespace.
NS_GET_USERNS = 0xB701

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.process_vm_readv.restype = ctypes.c_ssize_t
_SYS_SETGROUPS, _SYS_SETFSUID, _SYS_SETFSGID, _SYS_CAPGET, _SYS_CAPSET = 116, 122, 123, 125, 126
_SYS_UNSHARE, _SYS_SETNS = 272, 308
_SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 429, 430, 431, 432
_CLONE_FS, _CLONE_NEWNS = 0x200, 0x20000
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC = 1, 1
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_MOVE_MOUNT_F_EMPTY_PATH, _MOVE_MOUNT_T_EMPTY_PATH = 4, 0x40
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV, _MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
_MOUNT_ATTR_NOATIME, _MOUNT_ATTR_STRICTATIME, _MOUNT_ATTR_NODIRATIME = 0x10, 0x20, 0x80
_MOUNT_ATTR_NOSYMFOLLOW = 0x200000
_CAP_VERSION_3 = 0x20080522
_CAP_HEADER = struct.Struct("=Ii")
_CAP_DATA = struct.Struct("=IIIIII")
#: Options every filesystem accepts (``vfs_parse_sb_flag``); mqueue has none of its own.
_SB_OPTIONS = frozenset({b"ro", b"rw", b"dirsync", b"lazytime", b"nolazytime", b"mand", b"nomand", b"sync",
                         b"async"})


def peek_string(tid: int, addr: int, maxlen: int = _PAGE) -> bytes | None:
    """A NUL-terminated string of thread ``tid`` (None: unreadable or no NUL within ``maxlen``), read
    page by page with process_vm_readv. Used only to decide whether to serve; never trusted for more."""
    if addr == 0:
        return None
    out = b""
    while len(out) < maxlen:
        n = min(_PAGE - (addr + len(out)) % _PAGE, maxlen - len(out))
        buf = ctypes.create_string_buffer(n)
        local = struct.pack("=QQ", ctypes.addressof(buf), n)
        remote = struct.pack("=QQ", addr + len(out), n)
        got = _libc.process_vm_readv(tid, local, 1, remote, 1, 0)
        if got != n:
            return None
        chunk = buf.raw[:n]
        nul = chunk.find(b"\0")
        if nul >= 0:
            return out + chunk[:nul]
        out += chunk
    return None


def _new_mount(flags: int) -> bool:
    """``path_mount`` takes the ``do_new_mount`` branch (the only one that looks at the type)."""
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    return not flags & (MS_REMOUNT | MS_BIND | MS_PROPAGATION | MS_MOVE)


def screen_mount(n: Notification) -> bool:
    """Whether a mount(2) notification is one we serve (else it continues natively)."""
    return _new_mount(n.args[3]) and peek_string(n.pid, n.args[2]) == b"mqueue"


def screen_fsopen(n: Notification) -> bool:
    return peek_string(n.pid, n.args[0]) == b"mqueue"


def parse_options(data: bytes, have_source: bool) -> int:
    """``generic_parse_monolithic`` for mqueue: comma-separated keys, "=value" split off; the common sb
    flags and one "source" (as a string) are accepted, anything else is EINVAL. 0 or an errno."""
    text = data.split(b"\0", 1)[0]
    for opt in text.split(b","):
        if not opt:
            continue
        key, eq, _value = opt.partition(b"=")
        if eq and not key:
            continue  # "=value": skipped, as vfs_parse_monolithic_sep does
        if key in _SB_OPTIONS:
            continue
        if key == b"source":
            if not eq or have_source:
                return errno.EINVAL  # "Non-string source" / "Multiple sources"
            have_source = True
            continue
        return errno.EINVAL
    return 0


def mount_attrs(flags: int) -> int:
    """``path_mount``'s per-mount flags as MOUNT_ATTR_* bits for fsmount (relatime by default)."""
    attrs = 0
    for ms, attr in ((MS_RDONLY, _MOUNT_ATTR_RDONLY), (MS_NOSUID, _MOUNT_ATTR_NOSUID), (MS_NODEV, _MOUNT_ATTR_NODEV),
                     (MS_NOEXEC, _MOUNT_ATTR_NOEXEC), (MS_NODIRATIME, _MOUNT_ATTR_NODIRATIME),
                     (MS_NOSYMFOLLOW, _MOUNT_ATTR_NOSYMFOLLOW)):
        if flags & ms:
            attrs |= attr
    if flags & MS_STRICTATIME:
        attrs |= _MOUNT_ATTR_STRICTATIME
    elif flags & MS_NOATIME:
        attrs |= _MOUNT_ATTR_NOATIME
    return attrs


def capable_in(chain: tuple[userns.Level, ...], thread_ns: userns.NsId | None, euid: int, cap_effective: int,
               cap: int) -> bool:
    """``ns_capable(ns, cap)`` for a host thread, where ``chain`` is ``ns`` and its ancestors."""
    owner = userns.OwnerNamespace.from_chain(chain)
    return bool(owner.effective_caps(thread_ns, euid, cap_effective, 1 << cap) >> cap & 1)


def _owner_chain(ns_fd: int) -> tuple[userns.Level, ...]:
    """The user namespace owning the namespace open at ``ns_fd``, with its ancestors."""
    import fcntl

    ufd = fcntl.ioctl(ns_fd, NS_GET_USERNS)
    try:
        return userns.chain_of(ufd)
    finally:
        os.close(ufd)


@dataclass(slots=True)
class _Request:
    """One served mount(2): what was read of the caller (all of it before the ID re-validation)."""

    path: bytes
    source: bytes | None
    data: bytes
    flags: int
    root_fd: int
    cwd_fd: int
    mnt_fd: int
    thread_ns: userns.NsId | None
    creds: Credentials
    dac_caps: int
    mnt_owner: tuple[userns.Level, ...]
    ipc_owner: tuple[userns.Level, ...]

    def close(self) -> None:
        for fd in (self.root_fd, self.cwd_fd, self.mnt_fd):
            if fd >= 0:
                os.close(fd)


class MqMounts:
    """The program tree's mqueue mounts: one FUSE server per mount (``servers``)."""

    def __init__(self, creds_for: Callable[[int, Credentials], Credentials],
                 on_close: Callable[[int], None] | None = None) -> None:
        self.creds_for = creds_for
        #: ``tid -> the sentry mirror of its user namespace`` (userns.HostUserNamespaces.of_thread), set
        #: once a platform serves these mounts: FUSE callers' credentials then carry their own user
        #: namespace, so capabilities count exactly as ``ns_capable`` says for the queue's namespace.
        #: Until then (and if the namespace cannot be read) ``creds_for`` answers.
        self.users: Callable[[int], UserNamespace | None] | None = None
        self.on_close = on_close
        #: Asks the host which pinned IPC namespaces are still alive (ipcns.NamespaceMap.sweep): the
        #: sentry sees the exits of served processes only, and a namespace whose last process never
        #: made a served call must be found dead before a create through a mount of it (EACCES).
        self.refresh: Callable[[], None] | None = None
        self._mu = threading.Lock()
        self.servers: list[MqueueFuse] = []

    def new_server(self, fs: MqueueFilesystem) -> MqueueFuse:
        srv = MqueueFuse(fs, self._caller_creds, self._closed, self._refresh)
        with self._mu:
            self.servers = [s for s in self.servers if s.alive] + [srv]
        return srv

    def _caller_creds(self, tid: int, creds: Credentials) -> Credentials:
        """A FUSE caller's credentials (read from /proc by the server) in its own user namespace."""
        users = self.users
        uns = users(tid) if users is not None else None
        if uns is None:
            return self.creds_for(tid, creds)
        return creds if uns is creds.user_ns else replace(creds, user_ns=uns)

    def _refresh(self) -> None:
        hook = self.refresh
        if hook is not None:
            hook()

    def _closed(self, ino: int) -> None:
        hook = self.on_close
        if hook is not None:
            hook(ino)

    def close(self) -> None:
        with self._mu:
            servers, self.servers = self.servers, []
        for s in servers:
            s.close()

    # -- mq descriptors of these mounts (mqfd.py asks) ------------------------------------------------
    def resolve(self, tid: int, fd: int, ino: int, flags: int) -> Any:
        """The description behind the target's ``fd`` if it is a queue file of one of our mounts."""
        servers = self.servers
        if not servers:
            return None
        from mqsentry.kernel.platform import seccomp

        try:
            pidfd = os.pidfd_open(tid, os.O_EXCL)  # PIDFD_THREAD
        except OSError:
            return None
        try:
            hfd = seccomp.pidfd_getfd(pidfd, fd)
        except OSError:
            return None
        finally:
            os.close(pidfd)
        try:
            st = os.fstat(hfd)
        finally:
            os.close(hfd)
        for s in servers:
            if s.st_dev == st.st_dev and s.alive:
                return s.description(ino, flags)
        return None

    # -- the platform hooks -----------------------------------------------------------------------------
    def serve_fsopen(self, plat: Platform, n: Notification, t: Task) -> int | None:
        """fsopen("mqueue"): ENOSYS (see the module docstring); any other type continues natively."""
        raw = t.copy_in_string(n.args[0], _PAGE)
        if raw != b"mqueue":
            return None
        return -errno.ENOSYS

    def serve_mount(self, plat: Platform, n: Notification, t: Task) -> int | Callable[[], int] | None:
        """mount(2) of type "mqueue": an early error, None to continue natively, or the rest of the
        call to run off the loop (the lookup may wait on any file system)."""
        from mqsentry.syscalls.linux.sys_file import _mount_options, _mount_string

        a = n.args
        flags = a[3]
        if not _new_mount(flags):
            return None
        try:
            if _mount_string(t, a[2]) != "mqueue":
                return None  # rewritten since the screen: what the host does with it is the host's
            src = _mount_string(t, a[0])
            data = _mount_options(t, a[4])
            from mqsentry.fs.vfs.namei import getname

            path = getname(t, a[1]).encode("utf-8", "surrogateescape")
        except SysError as e:
            return -e.errno
        if flags & MS_MGC_MSK == MS_MGC_VAL:
            flags &= ~MS_MGC_MSK
        req = self._read_caller(plat, n, path, src, data, flags)
        if req is None:
            return -errno.ESRCH  # the caller is gone; the reply goes nowhere
        fs = cast("MqueueFilesystem", t.ipc_ns.posix_queues)  # the namespace's registry is its mqueue fs

        def rest() -> int:
            try:
                return -self._mount_as_caller(req, fs)
            finally:
                req.close()
        return rest

    def _read_caller(self, plat: Platform, n: Notification, path: bytes, src: str | None, data: bytes,
                     flags: int) -> _Request | None:
        tid = n.pid
        fds: list[int] = []
        try:
            for what in ("root", "cwd"):
                fds.append(os.open(f"/proc/{tid}/{what}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
            fds.append(os.open(f"/proc/{tid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
            ipc_fd = os.open(f"/proc/{tid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipc_owner = _owner_chain(ipc_fd)
            finally:
                os.close(ipc_fd)
            mnt_owner = _owner_chain(fds[2])
            st = os.stat(f"/proc/{tid}/ns/user")
            status = procfs.read_status(tid)
        except OSError:
            status = None
        if status is None or not plat.listener.id_valid(n.id):
            for fd in fds:
                os.close(fd)
            return None
        dac = self.creds_for(tid, status.creds).cap_effective
        return _Request(path, src.encode("utf-8", "surrogateescape") if src is not None else None, data, flags,
                        fds[0], fds[1], fds[2], (st.st_dev, st.st_ino), status.creds, dac, mnt_owner, ipc_owner)

    def _checks(self, req: _Request, target: int, fs: MqueueFilesystem) -> int:
        """``path_mount`` .. ``graft_tree`` after the lookup: 0 or an errno."""
        c = req.creds
        if req.flags & MS_NOUSER:
            return errno.EINVAL
        if not capable_in(req.mnt_owner, req.thread_ns, c.euid, c.cap_effective, CAP_SYS_ADMIN):
            return errno.EPERM  # may_mount
        e = parse_options(req.data, req.source is not None)
        if e:
            return e
        if not capable_in(req.ipc_owner, req.thread_ns, c.euid, c.cap_effective, CAP_SYS_ADMIN):
            return errno.EPERM  # mount_capable (mqueue is FS_USERNS_MOUNT)
        st = os.fstat(target)
        with self._mu:
            ours = {s.st_dev for s in self.servers if s.fs is fs and s.alive}
        if st.st_dev in ours and stat_mod.S_ISDIR(st.st_mode):
            return errno.EBUSY  # the same superblock on the mount's own root (do_add_mount)
        if not stat_mod.S_ISDIR(st.st_mode):
            return errno.ENOTDIR  # graft_tree
        return 0

    def _mount_as_caller(self, req: _Request, fs: MqueueFilesystem) -> int:
        srv = self.new_server(fs)  # opens /dev/fuse here, before the worker changes its root
        result: list[int] = []

        def work() -> None:
            try:
                result.append(_worker(req, lambda fd: self._checks(req, fd, fs), lambda fd: _fuse_mount(srv, req, fd)))
            except Exception:  # pragma: no cover - report, never take the loop down
                log.exception("mqueue mount failed")
                result.append(errno.EIO)

        # A thread of its own: the worker changes its root, mount namespace and credentials for good.
        th = threading.Thread(target=work, name="mqsentry-mqueue-mount", daemon=True)
        th.start()
        th.join()
        err = result[0] if result else errno.EIO
        if err:
            srv.close()
        return err


def _sys(nr: int, *args: Any) -> int:
    r = int(_libc.syscall(ctypes.c_long(nr), *args))
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r


def _set_creds(fsuid: int, fsgid: int, groups: tuple[int, ...], caps: int) -> None:
    """This thread's (only this thread's: raw syscalls) credentials for a path lookup."""
    arr = (ctypes.c_uint * max(1, len(groups)))(*groups)
    _sys(_SYS_SETGROUPS, ctypes.c_long(len(groups)), arr)
    _libc.syscall(ctypes.c_long(_SYS_SETFSGID), ctypes.c_long(fsgid))
    _libc.syscall(ctypes.c_long(_SYS_SETFSUID), ctypes.c_long(fsuid))
    _set_effective(caps)


def _set_effective(caps: int | None) -> None:
    """capset: the effective set ``caps`` (None: everything permitted)."""
    hdr = ctypes.create_string_buffer(_CAP_HEADER.pack(_CAP_VERSION_3, 0), _CAP_HEADER.size)
    data = ctypes.create_string_buffer(_CAP_DATA.size)
    _sys(_SYS_CAPGET, hdr, data)
    _e0, p0, i0, _e1, p1, i1 = _CAP_DATA.unpack(data.raw)
    permitted = p0 | p1 << 32
    eff = permitted if caps is None else caps & permitted
    hdr = ctypes.create_string_buffer(_CAP_HEADER.pack(_CAP_VERSION_3, 0), _CAP_HEADER.size)
    new = ctypes.create_string_buffer(_CAP_DATA.pack(eff & 0xFFFF_FFFF, p0, i0, eff >> 32, p1, i1), _CAP_DATA.size)
    _sys(_SYS_CAPSET, hdr, new)


def _worker(req: _Request, checks: Callable[[int], int], mount: Callable[[int], int]) -> int:
    """Runs on a thread of its own, which it changes for good (it exits after): the caller's mount
    namespace, root, cwd and credentials for the lookup, then our own privileges again for the mount."""
    try:
        _sys(_SYS_UNSHARE, ctypes.c_long(_CLONE_FS))
        _sys(_SYS_SETNS, ctypes.c_long(req.mnt_fd), ctypes.c_long(_CLONE_NEWNS))
        os.fchdir(req.root_fd)
        os.chroot(".")
        os.fchdir(req.cwd_fd)
    except OSError as e:
        log.debug("entering the caller's mount namespace failed: %s", e)
        return errno.EPERM if e.errno in (errno.EPERM, errno.EACCES) else (e.errno or errno.EIO)
    c = req.creds
    _set_creds(c.fsuid, c.fsgid, c.groups, req.dac_caps)
    try:
        target = os.open(req.path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        return e.errno or errno.EIO
    finally:
        _set_effective(None)
        _libc.syscall(ctypes.c_long(_SYS_SETFSUID), ctypes.c_long(0))
        _libc.syscall(ctypes.c_long(_SYS_SETFSGID), ctypes.c_long(0))
    try:
        err = checks(target)
        return err if err else mount(target)
    finally:
        os.close(target)


def _fuse_mount(srv: MqueueFuse, req: _Request, target: int) -> int:
    """A new FUSE mount of ``srv`` moved onto ``target`` (in this thread's mount namespace)."""
    fsfd = mfd = -1
    try:
        fsfd = _sys(_SYS_FSOPEN, b"fuse", ctypes.c_uint(_FSOPEN_CLOEXEC))
        source = req.source if req.source else b"none"
        for key, value in ((b"source", source), (b"subtype", b"mqueue"), (b"fd", str(srv.dev).encode()),
                           (b"rootmode", b"41777"), (b"user_id", b"0"), (b"group_id", b"0")):
            _sys(_SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_STRING), key, value, ctypes.c_int(0))
        for key in (b"allow_other", b"default_permissions"):
            _sys(_SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_FLAG), key, None, ctypes.c_int(0))
        _sys(_SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0))
        srv.start()  # INIT is queued now; answer it (and anything after) from here on
        attrs = ctypes.c_uint(mount_attrs(req.flags))
        mfd = _sys(_SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(_FSMOUNT_CLOEXEC), attrs)
        srv.st_dev = os.fstat(mfd).st_dev
        _sys(_SYS_MOVE_MOUNT, ctypes.c_int(mfd), b"", ctypes.c_int(target), b"",
             ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH))
        return 0
    except OSError as e:
        log.debug("mqueue FUSE mount failed: %s", e)
        return e.errno or errno.EIO
    finally:
        for fd in (mfd, fsfd):
            if fd >= 0:
                os.close(fd)


def attach(plat: Platform, mounts: MqMounts | None = None, files: Any = None,
           refresh: Callable[[], None] | None = None) -> MqMounts:
    """Serve mount(2)/fsopen of mqueue on ``plat`` (``mounts``: the one that already covers the
    launcher's mqueue mounts, if any); ``files`` (mqfd.MqFiles) then also serves mq_* calls on fds
    opened in these mounts; ``refresh``: see :attr:`MqMounts.refresh`."""
    if mounts is None:
        mounts = MqMounts(plat.owner_ns.creds_for)
    mounts.refresh = refresh
    mounts.users = plat.users.of_thread
    if files is not None:
        mounts.on_close = files.closed
        files.extra = mounts.resolve
    plat.screen[NR_MOUNT] = screen_mount
    plat.screen[NR_FSOPEN] = screen_fsopen
    plat.takeover[NR_MOUNT] = mounts.serve_mount
    plat.takeover[NR_FSOPEN] = mounts.serve_fsopen
    plat.closers.append(mounts.close)
    return mounts


__all__ = ["MqMounts", "attach", "capable_in", "mount_attrs", "parse_options", "peek_string", "screen_fsopen",
           "screen_mount"]
