"""The mqueue filesystem: one per IPC namespace, the namespace's POSIX queue registry.

Linux counterpart: ipc/mqueue.c (``mqueue_fs_type``, ``mq_init_ns``/``mq_create_mount``,
``mqueue_get_tree`` which hands every mount the mounter's namespace's superblock). gVisor counterpart:
pkg/sentry/fsimpl/mqfs (``FilesystemType.GetFilesystem`` returns the caller's namespace's fs).

The filesystem of a namespace is created on first use and kept as ``ns.mqueue_fs``; mount(2) of type
"mqueue" returns it, so every mount in one namespace shows the same tree.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.fs.mqfs.file import QueueFD, RootDirFD
from mqsentry.fs.mqfs.filesystem import (MqueueFilesystem, QueueInode, RootDir, check_name, decode_name,
                                reap_dead_namespaces)
from mqsentry.fs.vfs.context import kernel_vfs
from mqsentry.fs.vfs.mount import FILESYSTEM_TYPES
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.kernel.ipc_namespace import IPCNamespace
    from mqsentry.kernel.task import Task

_attach_mu = threading.Lock()

#: Mount options every filesystem accepts (``vfs_parse_sb_flag``); mqueue has no options of its own.
_SB_OPTIONS = frozenset({"ro", "rw", "dirsync", "lazytime", "nolazytime", "mand", "nomand", "sync", "async"})


def mqueue_fs(ns: "IPCNamespace") -> MqueueFilesystem:
    """The mqueue filesystem of ``ns`` (``ns->mq_mnt``), created on first use."""
    fs = getattr(ns, "mqueue_fs", None)
    if fs is None:
        with _attach_mu:
            fs = getattr(ns, "mqueue_fs", None)
            if fs is None:
                k = ns.kernel
                fs = MqueueFilesystem(ns, kernel_vfs(k).alloc_anon_dev())
                ns.mqueue_fs = fs  # type: ignore[attr-defined]
                # Every namespace's filesystem, for reap_dead_namespaces (RLIMIT_MSGQUEUE).
                registry = getattr(k, "mq_filesystems", None)
                if registry is None:
                    registry = k.mq_filesystems = []  # type: ignore[attr-defined]
                registry.append(fs)
    return fs


def _get_filesystem(t: "Task", source: str, flags: int, data: bytes) -> MqueueFilesystem:
    """``mqueue_get_tree``: the mounter's IPC namespace's filesystem; unknown options are EINVAL."""
    text = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if data else ""
    for opt in text.split(","):
        if opt and opt.split("=", 1)[0] not in _SB_OPTIONS and opt.split("=", 1)[0] != "source":
            raise SysError(EINVAL)
    return mqueue_fs(t.ipc_ns)


FILESYSTEM_TYPES["mqueue"] = _get_filesystem

__all__ = ["mqueue_fs", "reap_dead_namespaces", "MqueueFilesystem", "QueueInode", "RootDir", "QueueFD", "RootDirFD", "check_name",
           "decode_name"]
