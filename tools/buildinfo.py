"""What a measurement ran on: the code's commit, the Python build, compiled or pure kernel, the load.

Linux counterpart: none (the host kernel's own version is ``uname -r``). gVisor counterpart: the
metadata runsc's benchmarks record with each result (test/benchmarks/tools).

Every ``mqsentry bench`` figure is printed with this, so a quoted figure can be traced to the code and
the conditions that produced it: the commit (``git rev-parse`` when the package runs from a checkout,
the installed version otherwise), the interpreter, whether the hot modules are mypyc-compiled
extension modules or pure Python, and ``os.getloadavg()`` (the machine is shared; a load above the
core count makes every wall-clock figure slower, ratios less so).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import pathlib
import platform
import subprocess
import sys
from typing import Any

#: The modules the wheel build compiles with mypyc (setup.py's list; kept in step by a test).
HOT_MODULES = (
    "mqsentry.kernel.ipc.object",
    "mqsentry.kernel.task",
    "mqsentry.kernel.memory_map",
    "mqsentry.kernel.auth.credentials",
    "mqsentry.kernel.ipc_sysctl",
    "mqsentry.kernel.ipc_namespace",
    "mqsentry.kernel.msgqueue.registry",
    "mqsentry.fs.vfs.fdtable",
    "mqsentry.kernel.msgqueue.store",
    "mqsentry.kernel.msgqueue.queue",
    "mqsentry.kernel.mq.queue",
    "mqsentry.syscalls.linux.sys_msgqueue",
    "mqsentry.syscalls.linux.sys_mq",
)

_EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def package_dir() -> pathlib.Path:
    import mqsentry

    return pathlib.Path(mqsentry.__file__).resolve().parent


def commit() -> str:
    """``git rev-parse HEAD`` (+ ``-dirty`` when tracked files differ) of a checkout; for an installed
    package (no ``.git`` next to it) the commit its wheel was built from, else its version."""
    root = package_dir()
    if (root / ".git").exists():
        try:
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            return head + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass  # no git binary, or not a usable repository: fall back to the version
    built = root / "BUILD_COMMIT"  # written by setup.py into wheels built from a checkout
    if built.exists():
        return f"{built.read_text(encoding='utf-8').strip()} (installed mqsentry {_version()})"
    return f"mqsentry {_version()} (installed)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mqsentry")
    except PackageNotFoundError:  # a bare checkout on sys.path
        import mqsentry

        return mqsentry.__version__


def compiled_modules() -> list[str]:
    """The hot modules that are extension modules (mypyc-compiled) where this process imports them
    from: the import system's own choice (an extension module wins over the .py of the same name)."""
    out = []
    for name in HOT_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:
            continue
        if spec is not None and (spec.origin or "").endswith(_EXT_SUFFIXES):
            out.append(name)
    return out


def kernel_build() -> str:
    """``compiled (mypyc, 13/13 hot modules)``, ``partly compiled (...)`` or ``pure Python``."""
    done = compiled_modules()
    if not done:
        return "pure Python"
    kind = "compiled" if len(done) == len(HOT_MODULES) else "partly compiled"
    return f"{kind} (mypyc, {len(done)}/{len(HOT_MODULES)} hot modules)"


def python_build() -> str:
    """E.g. ``CPython 3.11.7 (main, Dec  8 2023 ...) [GCC 12.2.0]``."""
    num, date = platform.python_build()
    return (f"{platform.python_implementation()} {platform.python_version()} ({num}, {date}) "
            f"[{platform.python_compiler()}]")


def load() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # not available on this system
        return None


def describe() -> dict[str, Any]:
    """Everything above as one JSON-ready mapping."""
    la = load()
    return {
        "commit": commit(),
        "python": python_build(),
        "python_executable": sys.executable,
        "kernel": kernel_build(),
        "compiled_modules": compiled_modules(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "loadavg": list(la) if la is not None else None,
    }


def lines(info: dict[str, Any]) -> list[str]:
    """The human-readable form of :func:`describe`, one fact a line."""
    la = info["loadavg"]
    load_text = "n/a" if la is None else " ".join(f"{x:.2f}" for x in la) + f" (1/5/15 min; {info['cpus']} CPUs)"
    return [f"commit:  {info['commit']}", f"python:  {info['python']}", f"kernel:  {info['kernel']}",
            f"machine: {info['machine']}; load {load_text}"]


__all__ = ["HOT_MODULES", "commit", "compiled_modules", "describe", "kernel_build", "lines", "load", "python_build"]
