"""The IPC files of /proc, served by the sentry to a real program through FUSE.

Linux counterpart: ipc/ipc_sysctl.c and ipc/mq_sysctl.c (the per-IPC-namespace sysctl tables under
/proc/sys/kernel and /proc/sys/fs/mqueue, ``ipc_permissions``, ``proc_dointvec_minmax``), fs/proc/
proc_sysctl.c (``proc_sys_permission``, ``test_perm``, ``proc_sys_call_handler``) and ipc/util.c's
/proc/sysvipc seq_file (``sysvipc_proc_open``). gVisor counterpart: pkg/sentry/fsimpl/proc
(tasks_sys.go, sys.go), which the sentry serves to its own tasks; here the tasks are real processes.

How the program gets these files: the launcher (launch.py) puts the program in a mount namespace of
its own, mounts this server's FUSE connection over /proc/sys/fs/mqueue (whose five files are exactly
the mqueue sysctls, so the directory reads as on Linux) and bind-mounts the other files from it
(``kernel.msgmax``... and ``sysvipc.msg``, names the root answers to only until :meth:`seal`) over
/proc/sys/kernel/msg* and /proc/sysvipc/msg. Mount namespaces the program creates copy those mounts.

Every open is the caller's: the IPC namespace is chosen when the file is opened (Linux binds a
sysctl inode to the opener's namespace, and /proc/sysvipc's seq_file takes the opener's namespace),
the permission check uses the opener's credentials, and values are the namespace's at read time.
The caller is the TID in the FUSE request header (the kernel's, never the program's word), its
credentials read from /proc/<tid>/status and checked against the request's fsuid/fsgid.

Locks: ``_mu`` guards ``_open`` (file handles) and ``_next_fh``; ``sealed`` is written once, before
the program runs. The server thread never holds ``_mu`` while calling into the sentry.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat as stat_mod
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mqsentry.kernel.platform import fuse

if TYPE_CHECKING:
    from mqsentry.kernel.auth.credentials import Credentials
    from mqsentry.kernel.auth.user_namespace import UserNamespace
    from mqsentry.kernel.ipc_namespace import IPCNamespace
    from mqsentry.kernel.kernel import Kernel
    from mqsentry.kernel.platform.ipcns import NamespaceMap

log = logging.getLogger("mqsentry.platform")

OPEN_IN = struct.Struct("=II")
ACCESS_IN = struct.Struct("=II")
WRITE_IN = struct.Struct("=QQII")
WRITE_OUT = struct.Struct("=II")
DIRENT = struct.Struct("=QQII")
SETATTR_VALID = struct.Struct("=I")
FATTR_MODE, FATTR_UID, FATTR_GID = 1, 2, 4
MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
_ACCMODE = 3
#: The longest number proc_get_long accepts (TMPBUFLEN - 1).
_TMPBUFLEN = 22
_DT_DIR, _DT_REG = 4, 8
INT_MAX = 0x7FFF_FFFF
#: fs/nsfs.c ``_IO(0xb7, 1)``: the user namespace owning a namespace.
_NS_GET_USERNS = 0xB701


@dataclass(frozen=True, slots=True)
class ProcNode:
    """One served file: its FUSE name, the sysctl it shows (None: /proc/sysvipc/msg), its mode and
    whether the root lists it. Immutable."""

    nodeid: int
    name: str
    sysctl: str | None
    mode: int
    listed: bool


def _nodes() -> dict[int, ProcNode]:
    # Modes as kernel.ipc_sysctl.SYSCTLS has them (a test checks they agree); written out here so
    # that serving the launcher's mounts needs no import of the sentry.
    nodes: list[ProcNode] = []
    for name in ("msg_default", "msg_max", "msgsize_default", "msgsize_max", "queues_max"):
        nodes.append(ProcNode(len(nodes) + 2, name, "fs.mqueue." + name, 0o644, True))
    for full in ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg_next_id"):
        nodes.append(ProcNode(len(nodes) + 2, full, full, 0o444 if full == "kernel.msg_next_id" else 0o644, False))
    nodes.append(ProcNode(len(nodes) + 2, "sysvipc.msg", None, 0o444, False))
    return {n.nodeid: n for n in nodes}


NODES = _nodes()
_BY_NAME = {n.name: n for n in NODES.values()}


_SPACE = b" \t\n\v\f\r"
_SEPARATORS = b" \t\n"  # proc_wspace_sep: what may follow a number
_OCT, _DEC, _HEX = b"01234567", b"0123456789", b"0123456789abcdefABCDEF"


def parse_dointvec(data: bytes, lo: int, hi: int) -> tuple[int | None, int]:
    """One integer written at position 0 of a sysctl, as ``__do_proc_dointvec`` parses it with
    ``proc_get_long`` and ``do_proc_dointvec_minmax_conv``: blanks skipped, an optional '-', a
    number in C's base 0 (0x.. hex, 0.. octal) of fewer than 21 characters followed by nothing or a
    blank, trailing blanks consumed, the value within [lo, hi]. Returns (value, bytes consumed), or
    (None, 0) for an empty write; raises ValueError where Linux says EINVAL."""
    size = len(data)
    if size == 0:
        return None, 0
    p = 0
    while p < size and data[p] in _SPACE:
        p += 1
    if p == size:
        raise ValueError("nothing but blanks")
    tmp = data[p:p + _TMPBUFLEN - 1]
    q = 0
    neg = tmp[:1] == b"-" and size - p > 1
    if neg:
        q = 1
    if tmp[q:q + 1] not in tuple(bytes([c]) for c in _DEC):
        raise ValueError("no digit")
    if tmp[q:q + 2] in (b"0x", b"0X") and tmp[q + 2:q + 3] and tmp[q + 2] in _HEX:
        base, digits, q = 16, _HEX, q + 2
    elif tmp[q:q + 1] == b"0":
        base, digits = 8, _OCT
    else:
        base, digits = 10, _DEC
    start = q
    while q < len(tmp) and tmp[q] in digits:
        q += 1
    value = int(tmp[start:q], base)
    if value >= 1 << 64:
        raise ValueError("overflow")  # strtoul_lenient: -ERANGE
    if q == _TMPBUFLEN - 1:
        raise ValueError("too long")
    if p + q < size and data[p + q] not in _SEPARATORS:
        raise ValueError("bad character after the number")
    if neg:
        if value > INT_MAX + 1:
            raise ValueError("out of int range")
        value = -value
    elif value > INT_MAX:
        raise ValueError("out of int range")
    if not lo <= value <= hi:
        raise ValueError("out of the sysctl's range")
    p += q
    while p < size and data[p] in _SPACE:
        p += 1
    return value, p


def sysctl_mode(name: str, creds: Credentials, owner: UserNamespace | None = None) -> int:
    """``ipc_permissions`` / ``mq_permissions`` + ``test_perm``: the rwx bits ``creds`` has on the
    sysctl ``name`` of an IPC namespace owned by user namespace ``owner`` (default: the root).

    The namespace's root is uid 0 / gid 0 of ``owner`` when it maps them, else the global root
    (``ipc_set_ownership``); msg_next_id is 0666 for a task with CAP_CHECKPOINT_RESTORE or
    CAP_SYS_ADMIN in ``owner`` (``checkpoint_restore_ns_capable``). No DAC capability overrides."""
    from mqsentry.abi.linux.capability import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN
    from mqsentry.kernel.auth.user_namespace import NO_ID, ROOT_USER_NAMESPACE
    from mqsentry.kernel.ipc_namespace import SYSCTLS

    if owner is None:
        owner = ROOT_USER_NAMESPACE
    mode = SYSCTLS[name].mode
    if name == "kernel.msg_next_id" and (creds.has_cap_in(CAP_CHECKPOINT_RESTORE, owner)
                                         or creds.has_cap_in(CAP_SYS_ADMIN, owner)):
        return 6  # 0666
    root_uid = owner.map_to_kuid(0)
    root_gid = owner.map_to_kgid(0)
    if creds.euid == (0 if root_uid == NO_ID else root_uid):
        mode >>= 6
    elif creds.in_egroup(0 if root_gid == NO_ID else root_gid):
        mode >>= 3
    mode &= 7
    return mode  # the same bits for owner, group and other: test_perm's shift picks these


def may(node: ProcNode, creds: Credentials, want: int, owner: UserNamespace | None = None) -> int:
    """0 if ``creds`` may open ``node`` (of an IPC namespace owned by ``owner``) for ``want`` (MAY_*
    bits), else an errno."""
    if want & MAY_EXEC:
        return errno.EACCES
    if node.sysctl is not None:
        return 0 if want & ~sysctl_mode(node.sysctl, creds, owner) & 7 == 0 else errno.EACCES
    # /proc/sysvipc/msg: generic_permission on an 0444 inode of the global root (CAP_DAC_OVERRIDE in
    # the opener's namespace overrides when root is mapped there: capable_wrt_inode_uidgid).
    from mqsentry.abi.linux.capability import CAP_DAC_OVERRIDE

    if want & MAY_WRITE and not creds.has_cap_wrt_ids(CAP_DAC_OVERRIDE, 0, 0):
        return errno.EACCES
    return 0


@dataclass(slots=True)
class Handle:
    """One open of a served file: its node, the opener's IPC and user namespaces (fixed at open)."""

    node: ProcNode
    ns: IPCNamespace
    #: The opener's user namespace (``seq_user_ns``): /proc/sysvipc/msg shows its ids in it.
    user_ns: UserNamespace


