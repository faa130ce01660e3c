"""Fixtures of the platform tests: skip when the host cannot run them; compiled programs."""

from __future__ import annotations

import pytest

from mqsentry.testsuite.platform import helpers


@pytest.fixture(scope="session")
def platform_ok() -> None:
    reason = helpers.skip_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def cprog(platform_ok: None, tmp_path_factory: pytest.TempPathFactory):
    """``cprog(name)``: the path of testsuite/platform/c/<name>.c compiled for this session."""
    outdir = str(tmp_path_factory.mktemp("platform-c"))

    def build(name: str) -> str:
        return helpers.compile_c(name, outdir)

    return build
