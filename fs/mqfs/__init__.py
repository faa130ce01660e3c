"""The mqueue filesystem: one per IPC namespace, the namespace's POSIX queue registry.

Linux counterpart: ipc/mqueue.c (``mqueue_fs_type``, ``mq_init_ns``/``mq_create_mount``,
``mqueue_get_tree`` which hands every mount the mounter's namespace's superblock). gVisor counterpart:
pkg/sentry/fsimpl/mqfs (``RegistryImpl``; ``FilesystemType.GetFilesystem`` returns the caller's
namespace's fs).

The IPC namespace creates its filesystem with the namespace (``mq_init_ns``) through the factory the
composition root (:mod:`mqsentry.boot`) gives the kernel, and keeps it as ``ns.posix_queues``; mount(2)
of type "mqueue" returns it (after :func:`check_mount_options`), so every mount in one namespace
shows the same tree.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.fs.mqfs.file import QueueFD, RootDirFD
from mqsentry.fs.mqfs.filesystem import MqueueFilesystem, MqueueHost, QueueInode, RootDir, check_name, decode_name
from mqsentry.kernel.errors import SysError

#: Mount options every filesystem accepts (``vfs_parse_sb_flag``); mqueue has no options of its own.
_SB_OPTIONS = frozenset({"ro", "rw", "dirsync", "lazytime", "nolazytime", "mand", "nomand", "sync", "async"})


def check_mount_options(data: bytes) -> None:
    """``mqueue_get_tree``'s option parsing: unknown options are EINVAL."""
    text = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if data else ""
    for opt in text.split(","):
        if opt and opt.split("=", 1)[0] not in _SB_OPTIONS and opt.split("=", 1)[0] != "source":
            raise SysError(EINVAL)


__all__ = ["check_mount_options", "MqueueFilesystem", "MqueueHost", "QueueInode", "RootDir", "QueueFD",
           "RootDirFD", "check_name", "decode_name"]
