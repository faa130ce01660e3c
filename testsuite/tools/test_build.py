"""The mypyc build (setup.py) and what ``mqsentry bench`` reports about it: the list of compiled
modules is one list, build products stay out of git, and the compiled/pure report matches the
modules actually imported. The compiled wheel itself is built and tested by .ci/run.

Linux counterpart: none (packaging). gVisor counterpart: none (Go is compiled anyway).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import pathlib

import pytest

from mqsentry.tools import buildinfo

ROOT = pathlib.Path(buildinfo.__file__).resolve().parents[1]
SETUP = ROOT / "setup.py"
checkout_only = pytest.mark.skipif(not SETUP.exists(), reason="not a source checkout (installed package)")


def _setup_constant(name: str) -> object:
    tree = ast.parse(SETUP.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            return ast.literal_eval(value)
    raise AssertionError(f"{name} not in setup.py")


@checkout_only
def test_setup_compiles_the_modules_bench_reports() -> None:
    assert _setup_constant("HOT_MODULES") == buildinfo.HOT_MODULES
    for name in buildinfo.HOT_MODULES:
        rel = pathlib.Path(*name.split(".")[1:]).with_suffix(".py")
        assert (ROOT / rel).is_file(), rel


@checkout_only
def test_build_products_are_ignored_by_git() -> None:
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    for pattern in ("build/", "*.so", "*.pyd", "dist/"):
        assert pattern in lines, pattern


def test_compiled_report_matches_the_imported_modules() -> None:
    compiled = buildinfo.compiled_modules()
    for name in buildinfo.HOT_MODULES:
        spec = importlib.util.find_spec(name)
        origin = (spec.origin if spec is not None else None) or ""
        is_ext = origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        assert (name in compiled) == is_ext, (name, origin)
    report = buildinfo.kernel_build()
    if not compiled:
        assert report == "pure Python"
    else:
        assert "compiled" in report and f"{len(compiled)}/{len(buildinfo.HOT_MODULES)}" in report


@checkout_only
def test_a_checkout_runs_pure_python() -> None:
    """Editable installs stay pure: an extension module next to its .py would shadow every edit."""
    stray = [p for pkg in ("kernel", "syscalls", "fs", "abi") for ext in ("*.so", "*.pyd")
             for p in (ROOT / pkg).rglob(ext)]
    assert not stray, stray
    assert buildinfo.compiled_modules() == []
