"""``mqsentry demo``: a traced client/server exchange over SysV and POSIX queues, through raw syscalls.

Linux counterpart: what ``strace -f`` shows for a small msgget/msgsnd/msgrcv and mq_open/mq_notify
client/server pair on a real kernel. gVisor counterpart: running such a pair under ``runsc --strace``.

Everything goes through ``Task.syscall(nr, ...)`` with arguments packed into the task's memory, as a
guest's C library would do it (note that the raw ``mq_open`` takes the name *without* the leading
slash: glibc strips it). Output is deterministic: the kernel runs on a :class:`ManualClock`, and lines
printed by a blocked task's thread are held until the main thread has printed the line that woke it.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.errno import EAGAIN, EINVAL, ENOSYS, ETIMEDOUT
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_NONBLOCK, O_RDWR, O_WRONLY
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_NOERROR, MSQID64_DS
from mqsentry.abi.linux.signal import (
    SA_RESTORER,
    SA_SIGINFO,
    SI_MESGQ,
    SIGACTION,
    SIGEV_SIGNAL,
    SIGEVENT,
    SIGSET_SIZE,
    SIGUSR1,
)
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.boot import Kernel
from mqsentry.kernel.ktime import ManualClock
from mqsentry.kernel.task import Task
from mqsentry.tools.strace import Strace, signame

#: The SysV key the server publishes its queue under (decimal in the trace).
DEMO_KEY = 1234
#: POSIX queue name as the raw syscall takes it (glibc's mq_open("/mqsentry-demo") strips the slash).
MQ_NAME = b"mqsentry-demo"
#: Handler and restorer "addresses": the sentry runs no guest code, it records deliveries.
HANDLER_ADDR = 0x7000_0000_1000
RESTORER_ADDR = 0x7000_0000_2000
#: sigev_value the server asks to get back in its siginfo.
NOTIFY_COOKIE = 42

_MTYPE = struct.Struct("<q")
_UINT = struct.Struct("<I")


class _OrderedSink:
    """Writes lines from the main thread at once and holds lines from other threads until
    :meth:`release`, so a woken task's line always follows the line of the call that woke it."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._main = threading.get_ident()
        self._mu = threading.Lock()
        self._held: list[str] = []

    def write(self, s: str) -> None:
        if threading.get_ident() == self._main:
            self._out.write(s)
        else:
            with self._mu:
                self._held.append(s)

    def release(self) -> None:
        with self._mu:
            held, self._held = self._held, []
        for s in held:
            self._out.write(s)


