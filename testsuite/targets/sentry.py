"""The ``sentry`` target: a fresh in-process :class:`mqsentry.kernel.Kernel` per test."""

from __future__ import annotations

from mqsentry.abi.linux.signal import SA_SIGINFO
from mqsentry.boot import Kernel
from mqsentry.fs import proc
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ktime import ManualClock
from mqsentry.kernel.task import Task
from mqsentry.testsuite.targets.base import Delivery, Target, TaskHandle

#: Handler and restorer "addresses": the sentry runs no guest code, any value works.
HANDLER_ADDR = 0x7000_0000_1000
RESTORER_ADDR = 0x7000_0000_2000


def make_scratch_dir(t: Task) -> str:
    """Create ``/tmp/mqsentry-<n>`` (mode 0700, like mkdtemp) in the kernel's root filesystem."""
    from mqsentry.fs.vfs.vfsops import mkdir_at

    path = f"/tmp/mqsentry-{t.pid}"
    mkdir_at(t, -100, path, 0o700)
    return path


class SentryTask(TaskHandle):
    target: SentryTarget

    def __init__(self, target: SentryTarget, task: Task) -> None:
        self.target = target
        self.task = task
        self.pid = task.pid
        self.tid = task.tid

    def syscall(self, nr: int, *args: int) -> int:
        return self.task.syscall(nr, *args)

    def alloc(self, n: int) -> int:
        return self.task.mm.alloc(n)

    def read(self, addr: int, n: int) -> bytes:
        return self.task.mm.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        self.task.mm.write(addr, data)

    def fork(self) -> SentryTask:
        return SentryTask(self.target, self.task.fork())

    def thread(self) -> SentryTask:
        return SentryTask(self.target, self.task.clone_thread())

    def deliveries(self) -> list[Delivery]:
        # Observing the process stands for time passing in user mode: like a timer interrupt on
        # Linux, it lets threads that are not inside a syscall take their pending signals.
        for t in list(self.task.tg.tasks):
            t.user_tick()
        out = []
        for d in list(self.task.tg.delivered):
            if d.handler == HANDLER_ADDR and d.flags & SA_SIGINFO:
                i = d.info
                out.append(Delivery(i.signo, i.code, i.pid, i.uid, i.value))
        return out

    def is_blocked(self) -> bool:
        return self.task.state == "S"

    def exit(self) -> None:
        self.task.exit(0)


class SentryTarget(Target):
    name = "sentry"
    bad_addr = 0x8
    handler_addr = HANDLER_ADDR
    restorer_addr = RESTORER_ADDR

    def __init__(self, arch: str = "amd64", manual_clock: bool = False) -> None:
        self.arch = arch
        self.clock = ManualClock() if manual_clock else None
        self.kernel = Kernel(arch=arch, clock=self.clock)
        self._root = self.kernel.new_task()
        #: A private directory for path-based tests (the native target's is a host mkdtemp, 0700).
        self.scratch_dir = make_scratch_dir(self._root)

    def spawn(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] = (), caps: int | None = None) -> SentryTask:
        t = self.kernel.new_task(uid=uid, gid=gid, groups=groups, caps=caps, ipc_ns=self._root.ipc_ns)
        return SentryTask(self, t)

    def read_file(self, path: str) -> bytes:
        return proc.read(self._root, path)

    def write_file(self, path: str, data: bytes) -> None:
        from mqsentry.testsuite.libc.errors import LinuxError

        try:
            proc.write(self._root, path, data)
        except SysError as e:
            raise LinuxError(e.errno, f"write {path}") from None

    def set_clock(self, seconds: float) -> bool:
        if self.clock is None:
            return False
        self.clock.advance(seconds)
        return True

    def close(self) -> None:
        k = self.kernel
        if k.internal_errors:
            raise AssertionError(f"{k.internal_errors} sentry internal error(s):\n" + "\n".join(k.internal_error_log))
