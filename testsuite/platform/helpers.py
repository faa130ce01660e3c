"""Compile the C programs of testsuite/platform/c and run them natively and under the platform.

Linux counterpart: none (test plumbing). gVisor counterpart: test/runner (runs a syscall test binary
natively and under runsc).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

import pytest

C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")
#: Programs shipped with the tools (the README's client/server pair lives there).
TOOLS_C_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "tools", "programs")
#: How a test starts a fresh interpreter on a module of the package: ``-P`` keeps the working directory
#: off sys.path, so that the child imports the installed (or editable) ``mqsentry`` and nothing that
#: happens to sit in the directory the tests were started from.
PYTHON_M = (sys.executable, "-P", "-m")
#: A run that takes longer than this is a hang (every program finishes in about a second).
TIMEOUT = 30


def skip_reason() -> str | None:
    """Why the platform tests cannot run here (None if they can)."""
    from mqsentry.kernel import platform

    reason = platform.available()
    if reason is not None:
        return reason
    if shutil.which("cc") is None:
        return "no C compiler (cc)"
    if os.geteuid() != 0:
        return "the native reference run needs root (unshare -i for a private IPC namespace)"
    if shutil.which("unshare") is None:
        return "unshare(1) is missing"
    return None


def compile_c(name: str, outdir: str) -> str:
    exe = os.path.join(outdir, name)
    if not os.path.exists(exe):
        src = os.path.join(C_DIR, name + ".c")
        if not os.path.exists(src):
            src = os.path.join(TOOLS_C_DIR, name + ".c")
        r = subprocess.run(["cc", "-O2", "-pthread", "-Wall", "-o", exe, src], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"cc {src} failed:\n{r.stderr}")
    return exe


def run_native(argv: Sequence[str], sysctls: Sequence[tuple[str, int]] = ()) -> subprocess.CompletedProcess[str]:
    """Run in a private IPC namespace (SysV ids and POSIX queues of their own), sysctls set there."""
    if sysctls:
        setup = "; ".join(f"echo {v} > /proc/sys/{k.replace('.', '/')}" for k, v in sysctls)
        cmd = ["unshare", "-i", "sh", "-c", setup + '; exec "$0" "$@"', *argv]
    else:
        cmd = ["unshare", "-i", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


def run_sentry(argv: Sequence[str], sysctls: Sequence[tuple[str, int]] = (), extra: Sequence[str] = (),
               timeout: int = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m mqsentry.tools.run`` in a fresh interpreter (a fresh sentry per run)."""
    args = [*PYTHON_M, "mqsentry.tools.run"]
    for k, v in sysctls:
        args += ["--sysctl", f"{k}={v}"]
    return subprocess.run([*args, *extra, *argv], capture_output=True, text=True, timeout=timeout)


def assert_same(native: subprocess.CompletedProcess[str], sentry: subprocess.CompletedProcess[str]) -> None:
    assert native.returncode == 0, f"native run failed ({native.returncode}):\n{native.stdout}\n{native.stderr}"
    assert sentry.stdout == native.stdout, f"sentry stderr:\n{sentry.stderr}"
    assert "internal error" not in sentry.stderr, sentry.stderr
    assert sentry.returncode == native.returncode, sentry.stderr
