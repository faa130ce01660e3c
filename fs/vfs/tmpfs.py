"""A small in-memory filesystem: the root filesystem and mount(2)'s "tmpfs".

Linux counterpart: mm/shmem.c (tmpfs: ``shmem_get_inode``, ``shmem_mknod``, ``shmem_mkdir``,
``shmem_unlink``, ``shmem_rmdir``, ``shmem_statfs``, ``shmem_parse_one``) with fs/libfs.c
(``simple_offset_dir_operations``, ``generic_read_dir``). gVisor counterpart: pkg/sentry/fsimpl/tmpfs
(``filesystem``, ``directory``, ``regularFile``, ``regularFileFD``, ``directoryFD``).

Only what the message-queue tests need: directories and regular files (no symlinks, devices, links).
File data lives in a bytearray; the filesystem caps its total size (``size=`` option) so no guest
input makes the sentry allocate without bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EEXIST, EFBIG, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY
from mqsentry.abi.linux.file import (
    DT_DIR,
    O_APPEND,
    S_IFDIR,
    S_IFMT,
    S_IFREG,
    S_ISGID,
    S_ISVTX,
    SEEK_CUR,
    SEEK_SET,
    TMPFS_MAGIC,
    dtype_of,
)
from mqsentry.fs.vfs.file import MAX_LFS_FILESIZE, FileDescription, llseek_position
from mqsentry.fs.vfs.inode import Filesystem, Inode, StatFS, may_delete
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.context import VFSTask
    from mqsentry.kernel.context import TaskContext

#: BOGO_DIRENT_SIZE: what each entry adds to a tmpfs directory's st_size.
BOGO_DIRENT_SIZE = 20
#: Default capacity of one tmpfs instance in this model (Linux: half of RAM).
DEFAULT_SIZE = 64 << 20
PAGE = 4096


class TmpfsFilesystem(Filesystem):
    """One tmpfs instance. ``_space_mu`` guards ``used`` (bytes of file data); ``size_limit`` and
    ``inode_limit`` are immutable."""

    fs_type = "tmpfs"
    magic = TMPFS_MAGIC

    def __init__(self, dev: int, mode: int = 0o1777, uid: int = 0, gid: int = 0, now_ns: int = 0,
                 size_limit: int = DEFAULT_SIZE, inode_limit: int = 1 << 20) -> None:
        import threading

        super().__init__(dev)
        self._space_mu = threading.Lock()
        self.used = 0
        self.inodes = 0
        self.size_limit = size_limit
        self.inode_limit = inode_limit
        self.root = TmpfsDir(self, S_IFDIR | mode, uid, gid, now_ns)

    def charge(self, delta: int) -> None:
        """Account ``delta`` bytes of file data; ENOSPC past the size limit."""
        with self._space_mu:
            if delta > 0 and self.used + delta > self.size_limit:
                raise SysError(ENOSPC)
            self.used += delta

    def statfs(self, t: TaskContext) -> StatFS:
        with self._space_mu:
            blocks = self.size_limit // PAGE
            free = blocks - (self.used + PAGE - 1) // PAGE
        return StatFS(type=TMPFS_MAGIC, bsize=PAGE, blocks=blocks, bfree=free, bavail=free,
                      files=self.inode_limit, ffree=self.inode_limit - self.inodes, namelen=255, frsize=PAGE)


class TmpfsFile(Inode):
    """A regular file. ``mu`` (from Inode) also guards ``data``."""

    def __init__(self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int, now_ns: int) -> None:
        super().__init__(fs, mode, uid, gid, now_ns)
        self.data = bytearray()

    def size(self) -> int:
        return len(self.data)

    def open(self, t: TaskContext, flags: int) -> FileDescription:
        return TmpfsFileFD(flags, self)

    def truncate(self, t: TaskContext, length: int) -> None:
        fs: TmpfsFilesystem = self.fs  # type: ignore[assignment]
        with self.mu:
            delta = length - len(self.data)
            fs.charge(delta)
            if delta > 0:
                self.data.extend(bytes(delta))
            else:
                del self.data[length:]
            self.mtime_ns = self.ctime_ns = t.kernel.clock.now_ns()


class TmpfsDir(Inode):
    """A directory. ``mu`` (from Inode) also guards ``children`` (name -> inode, in creation order)."""

    def __init__(self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int, now_ns: int) -> None:
        super().__init__(fs, mode, uid, gid, now_ns, nlink=2)
        self.children: dict[str, Inode] = {}

    def size(self) -> int:
        return (2 + len(self.children)) * BOGO_DIRENT_SIZE

    def lookup(self, t: TaskContext, name: str) -> Inode:
        child = self.children.get(name)
        if child is None:
            raise SysError(ENOENT)
        return child

    def _owner(self, t: TaskContext, mode: int) -> tuple[int, int, int]:
        """``inode_init_owner``: fsuid, and the directory's group if it is set-group-ID."""
        creds = t.creds
        gid = creds.fsgid
        with self.mu:
            if self.mode & S_ISGID:
                gid = self.gid
                if mode & S_IFMT == S_IFDIR:
                    mode |= S_ISGID
        return creds.fsuid, gid, mode

    def _insert(self, t: TaskContext, name: str, child: Inode) -> None:
        fs: TmpfsFilesystem = self.fs  # type: ignore[assignment]
        with self.mu:
            if name in self.children:
                raise SysError(EEXIST)
            if fs.inodes >= fs.inode_limit:
                raise SysError(ENOSPC)
            fs.inodes += 1
            self.children[name] = child
            if child.is_dir():
                self.nlink += 1
            self.mtime_ns = self.ctime_ns = t.kernel.clock.now_ns()

    def create(self, t: TaskContext, name: str, mode: int, flags: int) -> FileDescription:
        uid, gid, mode = self._owner(t, S_IFREG | (mode & 0o7777))
        f = TmpfsFile(self.fs, mode, uid, gid, t.kernel.clock.now_ns())  # type: ignore[arg-type]
        self._insert(t, name, f)
        return f.open(t, flags)

    def mkdir(self, t: TaskContext, name: str, mode: int) -> Inode:
        uid, gid, mode = self._owner(t, S_IFDIR | (mode & 0o7777))
        d = TmpfsDir(self.fs, mode, uid, gid, t.kernel.clock.now_ns())  # type: ignore[arg-type]
        self._insert(t, name, d)
        return d

    def _remove(self, t: TaskContext, name: str, want_dir: bool) -> None:
        victim = self.lookup(t, name)
        may_delete(t, self, victim)
        if want_dir:
            if not victim.is_dir():
                raise SysError(ENOTDIR)
        elif victim.is_dir():
            raise SysError(EISDIR)
        fs: TmpfsFilesystem = self.fs  # type: ignore[assignment]
        now = t.kernel.clock.now_ns()
        with self.mu:
            if self.children.get(name) is not victim:
                raise SysError(ENOENT)
            if want_dir:
                if victim.children:  # type: ignore[attr-defined]
                    raise SysError(ENOTEMPTY)
                self.nlink -= 1
            del self.children[name]
            fs.inodes -= 1
            self.mtime_ns = self.ctime_ns = now
        with victim.mu:
            victim.nlink = 0 if want_dir else victim.nlink - 1
            victim.ctime_ns = now
        if not want_dir and victim.nlink == 0:
            fs.charge(-len(victim.data))  # type: ignore[attr-defined]

    def unlink(self, t: TaskContext, name: str) -> None:
        self._remove(t, name, want_dir=False)

    def rmdir(self, t: TaskContext, name: str) -> None:
        self._remove(t, name, want_dir=True)

    def readdir(self) -> list[tuple[str, Inode]]:
        with self.mu:
            return list(self.children.items())

    def open(self, t: TaskContext, flags: int) -> FileDescription:
        return TmpfsDirFD(flags, self)


