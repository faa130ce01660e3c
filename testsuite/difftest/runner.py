"""Lockstep execution of a sequence on the sentry and the host kernel, and reproducer printing.

Linux counterpart: none (Linux is the oracle). gVisor counterpart: none; the closest is running one
``test/syscalls`` binary under both ``native`` and ``runsc`` test targets and diffing the outcomes.

:func:`run_pair` runs every step on a fresh sentry world and then on a fresh native world, compares
the two observations and stops at the first difference with a :class:`Divergence`, whose message is a
ready-to-paste regression test (the sequence up to the divergent step, with the host's observations as
the expected values). :func:`replay` is what such a regression test calls: it runs the steps on one
target and checks every observation against the recorded ones.
"""

from __future__ import annotations

import pprint
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mqsentry.testsuite.difftest.blocking import step
from mqsentry.testsuite.difftest.ops import Final, Obs, Op
from mqsentry.testsuite.difftest.world import FULL_CAPS, ActorSpec, World
from mqsentry.testsuite.targets.base import Target


@dataclass(frozen=True)
class Case:
    """One generated sequence: the actors spawned first, then the steps."""

    actors: tuple[ActorSpec, ...]
    steps: tuple[Op, ...]


class Divergence(AssertionError):
    """The sentry and the host kernel observed different results (or one side broke an invariant)."""

    def __init__(self, case: Case, step: int, sentry: Obs, native: Obs, expected: list[Obs], why: str) -> None:
        self.case = case
        self.step = step
        self.sentry = sentry
        self.native = native
        self.expected = expected
        self.why = why
        super().__init__(self.report())

    def report(self) -> str:
        op = self.case.steps[self.step] if self.step < len(self.case.steps) else Final()
        return (f"{self.why} at step {self.step}: {op!r}\n  sentry: {self.sentry!r}\n  native: {self.native!r}\n\n"
                "Regression test (expected values are the host kernel's):\n\n"
                + render_test("divergence", self.case, self.expected, f"{self.why} at step {self.step}: {op!r}."))


def native_reason() -> str | None:
    """Why the native target cannot run here (None if it can)."""
    from mqsentry.testsuite.targets import native

    return native.unavailable_reason()


def _sentry() -> Target:
    from mqsentry.testsuite.targets.sentry import SentryTarget

    return SentryTarget()


def _native() -> Target:
    from mqsentry.testsuite.targets.native import NativeTarget

    return NativeTarget()


def run_pair(case: Case, make_sentry: Callable[[], Target] = _sentry,
             make_native: Callable[[], Target] = _native) -> list[Obs]:
    """Run ``case`` in lockstep on fresh targets; the host's observations, or :class:`Divergence`."""
    ws = World(make_sentry(), case.actors)
    expected: list[Obs] = []
    try:
        wn = World(make_native(), case.actors)
        try:
            steps: Sequence[Op] = (*case.steps, Final())
            for i, op in enumerate(steps):
                s = step(ws, op)
                n = step(wn, op, s)
                expected.append(n)
                if wn.violations:
                    raise AssertionError(f"native run broke a runner invariant (a runner bug): {wn.violations}")
                why = "divergence" if s != n else f"sentry invariant broken: {ws.violations}" if ws.violations else ""
                kernel = getattr(ws.target, "kernel", None)
                if not why and kernel is not None and kernel.internal_errors:
                    why = f"sentry internal error: {kernel.internal_error_log[-1][:2000]}"
                if why:
                    # The reproducer stops at this step; record the host's view of that shorter sequence
                    # (including its final snapshot) for the regression test.
                    short = Case(case.actors, tuple(case.steps[:i + 1]))
                    raise Divergence(short, i, s, n, record(short, make_native), why)
        finally:
            wn.close()
    except Divergence:
        try:
            ws.close()
        except AssertionError:
            pass  # the sentry's own report of the internal error: the Divergence already carries it
        raise
    except BaseException:
        ws.close()
        raise
    ws.close()
    return expected


def record(case: Case, make_native: Callable[[], Target] = _native) -> list[Obs]:
    """The host kernel's observations of ``case`` (steps and final snapshot)."""
    w = World(make_native(), case.actors)
    try:
        return [step(w, op) for op in (*case.steps, Final())]
    finally:
        w.close()


def replay(target: Target, actors: Sequence[ActorSpec], steps: Sequence[Op], expected: Sequence[Obs]) -> None:
    """Run ``steps`` (and the final snapshot) on ``target`` and compare with ``expected``."""
    w = World(target, actors)
    try:
        for i, op in enumerate((*steps, Final())):
            want = expected[i]
            got = step(w, op, want)
            assert got == want, f"step {i} {op!r}:\n  got:      {got!r}\n  expected: {want!r}"
            assert not w.violations, f"step {i} {op!r}: {w.violations}"
    finally:
        from mqsentry.testsuite.difftest.blocking import release

        release(w)


def render_test(name: str, case: Case, expected: Sequence[Obs], doc: str) -> str:
    """Python source of a regression test replaying ``case`` against ``expected``."""
    def fmt(x: object) -> str:
        return pprint.pformat(x, width=108, compact=True).replace("\n", "\n" + " " * 8)

    steps = "".join(f"\n            {s!r}," for s in case.steps)
    actors = fmt(list(case.actors)).replace(f"caps={FULL_CAPS})", "caps=FULL_CAPS)")
    return (f"def test_{name}(target: Target) -> None:\n"
            f'    """{textwrap.fill(doc, 100, subsequent_indent="    ")}"""\n'
            f"    replay(target,\n"
            f"        {actors},\n"
            f"        [{steps}\n        ],\n"
            f"        {fmt(list(expected))})\n")


__all__ = ["Case", "Divergence", "run_pair", "record", "replay", "render_test", "native_reason"]
