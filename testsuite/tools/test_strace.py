"""mqsentry.tools.strace: the strace-like formatting of sentry syscalls (strace(1) output conventions;
gVisor's pkg/sentry/strace)."""

from __future__ import annotations

import io

import pytest

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.errno import EFAULT, ENOMSG, ENOSYS
from mqsentry.abi.linux.file import O_CREAT, O_NONBLOCK, O_RDWR, O_WRONLY
from mqsentry.abi.linux.ipc import IPC_64, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_STAT
from mqsentry.abi.linux.mqueue import MQ_ATTR
from mqsentry.abi.linux.msgqueue import MSG_EXCEPT, MSG_INFO, MSG_NOERROR
from mqsentry.abi.linux.signal import SA_RESTORER, SA_SIGINFO, SI_MESGQ, SIGACTION, SIGEV_SIGNAL, SIGEVENT, SIGUSR1
from mqsentry.boot import Kernel
from mqsentry.kernel.signals import SigInfo
from mqsentry.kernel.task import Task
from mqsentry.tools.strace import Strace, errno_text

NR = sysno.AMD64


@pytest.fixture
def task() -> Task:
    return Kernel(arch="amd64").new_task()


def fmt(t: Task, name: str, args: tuple[int, ...], ret: int, structs: bool = False) -> str:
    full = tuple(args) + (0,) * (6 - len(args))
    return Strace(io.StringIO(), structs=structs).format(t, NR[name], full, ret)


def test_msgrcv_line_with_pointer_in_hex(task: Task) -> None:
    assert fmt(task, "msgrcv", (0, 0x10000000, 64, 1, 0), 5) == "[pid 1] msgrcv(0, 0x10000000, 64, 1, 0) = 5"


def test_error_result_has_name_and_message(task: Task) -> None:
    line = fmt(task, "msgrcv", (0, 0x10000000, 64, 1, IPC_NOWAIT), -ENOMSG)
    assert line == "[pid 1] msgrcv(0, 0x10000000, 64, 1, IPC_NOWAIT) = -1 ENOMSG (No message of desired type)"
    assert errno_text(EFAULT) == "EFAULT (Bad address)"


def test_flags_and_commands_are_symbolic(task: Task) -> None:
    assert fmt(task, "msgget", (0, IPC_CREAT | IPC_EXCL | 0o600), 3) == \
        "[pid 1] msgget(IPC_PRIVATE, IPC_CREAT|IPC_EXCL|0600) = 3"
    assert fmt(task, "msgget", (0x1234, 0), 3) == "[pid 1] msgget(4660, 0) = 3"
    # Registers carry a negative key_t sign-extended or not: both print as the C int.
    assert fmt(task, "msgget", (0xFFFF_FFFF, 0o666), -ENOSYS).startswith("[pid 1] msgget(-1, 0666) = -1 ENOSYS")
    rcv = fmt(task, "msgrcv", (7, 0x10000000, 8, (1 << 64) - 3, IPC_NOWAIT | MSG_NOERROR | MSG_EXCEPT), 8)
    assert rcv == "[pid 1] msgrcv(7, 0x10000000, 8, -3, IPC_NOWAIT|MSG_NOERROR|MSG_EXCEPT) = 8"
    assert fmt(task, "msgctl", (7, IPC_RMID, 0), 0) == "[pid 1] msgctl(7, IPC_RMID, NULL) = 0"
    assert fmt(task, "msgctl", (7, MSG_INFO, 0x10000000), 0) == "[pid 1] msgctl(7, MSG_INFO, 0x10000000) = 0"
    assert fmt(task, "msgctl", (7, IPC_64 | IPC_STAT, 0x10000000), -22).startswith(
        "[pid 1] msgctl(7, IPC_64|IPC_STAT, 0x10000000) = -1 EINVAL")


def test_mq_names_are_read_from_task_memory(task: Task) -> None:
    name = task.mm.alloc(64)
    task.mm.write(name, b"queue-1\0")
    line = fmt(task, "mq_open", (name, O_RDWR | O_CREAT | O_NONBLOCK, 0o600, 0), 3)
    assert line == '[pid 1] mq_open("queue-1", O_RDWR|O_CREAT|O_NONBLOCK, 0600, NULL) = 3'
    assert fmt(task, "mq_open", (name, O_WRONLY), 4) == '[pid 1] mq_open("queue-1", O_WRONLY) = 4'
    assert fmt(task, "mq_unlink", (name,), 0) == '[pid 1] mq_unlink("queue-1") = 0'


def test_bad_pointers_print_as_addresses(task: Task) -> None:
    assert fmt(task, "mq_unlink", (0x8,), -EFAULT) == "[pid 1] mq_unlink(0x8) = -1 EFAULT (Bad address)"
    assert fmt(task, "mq_unlink", (0,), -EFAULT) == "[pid 1] mq_unlink(NULL) = -1 EFAULT (Bad address)"
    # A name that runs into the guard page without a NUL.
    page = task.mm.alloc(4096)
    task.mm.write(page, b"x" * 4096)
    assert fmt(task, "mq_unlink", (page + 4090,), -EFAULT) == \
        f"[pid 1] mq_unlink({page + 4090:#x}) = -1 EFAULT (Bad address)"
    # Struct decoding of unreadable memory falls back to the address too.
    assert fmt(task, "msgsnd", (0, 0x8, 4, 0), -EFAULT, structs=True) == \
        "[pid 1] msgsnd(0, 0x8, 4, 0) = -1 EFAULT (Bad address)"


