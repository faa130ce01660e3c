"""The interface both test targets implement.

A :class:`Target` is one test's world: on ``sentry`` a fresh ``Kernel``; on ``native`` a private IPC
(and mount) namespace on the host kernel, owned by a root helper process. A :class:`TaskHandle` is one
thread of one process in that world. Every operation a test performs goes through ``syscall`` with
raw numbers and memory addresses, so the same test code drives both targets.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signal delivered to a handler installed through the target's handler stub."""

    signo: int
    code: int
    pid: int
    uid: int
    value: int


class TaskHandle(abc.ABC):
    """One thread of a process in the target."""

    target: Target
    #: Process id (thread group id) and thread id as the target's getpid/gettid report them.
    pid: int
    tid: int

    @abc.abstractmethod
    def syscall(self, nr: int, *args: int) -> int:
        """Run a raw syscall on this thread: the result, or -errno (Linux values)."""

    @abc.abstractmethod
    def alloc(self, n: int) -> int:
        """Map ``n`` bytes (zeroed, followed by an unmapped guard page) in the process; the address."""

    @abc.abstractmethod
    def read(self, addr: int, n: int) -> bytes:
        """Read process memory."""

    @abc.abstractmethod
    def write(self, addr: int, data: bytes) -> None:
        """Write process memory."""

    @abc.abstractmethod
    def fork(self) -> TaskHandle:
        """A new process forked from this thread (same namespace, credentials, signal actions)."""

    @abc.abstractmethod
    def thread(self) -> TaskHandle:
        """A new thread in this process (same credentials and signal mask as this thread)."""

    @abc.abstractmethod
    def deliveries(self) -> list[Delivery]:
        """Signals delivered to the target's handler stub in this process so far, in order."""

    @abc.abstractmethod
    def is_blocked(self) -> bool:
        """True while this thread sleeps inside a syscall issued through :meth:`syscall`."""

    @abc.abstractmethod
    def exit(self) -> None:
        """End this thread (the process ends with its last thread)."""


class Target(abc.ABC):
    """One test's kernel."""

    #: "sentry" or "native".
    name: str
    #: "amd64" or "arm64": the syscall numbering to use.
    arch: str
    #: An address that is never mapped in any process (EFAULT when used).
    bad_addr: int
    #: Addresses to put in ``struct sigaction``: a handler that records siginfo (use SA_SIGINFO) and
    #: the restorer to pass with SA_RESTORER.
    handler_addr: int
    restorer_addr: int
    #: A fresh, empty directory for this test (removed by :meth:`close`), for tests that mount
    #: things (e.g. an mqueue filesystem): on ``native`` it lies in the test's private mount namespace.
    scratch_dir: str

    @abc.abstractmethod
    def spawn(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] = (), caps: int | None = None) -> TaskHandle:
        """A new process in this test's IPC namespace. Without arguments it is root with every
        capability. With ``uid``/``gid``/``groups`` its real, effective, saved and fs ids are those;
        ``caps`` (a mask of ``1 << CAP_*``) sets its permitted and effective capabilities (default:
        Linux's rule, full for uid 0 and none otherwise)."""

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """Read a /proc file as root inside the test's namespaces (e.g. /proc/sysvipc/msg)."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None:
        """Write a /proc file as root inside the test's namespaces (e.g. /proc/sys/kernel/msgmax).
        Raises OSError-like ``LinuxError`` with Linux's errno on failure."""

    def set_clock(self, seconds: float) -> bool:
        """Move CLOCK_REALTIME forward (sentry with a manual clock only); False if not supported."""
        return False

    @abc.abstractmethod
    def close(self) -> None:
        """Tear down every process and namespace of this test."""
