"""Packaging: one import package, its version, and what a wheel puts into site-packages.

The repository root is the directory of the package ``mqsentry`` (pyproject: ``package-dir``); these
tests keep that mapping honest. The checks that read pyproject.toml or build a wheel need the source
checkout and skip, saying so, when the suite runs from an installed wheel.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile
from typing import Any

import pytest

import mqsentry

#: The package's directory: the checkout's root, or site-packages/mqsentry in an installation.
ROOT = pathlib.Path(mqsentry.__file__).resolve().parent
PYPROJECT = ROOT / "pyproject.toml"
#: Directories of the checkout that are not part of the package.
NOT_PACKAGED = {".git", ".ci", "build", "dist", "docs", "__pycache__", ".venv", ".pytest_cache", ".hypothesis",
                ".mypy_cache", ".ruff_cache"}


def _pyproject() -> dict[str, Any]:
    if not PYPROJECT.exists():
        pytest.skip("not a source checkout (pyproject.toml is not beside the package): installed from a wheel")
    with open(PYPROJECT, "rb") as f:
        return tomllib.load(f)


def _package_dirs() -> set[str]:
    """Dotted names of every directory of the tree that has an ``__init__.py``."""
    out = set()
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and (rel.parts[0] in NOT_PACKAGED or rel.parts[0].endswith(".egg-info")):
            continue
        out.add(".".join(("mqsentry", *rel.parts)))
    return out


def test_packages_list_names_every_package_directory() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    present = _package_dirs()
    assert present - listed == set(), "directories with __init__.py missing from pyproject's packages list"
    assert listed - present == set(), "pyproject's packages list names directories that do not exist"


def test_root_maps_to_the_one_package() -> None:
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == {"mqsentry": "."}


def test_version_matches_pyproject_and_metadata() -> None:
    assert mqsentry.__version__ == importlib.metadata.version("mqsentry")
    if PYPROJECT.exists():
        assert mqsentry.__version__ == _pyproject()["project"]["version"]


def _console_script() -> str | None:
    exe = os.path.join(os.path.dirname(sys.executable), "mqsentry")
    return exe if os.path.exists(exe) else shutil.which("mqsentry")


def test_version_flag_of_python_dash_m() -> None:
    r = subprocess.run([sys.executable, "-P", "-m", "mqsentry", "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"mqsentry {mqsentry.__version__}\n"


def test_version_flag_of_the_console_script() -> None:
    exe = _console_script()
    if exe is None:
        pytest.skip("the mqsentry console script is not installed beside this interpreter")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"mqsentry {mqsentry.__version__}\n"


def test_license_and_notice_ship_with_the_distribution() -> None:
    dist = importlib.metadata.distribution("mqsentry")
    meta = dist.metadata
    assert "Apache-2.0" in (meta["License-Expression"], meta["License"])
    if PYPROJECT.exists():
        assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
        assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in (ROOT / "LICENSE").read_text()
        notice = (ROOT / "NOTICE").read_text()
        assert "gVisor" in notice and "GNU General Public License" in notice


def _copy_checkout(tmp: pathlib.Path) -> pathlib.Path:
    """A copy of the checkout to build from (a build never writes into the checkout)."""
    _pyproject()
    src = tmp / "src"
    # .ci holds a symlink back to the root (for mypy): copy links as links and skip it anyway.
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".ci", "build", "dist", "*.egg-info", "__pycache__", ".venv", ".pytest_cache", ".hypothesis",
        ".mypy_cache", ".ruff_cache"))
    return src


@pytest.fixture(scope="module")
def package_tree(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """What an installation puts into site-packages, as setuptools' ``build_py`` lays it out: offline,
    cheap, and with any setuptools the build supports (no wheel machinery needed)."""
    tmp = tmp_path_factory.mktemp("build_py")
    src = _copy_checkout(tmp)
    out = tmp / "lib"
    code = ("import sys\nfrom setuptools import setup\n"
            f"sys.argv = ['setup.py', '-q', 'build_py', '--build-lib', {str(out)!r}]\nsetup()")
    r = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _wheel_reason() -> str | None:
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed"
    # bdist_wheel is built into setuptools >= 70.1; older ones need the wheel package.
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None and importlib.util.find_spec("wheel") is None:
        return (f"setuptools {importlib.metadata.version('setuptools')} cannot build wheels offline (no "
                "bdist_wheel: setuptools >= 70.1 or the wheel package needed); package_tree covers the layout")
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built offline (``--no-build-isolation --no-index``) from a copy of the checkout."""
    _pyproject()
    reason = _wheel_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_checkout(tmp)
    out = tmp / "out"
    # The layout is what is checked here: a pure build (MQSENTRY_COMPILE=0) skips the mypyc compile,
    # which .ci/run builds and tests on its own.
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                        "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "MQSENTRY_COMPILE": "0"})
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("mqsentry-*.whl")
    return zipfile.ZipFile(whl)


def _shipped_files() -> list[str]:
    """Every file of the checkout that an installation must hold, as ``mqsentry/<path>``."""
    want = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if not path.is_file() or rel.parts[0] in NOT_PACKAGED - {"docs"} or rel.parts[0].endswith(".egg-info") \
                or "__pycache__" in rel.parts:
            continue
        if rel.as_posix() == "setup.py":
            continue  # a build script at the root, not part of the package
        if path.suffix in (".py", ".c") or rel.parts[0] == "docs" or path.name in ("py.typed", "DESIGN.md"):
            want.append("mqsentry/" + rel.as_posix())
    assert any(w.endswith(".c") for w in want) and any(w.startswith("mqsentry/docs/") for w in want)
    return want


def test_installation_holds_only_the_mqsentry_package(package_tree: pathlib.Path) -> None:
    assert sorted(p.name for p in package_tree.iterdir()) == ["mqsentry"]


def test_installation_holds_every_module_program_and_doc(package_tree: pathlib.Path) -> None:
    """The test suite ships complete: every module, every C program, the docs the tests check."""
    missing = sorted(w for w in _shipped_files() if not (package_tree / w).is_file())
    assert missing == [], f"files of the checkout missing from an installation: {missing}"


def test_wheel_installs_only_the_mqsentry_package(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"mqsentry", f"mqsentry-{mqsentry.__version__}.dist-info"}


def test_wheel_holds_every_source_file_and_program(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = sorted(w for w in _shipped_files() if w not in names)
    assert missing == [], f"files of the checkout missing from the wheel: {missing}"


def test_wheel_carries_license_and_notice(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    for f in ("LICENSE", "NOTICE"):
        assert any(n.startswith(f"mqsentry-{mqsentry.__version__}.dist-info/") and n.endswith("/" + f)
                   for n in names), f"{f} is not in the wheel's dist-info: {names[-8:]}"
