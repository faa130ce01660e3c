"""The POSIX queue registry interface: what an IPC namespace's name space of queues offers.

Linux counterpart: ipc/mqueue.c, where the registry is the namespace's mqueue mount
(``ipc_ns->mq_mnt``): ``do_mq_open`` and ``mq_unlink`` look names up in its root, and
``put_ipc_ns``/``kill_litter_super`` drop them. gVisor counterpart: pkg/sentry/kernel/mq
(``Registry`` and the ``RegistryImpl`` interface that pkg/sentry/fsimpl/mqfs implements).

``mqsentry.fs.mqfs.MqueueFilesystem`` implements :class:`Registry`; the IPC namespace holds one, created by the
factory the composition root gives the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mqsentry.fs.vfs.file import FileDescription
    from mqsentry.kernel.context import TaskContext


class Registry(Protocol):
    """One IPC namespace's POSIX queues by name (gVisor ``mq.RegistryImpl``)."""

    def open_queue(self, t: TaskContext, name: str, oflag: int, mode: int, attr: tuple[int, int] | None,
                   umask: int) -> FileDescription:
        """``do_mq_open`` after the fd is reserved: look ``name`` up, create it or check access."""
        ...

    def unlink_queue(self, t: TaskContext, name: str) -> None:
        """``mq_unlink``."""
        ...

    def has_names(self) -> bool:
        """Whether any queue still has a name (a dead namespace's names may need dropping)."""
        ...

    def shown_elsewhere(self) -> bool:
        """Whether a mount the kernel's own mount namespaces do not hold shows the tree (a platform's
        FUSE mount of it in a host mount namespace): its names then outlive the namespace."""
        ...

    def drop_all_names(self) -> None:
        """The namespace died and nothing shows the tree any more: every name goes."""
        ...


__all__ = ["Registry"]