def test_memory_that_raises_is_survived() -> None:
    class Hostile:
        def read(self, addr: int, n: int) -> bytes:
            raise RuntimeError("no")

        def write(self, addr: int, data: bytes) -> None:
            raise RuntimeError("no")

    t = Kernel().new_task(mm=Hostile())
    assert fmt(t, "mq_unlink", (0x1000,), -EFAULT) == "[pid 1] mq_unlink(0x1000) = -1 EFAULT (Bad address)"
    assert fmt(t, "mq_getsetattr", (3, 0x1000, 0x2000), 0, structs=True) == \
        "[pid 1] mq_getsetattr(3, 0x1000, 0x2000) = 0"


def test_structs_mode_decodes_buffers(task: Task) -> None:
    msg = task.mm.alloc(64)
    task.mm.write(msg, (7).to_bytes(8, "little") + b'hi "there"\n')
    assert fmt(task, "msgsnd", (0, msg, 11, 0), 0, structs=True) == \
        '[pid 1] msgsnd(0, {7, "hi \\"there\\"\\n"}, 11, 0) = 0'
    # Received text is shown up to the returned size only.
    assert fmt(task, "msgrcv", (0, msg, 64, 0, 0), 2, structs=True) == '[pid 1] msgrcv(0, {7, "hi"}, 64, 0, 0) = 2'
    attr = task.mm.alloc(64)
    task.mm.write(attr, MQ_ATTR.pack(O_NONBLOCK, 8, 64, 2))
    assert fmt(task, "mq_getsetattr", (3, 0, attr), 0, structs=True) == \
        "[pid 1] mq_getsetattr(3, NULL, {mq_flags=O_NONBLOCK, mq_maxmsg=8, mq_msgsize=64, mq_curmsgs=2}) = 0"
    prio = task.mm.alloc(4)
    task.mm.write(prio, (9).to_bytes(4, "little"))
    task.mm.write(msg, b"high")
    assert fmt(task, "mq_timedreceive", (3, msg, 64, prio, 0), 4, structs=True) == \
        '[pid 1] mq_timedreceive(3, "high", 64, [9], NULL) = 4'
    sev = task.mm.alloc(64)
    task.mm.write(sev, SIGEVENT.pack(42, SIGUSR1, SIGEV_SIGNAL, 0, 0))
    assert fmt(task, "mq_notify", (3, sev), 0, structs=True) == ("[pid 1] mq_notify(3, {sigev_value={sival_int=42, "
                                                                "sival_ptr=0x2a}, sigev_signo=SIGUSR1, "
                                                                "sigev_notify=SIGEV_SIGNAL}) = 0")
    act = task.mm.alloc(32)
    task.mm.write(act, SIGACTION.pack(0x1000, SA_SIGINFO | SA_RESTORER, 0x2000, 1 << 11))
    assert fmt(task, "rt_sigaction", (SIGUSR1, act, 0, 8), 0, structs=True) == (
        "[pid 1] rt_sigaction(SIGUSR1, {sa_handler=0x1000, sa_mask=[USR2], sa_flags=SA_SIGINFO|SA_RESTORER, "
        "sa_restorer=0x2000}, NULL, 8) = 0")


def test_long_strings_are_truncated(task: Task) -> None:
    msg = task.mm.alloc(200)
    task.mm.write(msg, (1).to_bytes(8, "little") + b"a" * 100)
    line = Strace(io.StringIO(), structs=True, strsize=8).format(task, NR["msgsnd"], (0, msg, 100, 0, 0, 0), 0)
    assert line == '[pid 1] msgsnd(0, {1, "aaaaaaaa"...}, 100, 0) = 0'


def test_installed_tracer_prints_every_syscall(task: Task) -> None:
    out = io.StringIO()
    Strace(out).install(task.kernel)
    assert task.syscall(NR["getpid"]) == 1
    assert task.syscall(999) == -ENOSYS
    assert out.getvalue().splitlines() == ["[pid 1] getpid() = 1",
                                           "[pid 1] syscall_999() = -1 ENOSYS (Function not implemented)"]


def test_arm64_names_come_from_its_table() -> None:
    t = Kernel(arch="arm64").new_task()
    line = Strace(io.StringIO()).format(t, sysno.ARM64["msgrcv"], (0, 0x10000000, 64, 1, 0, 0), 5)
    assert line == "[pid 1] msgrcv(0, 0x10000000, 64, 1, 0) = 5"


def test_unfinished_and_resumed_halves(task: Task) -> None:
    out = io.StringIO()
    st = Strace(out)
    args = (0, 0x10000000, 64, 1, 0, 0)
    st.unfinished(task, NR["msgrcv"], args)
    st(task, NR["msgrcv"], args, 4)
    assert out.getvalue().splitlines() == ["[pid 1] msgrcv(0, <unfinished ...>",
                                           "[pid 1] <... msgrcv resumed>0x10000000, 64, 1, 0) = 4"]


def test_signal_line(task: Task) -> None:
    out = io.StringIO()
    Strace(out).signal(task, SigInfo(signo=SIGUSR1, code=SI_MESGQ, pid=2, uid=1000, value=42))
    assert out.getvalue() == ("[pid 1] --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_MESGQ, si_pid=2, si_uid=1000, "
                              "si_value={int=42, ptr=0x2a}} ---\n")
