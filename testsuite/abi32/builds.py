"""Static builds of testsuite/abi32/c programs with Debian's cross compilers, and their native runs.

Linux counterpart: none (test plumbing). gVisor counterpart: test/runner.
"""

from __future__ import annotations

import os
import platform as host_platform
import shutil
import subprocess
import sys
from collections.abc import Sequence

import pytest

from mqsentry.testsuite.abi32 import cross

C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: A run that takes longer than this is a hang (an emulated run takes about 3 s).
TIMEOUT = 120
#: The native run that is the reference for each architecture's output: its word size's.
REFERENCE = {"i386": "i386", "arm": "i386", "mips": "i386", "mipsel": "i386", "amd64": "amd64", "arm64": "amd64"}


def build(arch: str, name: str, outdir: str, src_dir: str = C_DIR) -> str:
    """Compile <src_dir>/<name>.c statically for ``arch`` (skips the test when its compiler is missing)."""
    if cross.compiler(arch) is None:
        pytest.skip(cross.missing_reason(arch))
    exe = os.path.join(outdir, f"{name}-{arch}")
    if not os.path.exists(exe):
        r = subprocess.run([cross.COMPILERS[arch], "-O1", "-static", "-pthread", "-Wall", "-o", exe,
                            os.path.join(src_dir, name + ".c")], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"{cross.COMPILERS[arch]} {name}.c failed:\n{r.stderr}")
    return exe


def native_reason(arch: str) -> str | None:
    """Why ``arch``'s programs cannot run natively here (None if they can)."""
    if host_platform.machine() != "x86_64" or arch not in ("i386", "amd64"):
        return f"no {arch} kernel here (the host is {host_platform.machine()})"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "the native reference run needs root and unshare(1) (a private IPC namespace)"
    return None


def run_native(exe: str) -> subprocess.CompletedProcess[str]:
    """Run in a private IPC namespace (its own SysV ids and POSIX queues)."""
    return subprocess.run(["unshare", "-i", exe], capture_output=True, text=True, timeout=TIMEOUT)


def run_cli(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``python -m mqsentry ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "mqsentry", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=REPO)
