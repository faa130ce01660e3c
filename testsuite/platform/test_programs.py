"""Real programs give the same transcript natively and under ``mqsentry run``.

Linux counterpart: ipc/msg.c and ipc/mqueue.c as seen from user space through glibc. gVisor
counterpart: test/syscalls/linux/msgqueue.cc and mq.cc run natively and in runsc.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mqsentry.testsuite.platform.helpers import assert_same, run_native, run_sentry


@pytest.mark.parametrize("name", ["sysv_basic", "posix_basic", "notify", "threads", "creds", "fardeadline"])
def test_program(cprog: Callable[[str], str], name: str) -> None:
    exe = cprog(name)
    assert_same(run_native([exe]), run_sentry([exe]))


def test_signals_interrupt_and_restart_like_linux(cprog: Callable[[str], str]) -> None:
    """msgrcv: EINTR even under SA_RESTART; mq_receive: restarted under SA_RESTART; stop/continue
    restarts both; a process-directed signal interrupts only the thread the kernel picks."""
    exe = cprog("signals")
    assert_same(run_native([exe]), run_sentry([exe]))


def test_killed_waiters_and_sysctls(cprog: Callable[[str], str]) -> None:
    """A SIGKILLed receiver takes no message with it; a SIGKILLed blocked sender delivers nothing;
    ``--sysctl`` sets kernel.msgmax and fs.mqueue.msg_max as /proc/sys does natively."""
    exe = cprog("killed")
    sysctls = [("kernel.msgmax", 4096), ("fs.mqueue.msg_max", 5)]
    assert_same(run_native([exe], sysctls), run_sentry([exe], sysctls))


@pytest.mark.parametrize("kind", ["sysv", "posix"])
def test_client_server_as_separate_processes(cprog: Callable[[str], str], kind: str) -> None:
    exe = cprog("clientserver")
    argv = ["sh", "-c", f'"$0" {kind}-server & "$0" {kind}-client; wait', exe]
    assert_same(run_native(argv), run_sentry(argv))


@pytest.mark.parametrize("name", ["threads", "clientserver"])
def test_socket_backing(cprog: Callable[[str], str], name: str) -> None:
    """The fallback backing (no FUSE) serves programs that do not read() or poll() queue fds."""
    exe = cprog(name)
    argv = [exe] if name == "threads" else ["sh", "-c", '"$0" posix-server & "$0" posix-client; wait', exe]
    assert_same(run_native(argv), run_sentry(argv, extra=["--no-fuse"]))


def test_exit_status_and_missing_program(cprog: Callable[[str], str]) -> None:
    r = run_sentry(["sh", "-c", "exit 7"])
    assert r.returncode == 7
    r = run_sentry(["/nonexistent/program"])
    assert r.returncode == 127
    assert "No such file" in r.stderr
