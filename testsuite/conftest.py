"""Fixtures: every test that takes ``target`` (or ``proc``) runs once per target.

``--target=sentry`` or ``--target=native`` restricts the run to one target.

Every test also fails if any :class:`~mqsentry.kernel.Kernel` created while it ran (by a target, a
tool such as the fuzzer or the differential runner, or the test itself) counted an internal error
(``Kernel.internal_errors``): an exception inside the sentry is a bug even when the guest only saw
an errno.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mqsentry.kernel.kernel import Kernel, observe_kernels
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target

TARGETS = ("sentry", "native")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--target", action="append", choices=TARGETS,
                     help="run only against this target (repeatable); default: both")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--target") or list(TARGETS)
        only = getattr(metafunc.function, "pytestmark", [])
        restrict = [m.args[0] for m in only if m.name == "only_target"]
        names = [t for t in chosen if not restrict or t in restrict]
        metafunc.parametrize("target", names, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "only_target(name): run this test on one target only, with the reason")


def make_target(name: str) -> Target:
    if name == "sentry":
        from mqsentry.testsuite.targets.sentry import SentryTarget

        return SentryTarget()
    from mqsentry.testsuite.targets import native

    reason = native.unavailable_reason()
    if reason:
        pytest.skip(f"native target unavailable: {reason}")
    return native.NativeTarget()


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    t = make_target(request.param)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def proc(target: Target) -> Proc:
    """A root process with every capability in the test's fresh IPC namespace."""
    return Proc(target.spawn())


@pytest.fixture(autouse=True)
def _no_internal_errors() -> Iterator[None]:
    """Fail the test if a kernel it created hit an internal error (checked after its teardown)."""
    created: list[Kernel] = []
    watch = created.append
    observe_kernels(watch)
    try:
        yield
    finally:
        observe_kernels(None, remove=watch)
    bad = [k for k in created if k.internal_errors]
    if bad:
        logs = [e for k in bad for e in k.internal_error_log]
        pytest.fail(f"{sum(k.internal_errors for k in bad)} sentry internal error(s):\n" + "\n".join(logs[:5]),
                    pytrace=False)
