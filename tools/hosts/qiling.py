"""Hosting in Qiling: the sentry serves a Qiling guest's SysV and POSIX message-queue calls.

Linux counterpart: the syscall entry of each architecture (the guest's registers, its memory and
its errno convention). gVisor counterpart: a platform (pkg/sentry/platform) handing syscalls to the
sentry. Needs the optional extra ``pip install 'mqsentry[qiling]'``.

:func:`install` replaces Qiling's handlers for msgget/msgsnd/msgrcv/msgctl, the six mq_* calls (and the
``_time64`` pair on 32-bit guests) and the message-queue calls of ipc(2) with the sentry's, through
``ql.os.set_syscall`` by number for the guest's architecture (i386, arm, mips, mipsel, x86_64,
arm64). Guest memory is read and written through ``ql.mem``; a unicorn fault becomes EFAULT where
Linux would fault. What Qiling limits, and how this host copes:

- **Descriptors.** A queue descriptor lives in the sentry's table; the guest sees a slot of Qiling's
  own fd table holding a :class:`SentryDescriptor` (so Qiling never hands the number out twice and its
  ``close`` releases the sentry's descriptor). Other calls on it (read, fcntl, dup, poll) reach
  Qiling, which knows nothing about queues.
- **Blocking.** Qiling runs the guest on one host thread (``multithread=True`` runs guest threads as
  gevent greenlets on that same thread), so nothing can wake a call that sleeps without a deadline: no
  other task exists to send or receive. Such a call is refused: the emulation stops with
  :class:`GuestWouldHang` (``host.hung`` says which call), where Linux would sleep forever. A call
  with a timeout sleeps until its deadline, as Linux does.
- **Processes and signals.** Qiling's fork runs the child in a new Qiling process whose sentry is a
  copy made at fork (queues are not shared with the parent). Qiling delivers no signals, so an
  mq_notify SIGEV_SIGNAL registration is accepted but never delivered, and SIGEV_THREAD (a netlink
  socket in Qiling's fd table) gives EBADF.
- **aarch64.** Qiling 1.4.6 (PyPI) stops Debian 12's aarch64 glibc programs at start-up ("_hook_intr_cb
  : not handled"), static or dynamic, before any IPC call; its git HEAD (da210f07) runs them.
- **ipc(2).** Its shared-memory calls that Qiling implements (shmat, shmdt, shmget) go to Qiling's own
  ``ql_syscall_ipc``; the message-queue calls are the sentry's; the rest give ENOSYS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.abi32 import ABIS32
from mqsentry.abi.linux.errno import EMFILE
from mqsentry.boot import Kernel
from mqsentry.kernel.task import Task

if TYPE_CHECKING:
    from qiling import Qiling

#: The calls this host serves (a name an architecture lacks is skipped).
SERVED = ("msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
          "mq_timedsend_time64", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr", "ipc")
#: Calls whose first argument is a queue descriptor (translated from Qiling's fd to the sentry's).
_MQDES_FIRST = frozenset({"mq_timedsend", "mq_timedreceive", "mq_timedsend_time64", "mq_timedreceive_time64",
                          "mq_notify", "mq_getsetattr"})
#: ipc(2) calls Qiling implements itself (SHMAT, SHMDT, SHMGET): they stay Qiling's. The sentry serves
#: the rest: the message-queue calls, and ENOSYS for the others.
_IPC_QILING_CALLS = frozenset({21, 22, 23})
#: An fd no sentry table holds: a Qiling fd that is not a queue becomes this, so the sentry gives EBADF
#: at the point Linux would.
_NOT_A_QUEUE = 0x7FFF_FFFF


class GuestWouldHang(BaseException):
    """A served call would sleep with nothing in the emulation able to wake it (see module doc).

    A BaseException: the sentry turns ordinary exceptions into errno values, this one must reach the
    host and stop the emulation.
    """


def arch_of(ql: Qiling) -> str:
    """The sentry's name for Qiling's architecture."""
    from qiling.const import QL_ARCH, QL_ENDIAN

    t = ql.arch.type
    if t == QL_ARCH.X86:
        return "i386"
    if t == QL_ARCH.X8664:
        return "amd64"
    if t == QL_ARCH.ARM:
        return "arm"
    if t == QL_ARCH.ARM64:
        return "arm64"
    if t == QL_ARCH.MIPS:
        return "mipsel" if ql.arch.endian == QL_ENDIAN.EL else "mips"
    raise ValueError(f"mqsentry cannot serve a {t.name} guest")


class QilingMemory:
    """Guest memory through ``ql.mem`` (the sentry's Memory protocol); unicorn faults propagate and
    become EFAULT in the sentry."""

    __slots__ = ("_mem",)

    def __init__(self, ql: Qiling) -> None:
        self._mem = ql.mem

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self._mem.read(addr, n))

    def write(self, addr: int, data: bytes) -> None:
        self._mem.write(addr, bytes(data))


class SentryDescriptor:
    """The placeholder a queue descriptor occupies in Qiling's fd table; closing it closes the
    sentry's descriptor."""

    def __init__(self, host: QilingHost, sfd: int) -> None:
        self.host = host
        self.sfd = sfd

    def close(self) -> None:
        self.host.task.syscall(self.host.close_nr, self.sfd)

    def fileno(self) -> int:
        return -1

    def __repr__(self) -> str:
        return f"<mqsentry queue descriptor {self.sfd}>"


class QilingHost:
    """The sentry installed in one Qiling instance.

    Used by the emulation's one host thread only (Qiling's threads are greenlets on it), so no lock.
    ``calls`` counts served calls by name; ``hung`` names the call refused by :class:`GuestWouldHang`.
    """

    def __init__(self, ql: Qiling, kernel: Kernel | None = None) -> None:
        from qiling.os.posix.syscall.unistd import ql_syscall_getpid

        self.ql = ql
        self.arch = arch_of(ql)
        self.kernel = kernel if kernel is not None else Kernel(arch=self.arch)
        if self.kernel.arch != self.arch:
            raise ValueError(f"kernel is {self.kernel.arch}, the guest is {self.arch}")
        # The task is the guest process as Qiling presents it: its pid, its credentials.
        self.task: Task = self.kernel.new_task(uid=ql.os.euid, gid=ql.os.egid, pid=ql_syscall_getpid(ql),
                                              mm=QilingMemory(ql))
        self.task.block = self._block  # type: ignore[method-assign]
        self.numbers = sysno.NUMBERS[self.arch]
        self.close_nr = self.numbers["close"]
        self.calls: dict[str, int] = {}
        self.hung: str | None = None
        self._real_block = Task.block.__get__(self.task)
        self._current = ""

    # -- installation ----------------------------------------------------------------------------------
    def install(self) -> QilingHost:
        table = self.kernel.syscall_table
        for name in SERVED:
            nr = self.numbers.get(name)
            if nr is None or nr not in table.handlers:
                continue
            self.ql.os.set_syscall(nr, self._handler(name, nr))
        return self

    def _handler(self, name: str, nr: int) -> Callable[..., int | None]:
        # Qiling counts the named parameters after ``ql`` to know how many registers to read: six.
        if name == "ipc":
            def ipc(ql: Any, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int | None:
                if a0 & 0xFFFF in _IPC_QILING_CALLS:
                    from qiling.os.posix.syscall.syscall import ql_syscall_ipc
                    return ql_syscall_ipc(ql, a0, a1, a2, a3, a4, a5)  # type: ignore[no-any-return]
                return self.serve(name, nr, a0, a1, a2, a3, a4, a5)
            ipc.__name__ = "ql_syscall_ipc"
            return ipc
        if name == "mq_open":
            def mq_open(ql: Any, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
                sfd = self.serve(name, nr, a0, a1, a2, a3, a4, a5)
                return sfd if sfd < 0 else self._guest_fd(sfd)
            mq_open.__name__ = "ql_syscall_mq_open"
            return mq_open
        if name in _MQDES_FIRST:
            def with_mqdes(ql: Any, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
                return self.serve(name, nr, self._sentry_fd(a0), a1, a2, a3, a4, a5)
            with_mqdes.__name__ = f"ql_syscall_{name}"
            return with_mqdes

        def plain(ql: Any, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
            return self.serve(name, nr, a0, a1, a2, a3, a4, a5)
        plain.__name__ = f"ql_syscall_{name}"
        return plain

    # -- serving ---------------------------------------------------------------------------------------
    def serve(self, name: str, nr: int, *args: int) -> int:
        """Run one call on the sentry; the result is the guest's return value (``-errno``)."""
        self.calls[name] = self.calls.get(name, 0) + 1
        self._current = name
        try:
            return self.task.syscall(nr, *args)
        except GuestWouldHang:
            self.hung = name
            self.ql.log.error(f"mqsentry: {name} would sleep forever: no other task in this emulation "
                              "can wake it (Qiling runs one host thread); stopping")
            self.ql.emu_stop()
            raise

    def _block(self, deadline_ns: int | None = None) -> int:
        if deadline_ns is None:
            raise GuestWouldHang(self._current)
        return self._real_block(deadline_ns)  # type: ignore[no-any-return]

    def _guest_fd(self, sfd: int) -> int:
        fds = self.ql.os.fd
        for gfd in range(len(fds)):
            if fds[gfd] is None:
                fds[gfd] = SentryDescriptor(self, sfd)
                return gfd
        self.task.syscall(self.close_nr, sfd)
        return -self.guest_errno(EMFILE)

    def _sentry_fd(self, gfd: int) -> int:
        fds = self.ql.os.fd
        gfd &= 0xFFFF_FFFF
        f = fds[gfd] if gfd < len(fds) else None
        return f.sfd if isinstance(f, SentryDescriptor) and f.host is self else _NOT_A_QUEUE

    def guest_errno(self, generic: int) -> int:
        """A generic errno value as this guest numbers it."""
        abi = ABIS32.get(self.arch)
        return abi.errno_out.get(generic, generic) if abi is not None else generic


def install(ql: Qiling, kernel: Kernel | None = None) -> QilingHost:
    """Serve ``ql``'s message-queue calls from a sentry (a new ``Kernel`` for its architecture unless
    ``kernel`` is given); returns the host, whose ``task`` is the guest process."""
    return QilingHost(ql, kernel).install()


__all__ = ["GuestWouldHang", "QilingHost", "QilingMemory", "SentryDescriptor", "arch_of", "install"]
