"""Build hook: compile the hot kernel modules with mypyc when possible, else install pure Python.

pyproject.toml holds all the metadata; this file only adds ``ext_modules``. The typed .py files stay
the source of truth: mypyc turns the modules in ``HOT_MODULES`` into C extensions that sit next to
them in the wheel (an extension module is imported in preference to the .py of the same name).

``MQSENTRY_COMPILE`` chooses:

* unset / ``auto``: compile wheel builds (``pip install .``, ``pip wheel .``) when mypyc, a C
  compiler and the Python headers are there; on any failure print why and build pure Python.
  Editable installs (``pip install -e .``) stay pure: in-place extension modules would shadow
  every later edit of the .py files they were compiled from.
* ``1``: compile, also for editable installs, and fail the build if compiling fails (CI uses this
  to make sure the compiled wheel really is compiled).
* ``0``: pure Python.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import traceback

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
#: Kept in step with mqsentry/tools/buildinfo.py's HOT_MODULES by testsuite/tools/test_build.py.
#: The engines, the handlers and the task, plus the objects every fast call reads (the address
#: space's region map, credentials, the IPC namespace with its sysctls and SysV registry, the fd
#: table): compiled, their fields are struct reads instead of generic attribute lookups. Every
#: module listed here must keep to mypyc's rules (no interpreted subclasses of its classes, only
#: attributes declared in the class, no subclasses of builtin exceptions).
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
#: mypy options for the compile. Only the compiled modules must type-check: the rest of the package
#: is read for types but not reported (follow-imports=silent), so a typing slip elsewhere cannot
#: make the build fall back to pure Python.
MYPY_ARGS = ("--config-file=mypyc.ini", "--follow-imports=silent", "--ignore-missing-imports",
             "--no-warn-unused-ignores", "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}")


def _mode() -> str:
    mode = os.environ.get("MQSENTRY_COMPILE", "auto").strip().lower() or "auto"
    return {"yes": "1", "true": "1", "no": "0", "false": "0", "pure": "0"}.get(mode, mode)


def _building() -> bool:
    """Whether this run builds code (metadata-only runs, egg_info/dist_info, need no compile)."""
    return any(cmd in sys.argv for cmd in ("bdist_wheel", "build", "build_ext", "install", "editable_wheel",
                                           "develop"))


def _editable() -> bool:
    return any(cmd in sys.argv for cmd in ("editable_wheel", "develop"))


def _staged_sources() -> pathlib.Path:
    """A directory whose ``mqsentry`` entry is this package: mypy names modules after the folders
    that hold them, and the repository's own folder may have any name. A copy of the .py files
    (not a symlink: mypy and the C compiler see one plain tree on every platform)."""
    stage = ROOT / "build" / "mypyc-src"
    pkg = stage / "mqsentry"
    if pkg.exists():
        shutil.rmtree(pkg)
    for src in ROOT.rglob("*.py"):
        rel = src.relative_to(ROOT)
        if rel.parts[0] in ("build", "testsuite") or rel.name == "setup.py" or rel.parts[0].startswith("."):
            continue
        dst = pkg / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    shutil.copyfile(ROOT / "py.typed", pkg / "py.typed")
    return stage


def ext_modules() -> list[Extension]:
    mode = _mode()
    if mode == "0" or not _building() or (mode != "1" and _editable()):
        return []
    try:
        from mypyc.build import mypycify

        stage = _staged_sources()
        # Our own mypy configuration: mypy would otherwise find the project's (strict) settings in
        # pyproject.toml above the staging directory, and a strictness finding anywhere would turn
        # into a pure build. What mypyc needs is that the compiled modules type-check.
        (stage / "mypyc.ini").write_text("[mypy]\n", encoding="utf-8")
        rel = [os.path.join(*m.split(".")) + ".py" for m in HOT_MODULES]
        cwd = os.getcwd()
        os.chdir(stage)  # mypy resolves ``mqsentry`` from the working directory
        try:
            # group_name inside the package: the runtime library every compiled module shares is
            # mqsentry._kernel__mypyc, so nothing but ``mqsentry`` lands in site-packages.
            return list(mypycify([*MYPY_ARGS, *rel], opt_level="3", target_dir=str(ROOT / "build" / "mypyc-c"),
                                 group_name="mqsentry._kernel"))
        finally:
            os.chdir(cwd)
            shutil.rmtree(stage, ignore_errors=True)  # the C sources are written; no stray package copies
    except BaseException as e:  # SystemExit from mypy's type errors too: fall back to pure
        if mode == "1":
            raise
        _warn(f"mypyc compile not possible: {e!r}")
        return []


def _warn(why: str) -> None:
    print(f"mqsentry: building pure Python ({why})", file=sys.stderr)
    traceback.print_exc(limit=2, file=sys.stderr)


class BuildExt(build_ext):
    """``build_ext`` that falls back to pure Python when the C compile fails (no compiler, no
    Python headers): the .py files are installed either way, so dropping every extension built so
    far leaves a complete pure package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:
            if _mode() == "1":
                raise
            for out in self.get_outputs():
                with contextlib.suppress(OSError):
                    os.remove(out)
            self.extensions = []
            _warn(f"C compile failed: {e!r}")


class BuildPy(build_py):
    """``build_py`` that leaves this file out of the package (the repository root is the package
    directory, so every root .py would otherwise install as a ``mqsentry`` module)."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        mods = super().find_package_modules(package, package_dir)
        return [m for m in mods if not (package == "mqsentry" and m[1] == "setup")]

    def run(self) -> None:
        super().run()
        # The commit this build came from, for ``mqsentry bench`` of an installed package.
        commit = _git_commit()
        if commit and not self.editable_mode:
            out = pathlib.Path(self.build_lib) / "mqsentry" / "BUILD_COMMIT"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(commit + "\n", encoding="utf-8")


def _git_commit() -> str | None:
    if not (ROOT / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
