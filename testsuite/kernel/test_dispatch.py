"""Syscall dispatch and process/thread identity: ENOSYS for unknown numbers, getpid/gettid/getppid
across fork and thread creation, and pids that disappear with their thread or process.

Linux counterpart: arch/x86/entry/syscall_64.c (``x64_sys_call`` default case), kernel/sys.c
(getpid, gettid, getppid), kernel/exit.c. gVisor counterpart: pkg/sentry/kernel/task_syscall.go and
test/syscalls/linux/getpid.cc / fork.cc (ideas only).
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.errno import ENOSYS, ESRCH
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target


@pytest.mark.parametrize("nr", [1000, 0xFFFF, 0x7FFF_FFFF])
def test_unknown_syscall_is_enosys(proc: Proc, nr: int) -> None:
    # Past the end of every table. (Not the gap 335..423 on x86-64: 335 is uretprobe since Linux 6.11,
    # which raises SIGILL, and 336 is uprobe.)
    assert proc.h.syscall(nr) == -ENOSYS
    assert proc.h.syscall(nr, 1, 2, 3, 4, 5, 6) == -ENOSYS


def test_pid_and_tid_of_a_process(proc: Proc) -> None:
    assert proc.getpid() == proc.pid
    assert proc.gettid() == proc.tid == proc.pid


def test_thread_shares_pid_but_has_its_own_tid(proc: Proc) -> None:
    th = proc.thread()
    assert th.getpid() == proc.pid == th.pid
    assert th.gettid() == th.tid != proc.tid
    assert th.call("getppid") == proc.call("getppid")


def test_fork_child_is_a_new_process_whose_parent_is_the_caller(proc: Proc) -> None:
    child = proc.fork()
    assert child.getpid() == child.pid != proc.pid
    assert child.gettid() == child.pid
    assert child.call("getppid") == proc.pid


def test_fork_from_a_thread_reports_the_process_as_parent(proc: Proc) -> None:
    th = proc.thread()
    child = th.fork()
    assert child.call("getppid") == proc.pid  # the tgid, not the forking thread's tid
    grandchild = child.fork()
    assert grandchild.call("getppid") == child.pid


def test_exited_thread_has_no_tid(proc: Proc) -> None:
    th = proc.thread()
    tid = th.tid
    assert proc.sys("tgkill", proc.pid, tid, 0) == 0
    th.exit()
    assert proc.sys("tgkill", proc.pid, tid, 0) == -ESRCH
    assert proc.getpid() == proc.pid  # the process lives on


def test_exited_process_has_no_pid(proc: Proc) -> None:
    child = proc.fork()
    pid = child.pid
    assert proc.sys("kill", pid, 0) == 0
    child.exit()
    assert proc.sys("kill", pid, 0) == -ESRCH


def test_process_lives_while_a_thread_remains(target: Target, proc: Proc) -> None:
    child = proc.fork()
    th = child.thread()
    child.exit()  # the main thread only
    assert th.getpid() == child.pid
    assert proc.sys("kill", child.pid, 0) == 0