class TmpfsFileFD(FileDescription):
    """An open regular file (``mu`` guards ``pos``, from FileDescription). tmpfs files have no poll
    method: poll reports DEFAULT_POLLMASK and epoll refuses them (EPERM)."""

    pollable = False

    def read(self, t: TaskContext, n: int, offset: int | None) -> bytes:
        inode: TmpfsFile = self.inode  # type: ignore[assignment]
        with self.mu:
            pos = self.pos if offset is None else offset
            with inode.mu:
                data = bytes(inode.data[pos:pos + n]) if pos < len(inode.data) else b""
            if offset is None:
                self.pos = pos + len(data)
        return data

    def write(self, t: TaskContext, data: bytes, offset: int | None) -> int:
        inode: TmpfsFile = self.inode  # type: ignore[assignment]
        fs: TmpfsFilesystem = inode.fs  # type: ignore[assignment]
        with self.mu:
            with inode.mu:
                size = len(inode.data)
                if self.flags & O_APPEND:
                    pos = size
                else:
                    pos = self.pos if offset is None else offset
                if not data:
                    return 0
                end = pos + len(data)
                if end > MAX_LFS_FILESIZE:
                    raise SysError(EFBIG)
                if end > size:
                    fs.charge(end - size)
                    if pos > size:
                        inode.data.extend(bytes(pos - size))
                inode.data[pos:end] = data
                inode.mtime_ns = inode.ctime_ns = t.kernel.clock.now_ns()
            if offset is None:
                self.pos = end
        return len(data)

    def seek(self, t: TaskContext, offset: int, whence: int) -> int:
        """``generic_file_llseek``."""
        inode: TmpfsFile = self.inode  # type: ignore[assignment]
        with self.mu:
            self.pos = llseek_position(self.pos, len(inode.data), offset, whence)
            return self.pos


