"""Mounts, mount namespaces, paths and filesystem types.

Linux counterpart: fs/namespace.c (``struct mount``, ``struct mnt_namespace``, ``copy_mnt_ns``,
``do_new_mount``, ``graft_tree``, ``do_umount``, ``lookup_mnt``) and fs/filesystems.c
(``get_fs_type``). gVisor counterpart: pkg/sentry/vfs/mount.go (``Mount``, ``MountNamespace``,
``MountAt``, ``UmountAt``, ``CloneMountNamespace``), pkg/sentry/vfs/filesystem_type.go
(``RegisterFilesystemType``) and vfs.go (``VirtualDentry``).

A :class:`Path` is Linux's ``struct path`` (mount + dentry) plus the chain of parents it was reached
by, so ".." works without parent pointers in inodes. Mounts are keyed by where they are attached:
(parent mount, mount-point inode) -> stack of mounts, the last one visible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mqsentry.fs.vfs.inode import Filesystem, Inode


class Mount:
    """One mount (Linux ``struct mount``).

    Immutable: ``fs``, ``root``, ``parent``, ``mountpoint``. ``_mu`` guards ``flags``, ``_refs``
    (open descriptions on this mount: a busy mount cannot be unmounted without MNT_DETACH),
    ``expiry_mark`` and ``attached``.
    """

    __slots__ = ("fs", "root", "parent", "mountpoint", "flags", "_mu", "_refs", "expiry_mark", "attached")

    def __init__(self, fs: Filesystem, root: Inode, parent: Mount | None, mountpoint: Path | None,
                 flags: int = 0) -> None:
        self.fs = fs
        self.root = root
        self.parent = parent
        self.mountpoint = mountpoint
        self.flags = flags
        self._mu = threading.Lock()
        self._refs = 0
        self.expiry_mark = False
        self.attached = True

    def get(self) -> None:
        with self._mu:
            self._refs += 1

    def put(self) -> None:
        with self._mu:
            self._refs -= 1

    def busy(self) -> bool:
        with self._mu:
            return self._refs > 0

    def __repr__(self) -> str:
        return f"<Mount {self.fs.fs_type} root_ino={self.root.ino}>"


class Path:
    """A location: a mount, an inode in it, and the path it was reached by (immutable).

    ``parent`` is the directory this was looked up in (None at the namespace root); at a mount's root
    it is the parent of the mount point, so ".." leaves the mount as Linux's ``follow_dotdot`` does.
    """

    __slots__ = ("mount", "inode", "parent", "name")

    def __init__(self, mount: Mount, inode: Inode, parent: Path | None, name: str) -> None:
        self.mount = mount
        self.inode = inode
        self.parent = parent
        self.name = name

    def is_mount_root(self) -> bool:
        return self.inode is self.mount.root

    def dotdot(self) -> Path:
        return self.parent if self.parent is not None else self

    def __repr__(self) -> str:
        return f"<Path {self.name!r} ino={self.inode.ino} on {self.mount!r}>"


class MountNamespace:
    """A mount namespace (Linux ``struct mnt_namespace``).

    ``mu`` guards ``_mounts`` ((parent mount, mount-point inode) -> mounts stacked there, last on
    top) and ``_children`` (mount -> number of mounts attached below it). ``root`` is immutable.
    Lock order: ``MountNamespace.mu`` -> ``Mount._mu``; no filesystem operation runs under ``mu``.
    """

    def __init__(self, root: Mount) -> None:
        self.mu = threading.Lock()
        self.root = root
        self._mounts: dict[tuple[Mount, Inode], list[Mount]] = {}
        self._children: dict[Mount, int] = {}

    def root_path(self) -> Path:
        p = Path(self.root, self.root.root, None, "/")
        return self.follow_mounts(p)

    def follow_mounts(self, p: Path) -> Path:
        """``follow_managed``/``traverse_mounts``: the topmost mount attached at ``p``, repeatedly."""
        mounts = self._mounts
        if not mounts:
            return p
        while True:
            stack = mounts.get((p.mount, p.inode))
            if not stack:
                return p
            m = stack[-1]
            p = Path(m, m.root, p.parent, p.name)

    def is_mountpoint(self, p: Path) -> bool:
        return bool(self._mounts.get((p.mount, p.inode)))

    def attach(self, m: Mount) -> None:
        """``graft_tree``: make ``m`` visible at its mount point."""
        mp = m.mountpoint
        assert mp is not None and m.parent is not None
        with self.mu:
            self._mounts.setdefault((m.parent, mp.inode), []).append(m)
            self._children[m.parent] = self._children.get(m.parent, 0) + 1

    def has_children(self, m: Mount) -> bool:
        with self.mu:
            return self._children.get(m, 0) > 0

    def top_at(self, parent: Mount, inode: Inode) -> Mount | None:
        with self.mu:
            stack = self._mounts.get((parent, inode))
            return stack[-1] if stack else None

    def detach(self, m: Mount) -> None:
        """``umount_tree``: remove ``m`` and everything mounted below it."""
        with self.mu:
            todo = [m]
            while todo:
                cur = todo.pop()
                cur.attached = False
                key = (cur.parent, cur.mountpoint.inode) if cur.parent is not None and cur.mountpoint else None
                if key is not None and cur.parent is not None:
                    stack = self._mounts.get(key)
                    if stack and cur in stack:
                        stack.remove(cur)
                        if not stack:
                            del self._mounts[key]
                        n = self._children.get(cur.parent, 1) - 1
                        if n:
                            self._children[cur.parent] = n
                        else:
                            self._children.pop(cur.parent, None)
                todo.extend(c for (pm, _), st in self._mounts.items() if pm is cur for c in st)

    def contains(self, m: Mount) -> bool:
        """``check_mnt``: ``m`` belongs to (and is attached in) this namespace."""
        if m is self.root:
            return True
        with self.mu:
            if m.parent is None or m.mountpoint is None:
                return False
            return m in self._mounts.get((m.parent, m.mountpoint.inode), ())

    def mounts(self) -> list[Mount]:
        """Every mount, root first (diagnostics)."""
        with self.mu:
            return [self.root] + [m for st in self._mounts.values() for m in st]

    def clone(self) -> tuple[MountNamespace, dict[Mount, Mount]]:
        """``copy_mnt_ns``: a new namespace with a copy of every mount (same filesystems). Returns the
        namespace and the old -> new mount map (to move the caller's root and cwd across)."""
        with self.mu:
            items = [(k, list(v)) for k, v in self._mounts.items()]
        mapping: dict[Mount, Mount] = {}

        def copy(m: Mount) -> Mount:
            got = mapping.get(m)
            if got is not None:
                return got
            if m.parent is None or m.mountpoint is None:
                new = Mount(m.fs, m.root, None, None, m.flags)
            else:
                parent = copy(m.parent)
                mp = m.mountpoint
                new = Mount(m.fs, m.root, parent, _remap_path(mp, copy), m.flags)
            mapping[m] = new
            return new

        ns = MountNamespace(copy(self.root))
        for (_, _), stack in items:
            for m in stack:
                ns.attach(copy(m))
        return ns, mapping


def _remap_path(p: Path | None, copy: Callable[[Mount], Mount]) -> Path | None:
    if p is None:
        return None
    return Path(copy(p.mount), p.inode, _remap_path(p.parent, copy), p.name)


def remap_path(p: Path, mapping: dict[Mount, Mount]) -> Path:
    """Move a path of an old namespace onto the cloned one (mounts not in ``mapping`` stay)."""
    parent = remap_path(p.parent, mapping) if p.parent is not None else None
    return Path(mapping.get(p.mount, p.mount), p.inode, parent, p.name)


__all__ = ["Mount", "MountNamespace", "Path", "remap_path"]
