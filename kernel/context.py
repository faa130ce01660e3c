"""The task and kernel as the layers below the kernel core see them: typed interfaces (Protocols).

Linux counterpart: ``current`` and the parts of ``struct task_struct`` an IPC engine or a filesystem
reads (``current_cred()``, ``rlimit()``, ``schedule_timeout`` through wait queues, ``signal_pending``).
gVisor counterpart: pkg/context (``context.Context``: ``Blocker``, credentials, clock) and the small
interfaces pkg/sentry/kernel/mq and pkg/sentry/vfs take instead of ``*kernel.Task``.

The IPC engines (``mqsentry.kernel.ipc``, ``mqsentry.kernel.msgqueue``, ``mqsentry.kernel.mq``) and the
filesystems (``mqsentry.fs``) sit below the kernel core (``mqsentry.kernel.kernel``, ``mqsentry.kernel.task``)
in the one-way import order, so they may not name :class:`~mqsentry.kernel.task.Task` or
:class:`~mqsentry.kernel.kernel.Kernel`; they take these Protocols, which ``Task`` and ``Kernel`` satisfy
structurally (mypy checks it at every call).
"""

from __future__ import annotations

from typing import Protocol

from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.auth.user_namespace import UserNamespace
from mqsentry.kernel.ktime import Clock


class KernelContext(Protocol):
    """What lower layers use of the kernel: its clock, its architecture, process-directed signals."""

    @property
    def clock(self) -> Clock: ...

    @property
    def arch(self) -> str: ...

    def send_process_signal(self, tgid: int, signo: int, code: int, pid: int, uid: int, value: int,
                            sender_ns: UserNamespace | None = None) -> bool:
        """Queue ``signo`` for process ``tgid`` as the kernel itself would (no permission check);
        False if there is no such live process."""
        ...

    def note_internal_error(self, where: str, exc: BaseException) -> None:
        """Count (``Kernel.internal_errors``) and log a sentry bug that the caller contained."""
        ...


class ThreadGroupContext(Protocol):
    """What lower layers use of a process: its id and resource limits."""

    @property
    def tgid(self) -> int: ...

    @property
    def rlimits(self) -> list[tuple[int, int]]: ...


class TaskContext(Protocol):
    """What lower layers use of the calling thread (gVisor's ``context.Context`` of a task)."""

    @property
    def tid(self) -> int: ...

    @property
    def kernel(self) -> KernelContext: ...

    @property
    def tg(self) -> ThreadGroupContext: ...

    @property
    def creds(self) -> Credentials: ...

    @property
    def sigpending(self) -> bool: ...

    @property
    def exited(self) -> bool: ...

    def wake(self) -> None: ...

    def block(self, deadline_ns: int | None = None) -> int: ...

    def clear_wakeup(self) -> None: ...

    def copy_in(self, addr: int, n: int) -> bytes: ...

    def copy_out(self, addr: int, data: bytes) -> None: ...

    def copy_in_string(self, addr: int, maxlen: int) -> bytes | None: ...


__all__ = ["KernelContext", "ThreadGroupContext", "TaskContext"]
