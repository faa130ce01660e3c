"""Real programs give the same transcript natively and under ``mqsentry run``.

Linux counterpart: ipc/msg.c and ipc/mqueue.c as seen from user space through glibc. gVisor
counterpart: test/syscalls/linux/msgqueue.cc and mq.cc run natively and in runsc.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from mqsentry.testsuite.platform.helpers import PYTHON_M, TIMEOUT, assert_same, run_native, run_sentry


@pytest.mark.parametrize("name", ["sysv_basic", "posix_basic", "notify", "notify_timing", "threads", "creds",
                                  "proc_files", "ipc_namespaces", "ns_bindmount", "fardeadline", "poll_wake"])
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


@pytest.mark.parametrize("caller_ignores", ["", "HUP"])
def test_signal_dispositions_at_exec(cprog: Callable[[str], str], caller_ignores: str) -> None:
    """The program starts with the caller's dispositions and mask (ignored stays ignored, nothing else
    is ignored): the launcher's own interpreter settings (SIGPIPE, SIGXFSZ ignored) do not leak."""
    exe = cprog("dispositions")
    trap = ["sh", "-c", f'trap "" {caller_ignores}; exec "$@"', "sh"] if caller_ignores else []
    native = subprocess.run(["unshare", "-i", *trap, exe], capture_output=True, text=True, timeout=TIMEOUT,
                            check=False)
    sentry = subprocess.run([*trap, *PYTHON_M, "mqsentry.tools.run", exe], capture_output=True, text=True,
                            timeout=TIMEOUT, check=False)
    assert_same(native, sentry)
    assert ("SIGHUP: ignored" in native.stdout) == bool(caller_ignores)


def test_trace_shows_the_fds_the_program_got(cprog: Callable[[str], str]) -> None:
    """``mqsentry run --trace``: mq_open's result is the descriptor the program received."""
    exe = cprog("trace_fds")
    r = subprocess.run([*PYTHON_M, "mqsentry", "run", "--trace", exe], capture_output=True, text=True,
                       timeout=TIMEOUT, check=False)
    assert r.returncode == 0, r.stderr
    a, b = r.stdout.split()[1:3]
    opened = [line.rsplit(" = ", 1)[1] for line in r.stderr.splitlines() if "mq_open(" in line]
    assert opened == [a, b], r.stderr
    assert int(a) >= 3 and int(b) == int(a) + 1


def test_namespace_kept_by_an_unserved_shell(cprog: Callable[[str], str]) -> None:
    """A shell that never makes a served call keeps its new IPC namespace alive between the programs
    it runs (Linux frees a namespace when its last member is gone, not its last queue user)."""
    script = ("unshare -i sh -c 'ipcmk -Q >/dev/null; ipcmk -Q >/dev/null; ipcs -q | grep -c 0x; "
              "wc -l < /proc/sysvipc/msg'")
    assert_same(run_native(["sh", "-c", script]), run_sentry(["sh", "-c", script]))


def test_namespace_freed_with_its_queues_when_nobody_is_in_it(platform_ok: None) -> None:
    """A namespace made by ``unshare -i`` dies with its last process: the sentry drops it and its
    queues, and its host inode number is no longer pinned."""
    from mqsentry.kernel import Kernel
    from mqsentry.kernel.platform.run import run_program

    k = Kernel(arch="amd64")
    made = []
    create = k.new_ipc_namespace

    def spy(creator=None):
        ns = create(creator)
        made.append(ns)
        return ns

    k.new_ipc_namespace = spy  # type: ignore[method-assign]
    rc = run_program(["sh", "-c", "unshare -i ipcmk -Q >/dev/null && ipcs -q >/dev/null"], kernel=k,
                     stdout=subprocess.DEVNULL)
    assert rc == 0
    assert len(made) == 1
    ns = made[0]
    assert ns.dead and ns.pins == 0
    assert ns.msgqueues.proc_text().count("\n") == 1  # the header only
