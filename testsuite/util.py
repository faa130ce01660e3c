"""Helpers for tests that need concurrency: run a call in the background, wait for a condition."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

#: Generous bound for anything a test waits on; a correct run takes milliseconds.
WAIT = 20.0


def background(fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    """Run ``fn`` on a new daemon thread; the future holds its result or exception."""
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            fut.set_result(fn())
        except BaseException as e:
            fut.set_exception(e)

    threading.Thread(target=run, daemon=True).start()
    return fut


def wait_until(pred: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    """Poll ``pred`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def start_blocked(proc: Any, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    """Run ``fn`` (a call on ``proc``) in the background and wait until ``proc`` sleeps in it."""
    fut = background(fn)
    wait_until(lambda: fut.done() or proc.is_blocked(), what=f"task {proc.tid} to block")
    if fut.done():
        raise AssertionError(f"the call did not block: {fut.exception() or fut.result()!r}")
    return fut


def errno_of(fut: concurrent.futures.Future[Any]) -> int:
    """The LinuxError errno a background call ended with (it must fail)."""
    from mqsentry.testsuite.libc.errors import LinuxError

    exc = fut.exception(timeout=WAIT)
    assert isinstance(exc, LinuxError), f"expected a failure, got {fut.result()!r}"
    return exc.errno


def wait_blocked(proc: Any, timeout: float = WAIT) -> None:
    """Wait until ``proc`` (a Proc or task handle) sleeps inside its current syscall."""
    wait_until(proc.is_blocked, timeout, f"task {proc.tid} to block")