class TmpfsDirFD(FileDescription):
    """An open directory: ``pos`` (guarded by ``mu``) counts the entries getdents64 returned."""

    pollable = False

    def read(self, t: TaskContext, n: int, offset: int | None) -> bytes:
        raise SysError(EISDIR)

    def seek(self, t: TaskContext, offset: int, whence: int) -> int:
        """``offset_dir_llseek``: SEEK_SET and SEEK_CUR only, never negative."""
        with self.mu:
            if whence == SEEK_CUR:
                offset += self.pos
            elif whence != SEEK_SET:
                raise SysError(EINVAL)
            if offset < 0:
                raise SysError(EINVAL)
            self.pos = offset
            return offset

    def iterate_dir(self, t: TaskContext) -> list[tuple[str, int, int]]:
        inode = self.inode
        assert inode is not None
        parent = self.path.parent if self.path is not None else None
        pino = parent.inode.ino if parent is not None else inode.ino
        out = [(".", inode.ino, DT_DIR), ("..", pino, DT_DIR)]
        out.extend((name, child.ino, dtype_of(child.mode)) for name, child in inode.readdir())
        return out


def new_root_fs(dev: int, now_ns: int) -> TmpfsFilesystem:
    """The root filesystem of a kernel: "/" (0755) with "/tmp" (01777) and "/dev" (0755)."""
    fs = TmpfsFilesystem(dev, mode=0o755, now_ns=now_ns)
    root: TmpfsDir = fs.root  # type: ignore[assignment]
    for name, mode in (("tmp", S_ISVTX | 0o777), ("dev", 0o755)):
        d = TmpfsDir(fs, S_IFDIR | mode, 0, 0, now_ns)
        root.children[name] = d
        root.nlink += 1
        fs.inodes += 1
    return fs


def _parse_size(v: str) -> int:
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1:].lower(), 1)
    num = v[:-1] if mult != 1 else v
    if not num.isdigit():
        raise SysError(EINVAL)
    return int(num) * mult


def new_tmpfs(t: VFSTask, source: str, flags: int, data: bytes) -> TmpfsFilesystem:
    """mount(2)'s "tmpfs": ``shmem_parse_one`` options mode=, uid=, gid=, size=, nr_inodes= (EINVAL for
    anything else). The size is capped at the model's DEFAULT_SIZE (memory is the host's)."""
    mode, uid, gid, size, inodes = 0o1777, t.creds.fsuid, t.creds.fsgid, DEFAULT_SIZE, 1 << 20
    text = data.split(b"\0", 1)[0].decode("utf-8", "replace")
    for opt in filter(None, text.split(",")):
        key, _, val = opt.partition("=")
        try:
            if key == "mode":
                mode = int(val, 8) & 0o7777
            elif key == "uid":
                uid = int(val)
            elif key == "gid":
                gid = int(val)
            elif key == "size":
                size = min(_parse_size(val), DEFAULT_SIZE)
            elif key == "nr_inodes":
                inodes = min(_parse_size(val), 1 << 20)
            elif key in ("rw", "ro", "noatime", "relatime", "nosuid", "nodev", "noexec", "strictatime"):
                pass
            else:
                raise SysError(EINVAL)
        except ValueError:
            raise SysError(EINVAL) from None
    return TmpfsFilesystem(t.vfs.alloc_anon_dev(), mode=mode, uid=uid, gid=gid,
                           now_ns=t.kernel.clock.now_ns(), size_limit=size, inode_limit=inodes)


__all__ = ["new_tmpfs", "TmpfsFilesystem", "TmpfsDir", "TmpfsFile", "TmpfsFileFD", "TmpfsDirFD", "new_root_fs"]
