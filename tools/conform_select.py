"""The pytest plugin ``mqsentry conform`` loads (``-p``): only target-parametrized tests run.

Linux counterpart: none. gVisor counterpart: the test runner's selection of syscall tests.

A module of its own, loaded by name, so that pytest-xdist's workers (which collect and run the
tests) load it too; ``--target`` (testsuite/conftest.py) picks the target.
"""

from __future__ import annotations

from typing import Any


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Deselect every test that does not take the ``target`` fixture."""
    keep: list[Any] = []
    drop: list[Any] = []
    for it in items:
        params = getattr(getattr(it, "callspec", None), "params", {})
        # A test restricted to the other target has an empty parameter set (pytest's NOTSET): not
        # a test of this one.
        (keep if isinstance(params.get("target"), str) else drop).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
