"""Argument checking, ``--json`` output, progress lines and the test-extra check shared by the subcommands.

Linux counterpart: none. gVisor counterpart: the flag validation of runsc's subcommands (runsc/flag,
each ``cmd``'s ``Execute`` returning ``subcommands.ExitUsageError``).

Every count a subcommand takes goes through one of the argparse ``type=`` helpers below, so that a
meaningless value (zero repetitions, a negative number of tasks) is a usage error: argparse prints
the usage line and the reason, and exits with status 2, never a traceback. ``--json PATH`` (``-``
for standard output) writes one machine-readable record of the run; progress goes to standard error
so that neither the text report nor the JSON on standard output is interleaved with it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

#: What a user without the test extra is told to run.
TEST_EXTRA_HINT = "pip install 'mqsentry[test]'"


class MissingExtra(Exception):
    """A subcommand needs a package of the ``test`` extra that is not installed."""

    def __init__(self, command: str, module: str) -> None:
        super().__init__(f"mqsentry {command} needs the '{module}' package, which is not installed: "
                         f"{TEST_EXTRA_HINT}")
        self.command = command
        self.module = module


def require_test_extra(command: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` unless every module of the test extra that ``command`` needs imports."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingExtra(command, name) from None


def _number(kind: Callable[[str], Any], what: str, low: float, inclusive: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if v != v or v in (float("inf"), float("-inf")):  # NaN or infinity: never a meaningful count or time
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if v < low or (v == low and not inclusive):
            raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
        return v

    parse.__name__ = what  # argparse names the type in some messages
    return parse


#: argparse ``type=`` for counts that must be at least one.
positive_int = _number(int, "a positive integer (at least 1)", 1, True)
#: argparse ``type=`` for counts where zero means "none" or "off".
nonnegative_int = _number(int, "an integer >= 0", 0, True)
#: argparse ``type=`` for durations and bounds that must be > 0.
positive_float = _number(float, "a number > 0", 0.0, False)


def add_json_argument(p: argparse.ArgumentParser) -> None:
    """``--json PATH``: also write the run's result as JSON to PATH (``-``: standard output)."""
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the result as one JSON object to PATH ('-' for standard output, in which "
                   "case the text report goes to standard error)")


def text_out(args: argparse.Namespace) -> TextIO:
    """Where the human-readable report goes: stdout, or stderr when ``--json -`` takes stdout."""
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


def write_json(args: argparse.Namespace, command: str, result: dict[str, Any], status: int) -> None:
    """Write ``result`` (plus the command, the exit status and the version) where ``--json`` says."""
    dest = getattr(args, "json", None)
    if dest is None:
        return
    from mqsentry import __version__

    record = {"command": command, "version": __version__, "status": status, **result}
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    if dest == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)


def check_json_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail with a usage error now, not after a long run, if the ``--json`` file cannot be written."""
    dest = getattr(args, "json", None)
    if dest is None or dest == "-":
        return
    try:
        with open(dest, "a", encoding="utf-8"):
            pass
    except OSError as e:
        parser.error(f"--json: cannot write {dest!r}: {e.strerror or e}")


class Progress:
    """Progress lines on standard error, at most one every ``every`` seconds (0: never)."""

    def __init__(self, command: str, every: float = 5.0, stream: TextIO | None = None) -> None:
        self.command = command
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self._last = self.start

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def step(self, what: str) -> None:
        """Announce the start of a phase of the run (unless progress is off)."""
        if self.every:
            self._last = time.monotonic()
            self.stream.write(f"{self.command}: {what} ({self._last - self.start:.0f}s)\n")
            self.stream.flush()

    def tick(self, what: Callable[[], str]) -> None:
        """Print ``what()`` if the interval has passed (``what`` is only called then: it may be costly)."""
        if not self.every:
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.stream.write(f"{self.command}: {what()} ({now - self.start:.0f}s)\n")
            self.stream.flush()


__all__ = ["MissingExtra", "require_test_extra", "TEST_EXTRA_HINT", "positive_int", "nonnegative_int",
           "positive_float", "add_json_argument", "text_out", "write_json", "check_json_path", "Progress"]
