"""Errors raised by the libc layer: Linux's errno values, never the host's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mqsentry.abi.linux.errno import errno_name


class LinuxError(Exception):
    """A failed call: ``errno`` holds Linux's value."""

    def __init__(self, errno: int, what: str = "") -> None:
        super().__init__(errno, what)
        self.errno = errno
        self.what = what

    def __str__(self) -> str:
        return f"{self.what}: {errno_name(self.errno)}" if self.what else errno_name(self.errno)


@contextlib.contextmanager
def expect_errno(errno: int) -> Iterator[None]:
    """Assert that the block raises LinuxError with ``errno`` (names both on mismatch)."""
    try:
        yield
    except LinuxError as e:
        assert e.errno == errno, f"expected {errno_name(errno)}, got {e}"
    else:
        raise AssertionError(f"expected {errno_name(errno)}, but the call succeeded")
