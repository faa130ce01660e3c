"""Issue 9's adversarial programs: what Linux refuses stays refused, what it allows keeps working.

Linux counterpart: ipc/util.c ``ipcperms`` and ``ns_capable`` (security/commoncap.c), ipc/mqueue.c's
file checks, kernel/signal.c's restart rules, exercised from user space. gVisor counterpart: none
(gVisor owns the whole process; a supervisor serving real processes has these hazards of its own).

Each program of testsuite/platform/c/adv_*.c runs natively (a private IPC namespace) and under
``mqsentry run``, as root and as an unprivileged user (uid 65534) that may create user namespaces;
the transcripts must be equal. Programs that need root print ``root only`` when they are not.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

import pytest

import mqsentry
from mqsentry.kernel.platform.launch import parent_pids
from mqsentry.testsuite.platform.helpers import TIMEOUT, assert_same, run_native, run_sentry

#: The package's root directory (the repository root in a checkout).
REPO = os.path.dirname(os.path.abspath(mqsentry.__file__))

PROGRAMS = [
    "adv_userns",     # 1: user-namespace capabilities grant nothing over the IPC namespace
    "adv_forgedfd",   # 2: files of the program's own making are not mq descriptors
    "adv_tidreuse",   # 3 and 6: a reused TID inherits nothing
    "adv_exec",       # 4: exec from a non-leader thread after a per-thread setresuid
    "adv_reopen",     # 5: reopen through /proc/self/fd is permission-checked, one handle per open
    "adv_restart",    # 7: no ERESTART* value reaches a program
    "adv_threads",    # 8, 9: a thread's first call; O_NONBLOCK on the open file description
    "adv_parked",     # 10: 1,100 parked receivers
    "adv_idmap",      # ids across user and pid namespaces (IPC_SET/IPC_STAT, msg_lspid/lrpid, si_uid)
    "adv_ipcowner",   # an IPC namespace owned by a child user namespace: its root's capabilities, sysctls
]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_as_root(cprog: Callable[[str], str], name: str) -> None:
    exe = cprog(name)
    assert_same(run_native([exe]), run_sentry([exe], timeout=_timeout(name)))


def _timeout(name: str) -> int:
    """The hang bound: 1,100 program threads take a while to start on a loaded 2-core machine."""
    return TIMEOUT * 6 if name == "adv_parked" else TIMEOUT


def _unprivileged_python(tmp: str) -> list[str] | None:
    """An interpreter command uid 65534 can run with mqsentry and its dependencies importable."""
    import construct
    import greenlet
    import sortedcontainers

    pp = os.path.join(tmp, "pp")
    os.makedirs(pp, exist_ok=True)
    # Copies, not symlinks: the packages may live under a directory uid 65534 cannot search (a
    # pyenv under /root, mode 0700). mqsentry is copied without compiled modules (the source tree
    # runs as pure Python); greenlet is a C extension, copied whole for this interpreter. .ci holds a
    # symlink to the root.
    skip = shutil.ignore_patterns(".git", ".ci", "__pycache__", "*.egg-info", "build", "*.so")
    keep_so = shutil.ignore_patterns("__pycache__")
    for name, source, ignore in (("mqsentry", REPO, skip),
                                 ("construct", os.path.dirname(construct.__file__), skip),
                                 ("greenlet", os.path.dirname(greenlet.__file__), keep_so),
                                 ("sortedcontainers", os.path.dirname(sortedcontainers.__file__), skip)):
        dst = os.path.join(pp, name)
        if not os.path.exists(dst):
            shutil.copytree(source, dst, ignore=ignore)
    for root, dirs, files in os.walk(pp):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    os.chmod(tmp, 0o755)
    os.chmod(pp, 0o755)
    for py in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if py is None:
            continue
        cmd = [*NOBODY, "env", f"PYTHONPATH={pp}", py]
        r = subprocess.run([*cmd, "-c", "import mqsentry.tools.run"], capture_output=True)
        if r.returncode == 0:
            return cmd
    return None


@pytest.fixture(scope="module")
def nobody_python(platform_ok: None) -> list[str]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv(1) is missing")
    r = subprocess.run([*NOBODY, "unshare", "-c", "-i", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"uid 65534 cannot create user and IPC namespaces: {r.stderr.decode().strip()}")
    tmp = tempfile.mkdtemp(prefix="mqsentry-nobody-")
    cmd = _unprivileged_python(tmp)
    if cmd is None:
        pytest.skip("no Python interpreter uid 65534 may run with mqsentry importable")
    return [*cmd, tmp]


def _public_copy(exe: str, tmp: str) -> str:
    """A copy of ``exe`` that uid 65534 may run (pytest's own temporary directories are private)."""
    dst = os.path.join(tmp, os.path.basename(exe))
    if not os.path.exists(dst):
        shutil.copy(exe, dst)
        os.chmod(dst, 0o755)
    return dst


@pytest.mark.parametrize("name", PROGRAMS)
def test_as_unprivileged_user(cprog: Callable[[str], str], nobody_python: list[str], name: str) -> None:
    *py, tmp = nobody_python
    exe = _public_copy(cprog(name), tmp)
    native = subprocess.run([*NOBODY, "unshare", "-c", "-i", exe], capture_output=True, text=True, timeout=TIMEOUT)
    sentry = subprocess.run([*py, "-m", "mqsentry.tools.run", exe], capture_output=True,
                            text=True, timeout=_timeout(name), cwd="/")
    assert_same(native, sentry)


def test_program_tree_dies_with_the_sentry(platform_ok: None) -> None:
    """Issue 9 item 11: SIGKILL the sentry; every process of the program's tree (a grandchild that
    left the tree's process group and a double-forked orphan included) is killed."""
    script = 'setsid sleep 1001 & (sleep 1002 &) ; sleep 1003 & echo started; wait'
    sentry = subprocess.Popen([sys.executable, "-m", "mqsentry.tools.run", "sh", "-c", script], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pidfds: list[int] = []
    try:
        assert sentry.stdout is not None
        line = sentry.stdout.readline()
        assert line, "the program did not start"
        # The program's processes: every process below the sentry (the guardian, sh, the sleeps).
        pids = _tree(sentry.pid)
        assert len(pids) >= 4, pids
        pidfds = [os.pidfd_open(p) for p in pids]
    finally:
        sentry.kill()
        sentry.wait()
    try:
        for pfd in pidfds:
            # Wait for the state (the process is gone), with a hang bound.
            assert select.select([pfd], [], [], TIMEOUT)[0], "a process of the tree outlived the sentry"
    finally:
        for pfd in pidfds:
            os.close(pfd)


def _tree(root: int) -> list[int]:
    parent = parent_pids()
    found: list[int] = []
    frontier = {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier}
        found.extend(frontier)
    return found