class ProcFiles:
    """The FUSE server of one launched program tree's IPC /proc files.

    ``resolve(tid)`` names the sentry IPC namespace of a host thread (None: unknown or gone). The
    server owns ``dev`` (a /dev/fuse descriptor handed to the launcher, which mounts it).
    """

    def __init__(self, resolve: Callable[[int], IPCNamespace | None],
                 generate: Callable[[IPCNamespace, UserNamespace], str],
                 users: Callable[[int], UserNamespace | None] | None = None) -> None:
        self.resolve = resolve
        self.generate = generate
        st = os.stat("/proc/self/ns/user")
        #: The sentry's own user namespace (nsfs device and inode): the root's.
        self._root_user = (st.st_dev, st.st_ino)
        #: ``tid -> user namespace`` (userns.HostUserNamespaces.of_thread); None: every caller is in
        #: the root namespace.
        self.users = users
        self.dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        self._mu = threading.Lock()
        self._open: dict[int, Handle] = {}
        self._next_fh = 1
        self.sealed = False
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="mqsentry-procfs", daemon=True)
        self._thread.start()

    def mount_options(self, fd: int) -> str:
        """The mount data for the launcher, where ``fd`` is its number for :attr:`dev`."""
        return f"fd={fd},rootmode=40555,user_id=0,group_id=0,allow_other"

    def seal(self) -> None:
        """The launcher has made its bind mounts: the root stops answering to the unlisted names."""
        self.sealed = True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.dev)

    # -- caller identity -------------------------------------------------------------------------------
    def _caller(self, pid: int, uid: int, gid: int) -> tuple[Credentials, IPCNamespace] | None:
        from mqsentry.kernel.platform import procfs

        st = procfs.read_status(pid)
        if st is None or st.creds.fsuid != uid or st.creds.fsgid != gid:
            return None  # gone, or the TID now names another thread
        ns = self.resolve(pid)
        if ns is None:
            return None
        creds = st.creds
        if self.users is not None:
            uns = self.users(pid)
            if uns is None:
                return None
            creds = replace(creds, user_ns=uns)
        return creds, ns

    # -- server thread ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        # Not mounted yet at first: the launcher mounts it, then waits for our INIT reply.
        for req in fuse.requests(self.dev, until_mounted=lambda: not self._closed):
            try:
                self._handle(req)
            except Exception:  # pragma: no cover - keep serving
                log.exception("procfs FUSE request failed")

    def _reply(self, unique: int, body: bytes = b"", err: int = 0) -> None:
        fuse.reply(self.dev, unique, body, err)

    def _owner(self, pid: int) -> tuple[int, int]:
        """``ipc_set_ownership`` for the IPC namespace of requester ``pid``: uid and gid 0 of the user
        namespace owning it, as kernel ids (the global root when that namespace does not map them)."""
        if not pid or self._owned_by_root(pid):
            return 0, 0  # the common case answers without building (or importing) the sentry
        from mqsentry.kernel.auth.user_namespace import NO_ID

        ns = self.resolve(pid)
        if ns is None or ns.user_ns.parent is None:
            return 0, 0
        if self.users is not None:
            self.users(pid)  # reads the owner's maps if the requester lives in it
        uid, gid = ns.user_ns.map_to_kuid(0), ns.user_ns.map_to_kgid(0)
        return (0 if uid == NO_ID else uid), (0 if gid == NO_ID else gid)

    def _owned_by_root(self, pid: int) -> bool:
        """Whether the host IPC namespace of ``pid`` is owned by the sentry's own user namespace
        (``NS_GET_USERNS``, through descriptors); True when it cannot be told (the thread is gone)."""
        try:
            fd = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return True
        try:
            ufd = fcntl.ioctl(fd, _NS_GET_USERNS)
        except OSError:
            return True
        finally:
            os.close(fd)
        try:
            st = os.fstat(ufd)
        finally:
            os.close(ufd)
        return (st.st_dev, st.st_ino) == self._root_user

    def _attr(self, nodeid: int, pid: int = 0) -> bytes | None:
        now = time.time_ns()
        s, ns = divmod(now, 10**9)
        uid = gid = 0
        if nodeid == fuse.ROOT_ID:
            mode, nlink = stat_mod.S_IFDIR | 0o555, 1  # procfs directories say 1
        else:
            node = NODES.get(nodeid)
            if node is None:
                return None
            mode, nlink = stat_mod.S_IFREG | node.mode, 1
            if node.sysctl is not None:
                # A sysctl's inode belongs to the root of the namespace the looker is in (the table
                # is looked up in current's namespace); attributes are never cached (timeouts 0).
                uid, gid = self._owner(pid)
        return fuse.ATTR.pack(nodeid, 0, 0, s, s, s, ns, ns, ns, mode, nlink, uid, gid, 0, 4096, 0)

    def _handle(self, req: bytes) -> None:
        _len, op, unique, nodeid, uid, gid, pid, _x, _p = fuse.IN_HEADER.unpack_from(req)
        body = memoryview(req)[fuse.IN_HEADER.size:]
        if op == fuse.INIT:
            self._reply(unique, fuse.init_reply(body))
        elif op == fuse.LOOKUP:
            name = bytes(body).split(b"\0", 1)[0].decode(errors="replace")
            node = _BY_NAME.get(name) if nodeid == fuse.ROOT_ID else None
            if node is None or (self.sealed and not node.listed):
                self._reply(unique, err=errno.ENOENT)
                return
            # Timeouts 0: every lookup and stat asks again (the hidden names vanish once sealed).
            self._reply(unique, fuse.ENTRY_OUT_HEAD.pack(node.nodeid, 0, 0, 0, 0, 0)
                        + (self._attr(node.nodeid, pid) or b""))
        elif op in (fuse.GETATTR, fuse.SETATTR):
            attr = self._attr(nodeid, pid)
            if attr is None:
                self._reply(unique, err=errno.ENOENT)
            elif op == fuse.SETATTR and SETATTR_VALID.unpack_from(body)[0] & (FATTR_MODE | FATTR_UID | FATTR_GID):
                self._reply(unique, err=errno.EPERM)  # proc_sys_setattr / proc_notify_change
            else:
                self._reply(unique, fuse.ATTR_OUT_HEAD.pack(0, 0, 0) + attr)
        elif op == fuse.ACCESS:
            mask = ACCESS_IN.unpack_from(body)[0]
            node = NODES.get(nodeid)
            if node is None:  # the directory: r-x for everyone
                self._reply(unique, err=errno.EACCES if mask & MAY_WRITE else 0)
                return
            who = self._caller(pid, uid, gid)
            self._reply(unique, err=errno.ENOENT if who is None else may(node, who[0], mask, who[1].user_ns))
        elif op == fuse.OPEN:
            self._open_file(unique, nodeid, pid, uid, gid, OPEN_IN.unpack_from(body)[0])
        elif op == fuse.READ:
            fh, offset, size, _rf = fuse.READ_IN.unpack_from(body)
            h = self._open.get(fh)
            if h is None:
                self._reply(unique, err=errno.EBADF)
                return
            if h.node.sysctl is None:
                data = self.generate(h.ns, h.user_ns).encode()
            elif offset:
                data = b""  # proc_dointvec: a read at a non-zero position is EOF
            else:
                data = f"{h.ns.sysctl_get(h.node.sysctl)}\n".encode()
            self._reply(unique, data[offset:offset + size])
        elif op == fuse.WRITE:
            fh, offset, size, _wf = WRITE_IN.unpack_from(body)
            data = bytes(body[WRITE_IN.size + 16:WRITE_IN.size + 16 + size])
            self._write(unique, fh, offset, data)
        elif op == fuse.OPENDIR:
            self._reply(unique, fuse.OPEN_OUT.pack(0, 0, 0))
        elif op == fuse.READDIR:
            _fh, offset, size, _rf = fuse.READ_IN.unpack_from(body)
            self._reply(unique, self._readdir(offset, size))
        elif op in (fuse.FLUSH, fuse.RELEASEDIR, fuse.DESTROY):
            self._reply(unique)
        elif op == fuse.RELEASE:
            fh = struct.unpack_from("=Q", body)[0]
            with self._mu:
                self._open.pop(fh, None)
            self._reply(unique)
        elif op in (fuse.FORGET, fuse.BATCH_FORGET, fuse.INTERRUPT):
            return
        else:
            self._reply(unique, err=errno.ENOSYS)

    def _open_file(self, unique: int, nodeid: int, pid: int, uid: int, gid: int, flags: int) -> None:
        node = NODES.get(nodeid)
        if node is None:
            self._reply(unique, err=errno.ENOENT)
            return
        who = self._caller(pid, uid, gid)
        if who is None:
            self._reply(unique, err=errno.ENOENT)
            return
        acc = flags & _ACCMODE
        want = {os.O_RDONLY: MAY_READ, os.O_WRONLY: MAY_WRITE}.get(acc, MAY_READ | MAY_WRITE)
        e = may(node, who[0], want, who[1].user_ns)
        if e:
            self._reply(unique, err=e)
            return
        with self._mu:
            fh = self._next_fh
            self._next_fh += 1
            self._open[fh] = Handle(node, who[1], who[0].user_ns)
        self._reply(unique, fuse.OPEN_OUT.pack(fh, fuse.FOPEN_DIRECT_IO, 0))

    def _write(self, unique: int, fh: int, offset: int, data: bytes) -> None:
        h = self._open.get(fh)
        if h is None:
            self._reply(unique, err=errno.EBADF)
            return
        name = h.node.sysctl
        if name is None:
            self._reply(unique, err=errno.EIO)  # a seq_file without a write method
            return
        if offset:
            # sysctl_writes_strict=1 (the default): a write at a non-zero position is ignored.
            self._reply(unique, WRITE_OUT.pack(len(data), 0))
            return
        from mqsentry.kernel.ipc_namespace import SYSCTLS

        spec = SYSCTLS[name]
        try:
            value, used = parse_dointvec(data, spec.lo, spec.hi)
        except ValueError:
            self._reply(unique, err=errno.EINVAL)
            return
        if value is not None:
            h.ns.sysctl_set(name, value)
        self._reply(unique, WRITE_OUT.pack(used, 0))

    def _readdir(self, offset: int, size: int) -> bytes:
        entries: list[tuple[int, str, int]] = [(fuse.ROOT_ID, ".", _DT_DIR), (fuse.ROOT_ID, "..", _DT_DIR)]
        entries += [(n.nodeid, n.name, _DT_REG) for n in NODES.values() if n.listed]
        out = bytearray()
        for i, (ino, name, typ) in enumerate(entries):
            if i < offset:
                continue
            raw = name.encode()
            rec = DIRENT.pack(ino, i + 1, len(raw), typ) + raw
            rec += b"\0" * (-len(rec) % 8)
            if len(out) + len(rec) > size:
                break
            out += rec
        return bytes(out)


def start(sentry: Callable[[], tuple[Kernel, NamespaceMap]]) -> ProcFiles | None:
    """A server whose namespaces come from ``sentry()`` (the kernel and its namespace map, built on
    the first request that needs them), or None (logged) if this host cannot serve the files."""
    reason = available()
    if reason is not None:
        log.debug("IPC /proc files stay the host's: %s", reason)
        return None

    def resolve(tid: int) -> IPCNamespace | None:
        return sentry()[1].lookup(tid)

    def users(tid: int) -> UserNamespace | None:
        return sentry()[1].users.of_thread(tid)

    try:
        return ProcFiles(resolve, lambda ns, user_ns: ns.msgqueues.proc_text(user_ns), users)
    except OSError as e:
        log.debug("IPC /proc files stay the host's: %s", e)
        return None


def available() -> str | None:
    """None if the files can be served here (FUSE mountable, /proc/sys/fs/mqueue present)."""
    reason = fuse.fuse_available()
    if reason is not None:
        return reason
    if not os.path.isdir("/proc/sys/fs/mqueue"):
        return "the host has no /proc/sys/fs/mqueue"
    return None


__all__ = ["NODES", "ProcFiles", "ProcNode", "available", "may", "parse_dointvec", "start", "sysctl_mode"]
