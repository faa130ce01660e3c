"""``mqsentry run`` serves i386 programs on x86_64 (AUDIT_ARCH_I386 notifications: i386 numbers, the
ipc(2) multiplexer, compat structures, the _time64 calls): mqprobe built with Debian's i686 compiler
prints the same under the platform as natively, beside its x86_64 build. Skips with the reason when
the platform, the compiler or the native reference run is unavailable."""

from __future__ import annotations

import pytest

from mqsentry.testsuite.abi32 import builds
from mqsentry.testsuite.platform import helpers


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    reason = helpers.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return str(tmp_path_factory.mktemp("abi32-run"))


@pytest.mark.parametrize("arch", ["i386", "amd64"])
def test_run_serves_the_program_as_the_kernel_does(arch: str, outdir: str) -> None:
    reason = builds.native_reason(arch)
    if reason is not None:
        pytest.skip(reason)
    exe = builds.build(arch, "mqprobe", outdir)
    native = builds.run_native(exe)
    sentry = helpers.run_sentry([exe], extra=["--stats"])
    helpers.assert_same(native, sentry)
    assert "'served': 0," not in sentry.stderr, sentry.stderr  # the sentry, not the host, answered


@pytest.mark.parametrize("name", ["sysv_basic", "posix_basic", "notify", "threads", "signals", "creds"])
def test_platform_programs_built_for_i386(name: str, outdir: str) -> None:
    """The platform suite's own C programs (threads, fork+exec, signals and restarts, SIGEV_SIGNAL and
    SIGEV_THREAD notifications, credentials), built for i686."""
    reason = builds.native_reason("i386")
    if reason is not None:
        pytest.skip(reason)
    exe = builds.build("i386", name, outdir, helpers.C_DIR)
    helpers.assert_same(builds.run_native(exe), helpers.run_sentry([exe]))