class _Demo:
    """The demo's state: the kernel, its tracer, and the outcome checks."""

    def __init__(self, arch: str, structs: bool, out: TextIO) -> None:
        self.out = out
        self.clock = ManualClock()
        self.k = Kernel(arch=arch, clock=self.clock)
        self.sink = _OrderedSink(out)
        self.strace = Strace(self.sink.write, structs=structs).install(self.k)
        self.structs = structs
        self.nr = sysno.NUMBERS[arch]
        self.problems: list[str] = []

    # -- helpers: raw syscalls with packed buffers ---------------------------------------------------------
    def say(self, text: str) -> None:
        self.out.write(text + "\n")

    def sys(self, t: Task, name: str, *args: int) -> int:
        return t.syscall(self.nr[name], *args)

    def buf(self, t: Task, data: bytes, size: int | None = None) -> int:
        addr: int = t.mm.alloc(max(size if size is not None else len(data), 1))
        if data:
            t.mm.write(addr, data)
        return addr

    def msgbuf(self, t: Task, mtype: int, text: bytes) -> int:
        return self.buf(t, _MTYPE.pack(mtype) + text)

    def expect(self, what: str, got: int, want: int) -> bool:
        if got != want:
            self.problems.append(f"{what}: got {got}, want {want}")
            return False
        return True

    def blocking(self, t: Task, name: str, *args: int) -> Callable[[], int]:
        """Start ``name`` on its own thread, print its ``<unfinished ...>`` half once the task sleeps,
        and return a function that joins the thread and returns the result."""
        result: list[int] = []
        th = threading.Thread(target=lambda: result.append(self.sys(t, name, *args)), daemon=True)
        th.start()
        deadline = time.monotonic() + 5
        while t.state != "S" and th.is_alive() and time.monotonic() < deadline:
            time.sleep(0.0005)
        if th.is_alive():
            self.strace.unfinished(t, self.nr[name], tuple(args) + (0,) * (6 - len(args)))
        else:
            self.problems.append(f"{name} did not block")

        def join() -> int:
            th.join(5)
            self.sink.release()
            if not result:
                self.problems.append(f"{name} did not return")
                return -ETIMEDOUT
            return result[0]
        return join

    # -- SysV -------------------------------------------------------------------------------------------
    def sysv(self, server: Task, client: Task) -> None:
        self.say(f"== SysV message queue: server pid {server.pid}, client pid {client.pid} ==")
        q = self.sys(server, "msgget", DEMO_KEY, IPC_CREAT | IPC_EXCL | 0o600)
        if q == -ENOSYS:
            self.say("SysV queues not available in this build")
            return
        if q < 0:
            self.problems.append(f"msgget failed: {q}")
            return
        self.expect("client msgget", self.sys(client, "msgget", DEMO_KEY, 0), q)
        self.clock.advance(1)

        # Request/reply: the server blocks for a type-1 request; the client's send wakes it.
        srv_buf = server.mm.alloc(4096)
        done = self.blocking(server, "msgrcv", q, srv_buf, 64, 1, 0)
        self.expect("client msgsnd", self.sys(client, "msgsnd", q, self.msgbuf(client, 1, b"ping"), 4, 0), 0)
        if self.expect("server msgrcv", done(), 4):
            self.expect("request text", server.mm.read(srv_buf + 8, 4) == b"ping", True)
        self.clock.advance(1)
        self.expect("server reply", self.sys(server, "msgsnd", q, self.msgbuf(server, 2, b"pong"), 4, 0), 0)
        cli_buf = client.mm.alloc(4096)
        self.expect("client msgrcv", self.sys(client, "msgrcv", q, cli_buf, 64, 2, 0), 4)

        # Typed receive: the server takes the urgent type-3 request before the older type-1 one.
        jobs = [(1, b"job: resize"), (3, b"urgent: flush")]
        for mtype, text in jobs:
            self.sys(client, "msgsnd", q, self.msgbuf(client, mtype, text), len(text), IPC_NOWAIT)
        self.expect("typed msgrcv", self.sys(server, "msgrcv", q, srv_buf, 64, 3, IPC_NOWAIT), 13)
        # Too small a buffer: E2BIG, unless MSG_NOERROR truncates.
        self.sys(server, "msgrcv", q, srv_buf, 8, 1, IPC_NOWAIT)
        self.expect("truncated msgrcv", self.sys(server, "msgrcv", q, srv_buf, 8, 1, IPC_NOWAIT | MSG_NOERROR), 8)
        self.sys(server, "msgrcv", q, srv_buf, 64, 1, IPC_NOWAIT)  # ENOMSG: none left

        ds = server.mm.alloc(MSQID64_DS.size)
        if self.expect("msgctl IPC_STAT", self.sys(server, "msgctl", q, IPC_STAT, ds), 0) and not self.structs:
            d = MSQID64_DS.to_dict(server.mm.read(ds, MSQID64_DS.size))
            self.say(f"  msqid_ds: key={d['perm.key']} mode=0{d['perm.mode'] & 0o777:o} qnum={d['qnum']} "
                     f"qbytes={d['qbytes']} lspid={d['lspid']} lrpid={d['lrpid']} stime={d['stime']}")
        self.expect("msgctl IPC_RMID", self.sys(server, "msgctl", q, IPC_RMID, 0), 0)
        self.expect("send after IPC_RMID", self.sys(client, "msgsnd", q, self.msgbuf(client, 1, b"late"), 4, 0),
                    -EINVAL)

    # -- POSIX ------------------------------------------------------------------------------------------
    def posix(self, server: Task, client: Task) -> None:
        self.say(f"== POSIX message queue: server pid {server.pid}, client pid {client.pid} ==")
        name = self.buf(server, MQ_NAME + b"\0")
        attr = self.buf(server, MQ_ATTR.pack(0, 8, 64, 0))
        fd = self.sys(server, "mq_open", name, O_RDWR | O_CREAT | O_EXCL, 0o600, attr)
        if fd == -ENOSYS:
            self.say("POSIX queues not available in this build")
            return
        if fd < 0:
            self.problems.append(f"mq_open failed: {fd}")
            return

        # Ask for SIGUSR1 (with siginfo) when a message arrives in the empty queue.
        act = self.buf(server, SIGACTION.pack(HANDLER_ADDR, SA_SIGINFO | SA_RESTORER, RESTORER_ADDR, 0))
        self.expect("rt_sigaction", self.sys(server, "rt_sigaction", SIGUSR1, act, 0, SIGSET_SIZE), 0)
        sev = self.buf(server, SIGEVENT.pack(NOTIFY_COOKIE, SIGUSR1, SIGEV_SIGNAL, 0, 0))
        self.expect("mq_notify", self.sys(server, "mq_notify", fd, sev), 0)

        cname = self.buf(client, MQ_NAME + b"\0")
        cfd = self.sys(client, "mq_open", cname, O_WRONLY, 0, 0)
        self.expect("client mq_open", cfd >= 0, True)
        for text, prio in ((b"low priority", 1), (b"high", 9), (b"medium", 5)):
            self.expect(f"mq_timedsend prio {prio}",
                        self.sys(client, "mq_timedsend", cfd, self.buf(client, text), len(text), prio, 0), 0)

        # The server's next syscall delivers the notification signal (the tracer prints it).
        old = server.mm.alloc(MQ_ATTR.size)
        self.expect("mq_getsetattr", self.sys(server, "mq_getsetattr", fd, 0, old), 0)
        self.expect("mq_curmsgs", MQ_ATTR.unpack(server.mm.read(old, MQ_ATTR.size))[3], 3)
        got = [d for d in server.tg.delivered if d.info.signo == SIGUSR1]
        if self.expect("notification signals", len(got), 1):
            info = got[0].info
            self.say(f"  task.tg.delivered: {signame(info.signo)} to handler {got[0].handler:#x}, "
                     f"si_code={'SI_MESGQ' if info.code == SI_MESGQ else info.code}, si_pid={info.pid} (the client)")
            self.expect("si_code", info.code, SI_MESGQ)
            self.expect("si_pid", info.pid, client.pid)
            self.expect("si_value", info.value, NOTIFY_COOKIE)

        # Highest priority first.
        rbuf = server.mm.alloc(4096)
        prio = server.mm.alloc(4)
        for want_text, want_prio in ((b"high", 9), (b"medium", 5), (b"low priority", 1)):
            n = self.sys(server, "mq_timedreceive", fd, rbuf, 64, prio, 0)
            if self.expect(f"mq_timedreceive {want_text!r}", n, len(want_text)):
                self.expect("message order", (server.mm.read(rbuf, n), _UINT.unpack(server.mm.read(prio, 4))[0]) ==
                            (want_text, want_prio), True)

        # A receive with a deadline on the manual clock times out when the clock passes it.
        deadline = self.buf(server, TIMESPEC.pack(self.clock.now_s() + 5, 0))
        done = self.blocking(server, "mq_timedreceive", fd, rbuf, 64, prio, deadline)
        self.clock.advance(5)
        self.expect("timed receive", done(), -ETIMEDOUT)

        # Switch the description to non-blocking: an empty queue now gives EAGAIN at once.
        new = self.buf(server, MQ_ATTR.pack(O_NONBLOCK, 0, 0, 0))
        self.expect("mq_getsetattr O_NONBLOCK", self.sys(server, "mq_getsetattr", fd, new, old), 0)
        self.expect("non-blocking receive", self.sys(server, "mq_timedreceive", fd, rbuf, 64, prio, 0), -EAGAIN)

        closed = [self.sys(client, "close", cfd), self.sys(server, "close", fd)]
        if closed != [-ENOSYS, -ENOSYS]:  # a build without close(2) just leaves the descriptors open
            self.expect("close", closed == [0, 0], True)
        self.expect("mq_unlink", self.sys(server, "mq_unlink", name), 0)


def run(arch: str = "amd64", structs: bool = True, only: str | None = None, out: TextIO | None = None) -> int:
    """Run the demo; print the trace to ``out`` (default stdout). Returns 0 if every call returned
    what Linux returns, 1 otherwise (the mismatches go to stderr)."""
    out = out if out is not None else sys.stdout
    d = _Demo(arch, structs, out)
    server = d.k.new_task()
    client = server.fork()
    if only in (None, "sysv"):
        d.sysv(server, client)
    if only in (None, "posix"):
        d.posix(server, client)
    d.k.tracer = None
    problems = d.problems + [f"internal error: {e.splitlines()[0]}" for e in d.k.internal_error_log]
    for p in problems:
        print(f"mqsentry demo: unexpected result: {p}", file=sys.stderr)
    return 1 if problems else 0


__all__ = ["run", "DEMO_KEY", "MQ_NAME"]
