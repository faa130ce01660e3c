"""Path name resolution.

Linux counterpart: fs/namei.c (``getname``, ``path_init``, ``link_path_walk``, ``may_lookup``,
``walk_component``, ``follow_dotdot``, ``filename_parentat``) and fs/namespace.c
(``traverse_mounts``). gVisor counterpart: pkg/sentry/vfs/resolving_path.go and
pkg/sentry/syscalls/linux/path.go (``copyInPath``, ``getTaskPathOperation``).

The sentry has no symbolic links, so there is nothing to follow; ``O_NOFOLLOW`` and
``AT_SYMLINK_NOFOLLOW`` change nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from mqsentry.abi.linux.errno import EBADF, ENAMETOOLONG, ENOENT, ENOTDIR
from mqsentry.abi.linux.file import AT_FDCWD, NAME_MAX, PATH_MAX
from mqsentry.fs.vfs.context import fd_table, fs_context, mount_ns
from mqsentry.fs.vfs.inode import MAY_EXEC
from mqsentry.fs.vfs.mount import Path
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.context import VFSTask

#: Kinds of final component (Linux LAST_NORM / LAST_ROOT / LAST_DOT / LAST_DOTDOT).
LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = 0, 1, 2, 3


def getname(t: VFSTask, addr: int, allow_empty: bool = False) -> str:
    """``getname``: copy a path from user memory. EFAULT, ENAMETOOLONG (no NUL within PATH_MAX) or
    ENOENT (empty, unless ``allow_empty``). Bytes that are not UTF-8 survive via surrogateescape."""
    raw = t.copy_in_string(addr, PATH_MAX)
    if raw is None:
        raise SysError(ENAMETOOLONG)
    if not raw and not allow_empty:
        raise SysError(ENOENT)
    return raw.decode("utf-8", "surrogateescape")


def _start(t: VFSTask, dirfd: int, path: str) -> Path:
    """``path_init``: the root for absolute paths, else the cwd or the directory ``dirfd``."""
    if path.startswith("/"):
        ctx = fs_context(t)
        return mount_ns(t).follow_mounts(ctx.root)
    if dirfd == AT_FDCWD:
        return fs_context(t).cwd
    desc = fd_table(t).get(dirfd) if dirfd >= 0 else _ebadf()
    p = desc.path
    if p is None or not p.inode.is_dir():
        raise SysError(ENOTDIR)
    return p


def _ebadf() -> NoReturn:
    raise SysError(EBADF)


def fd_path(t: VFSTask, fd: int) -> Path | None:
    """The path a descriptor was opened through (None for pathless files); EBADF."""
    return fd_table(t).get(fd).path


def _step(t: VFSTask, p: Path, name: str) -> Path:
    """One component of ``link_path_walk``: search permission on ``p``, then the lookup."""
    inode = p.inode
    if not inode.is_dir():
        raise SysError(ENOTDIR)
    inode.check_permission(t.creds, MAY_EXEC)
    if name == ".":
        return p
    if name == "..":
        return p.dotdot()
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise SysError(ENAMETOOLONG)
    child = inode.lookup(t, name)
    return mount_ns(t).follow_mounts(Path(p.mount, child, p, name))


def resolve(t: VFSTask, dirfd: int, path: str) -> Path:
    """Resolve every component of ``path`` (ENOENT, ENOTDIR, EACCES, ENAMETOOLONG). A trailing slash
    requires a directory."""
    p = _start(t, dirfd, path)
    for name in path.split("/"):
        if name:
            p = _step(t, p, name)
    if path.endswith("/") and not p.inode.is_dir():
        raise SysError(ENOTDIR)
    return p


def resolve_parent(t: VFSTask, dirfd: int, path: str) -> tuple[Path, str, int, bool]:
    """``filename_parentat``: (parent directory, last component, its kind LAST_*, trailing slash).

    Search permission is required on the parent too (``may_lookup`` runs before the last component
    is recognized)."""
    p = _start(t, dirfd, path)
    names = [n for n in path.split("/") if n]
    if not names:
        return p, "", LAST_ROOT, False
    for name in names[:-1]:
        p = _step(t, p, name)
    if not p.inode.is_dir():
        raise SysError(ENOTDIR)
    p.inode.check_permission(t.creds, MAY_EXEC)
    last = names[-1]
    kind = LAST_DOT if last == "." else LAST_DOTDOT if last == ".." else LAST_NORM
    if kind == LAST_NORM and len(last.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise SysError(ENAMETOOLONG)
    return p, last, kind, path.endswith("/")


def lookup_child(t: VFSTask, parent: Path, name: str) -> Path:
    """Look ``name`` up in ``parent`` (already permission-checked), crossing mounts."""
    child = parent.inode.lookup(t, name)
    return mount_ns(t).follow_mounts(Path(parent.mount, child, parent, name))


__all__ = ["getname", "resolve", "resolve_parent", "lookup_child", "fd_path", "LAST_NORM", "LAST_ROOT",
           "LAST_DOT", "LAST_DOTDOT"]
