"""The differential runner's CI profile and self-tests.

Linux counterpart: none (the host kernel is the oracle). gVisor counterpart: none.

``test_differential_profile`` runs a fixed, derandomized set of generated sequences on both targets in
lockstep (bounded to a few tens of seconds); ``mqsentry difftest --examples N`` runs the long profile.
The self-tests check that the runner notices a divergence, that its reproducer is valid Python that
passes on the host kernel, and that normalisation hides only pids, descriptor bases and times.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mqsentry.abi.linux.errno import EACCES, ENOENT
from mqsentry.abi.linux.file import O_CREAT, O_RDWR
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_STAT
from mqsentry.abi.linux.sysno import NUMBERS
from mqsentry.testsuite.difftest import ops
from mqsentry.testsuite.difftest.blocking import Park, Signal
from mqsentry.testsuite.difftest.ops import (
    Deliveries,
    Fork,
    MqNotify,
    MqOpen,
    MqRecv,
    MqSend,
    MsgCtl,
    MsgGet,
    MsgRcv,
    MsgSnd,
    ReadFd,
    ReadSysvipc,
    Thread,
)
from mqsentry.testsuite.difftest.runner import Case, Divergence, native_reason, record, render_test, replay, run_pair
from mqsentry.testsuite.difftest.strategies import blocking_cases, cases
from mqsentry.testsuite.difftest.world import FULL_CAPS, ActorSpec
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.targets.sentry import SentryTarget, SentryTask

#: Sequences in the CI profile (about 0.1-0.2 s each on the host).
CI_EXAMPLES = 100


def _need_native() -> None:
    reason = native_reason()
    if reason:
        pytest.skip(f"native target unavailable: {reason}")


@settings(max_examples=CI_EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(cases(5, 20))
def _profile(case: Case) -> None:
    run_pair(case)


def test_differential_profile() -> None:
    """A fixed set of generated sequences: the sentry matches the host kernel on every step."""
    _need_native()
    _profile()


#: Blocking sequences in the CI profile (``mqsentry difftest --blocking`` runs the long one).
CI_BLOCKING_EXAMPLES = 30


@settings(max_examples=CI_BLOCKING_EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(blocking_cases(5, 20))
def _blocking_profile(case: Case) -> None:
    run_pair(case)


def test_blocking_differential_profile() -> None:
    """Parked senders and receivers, far/invalid/expired deadlines, signals with and without
    SA_RESTART, removal while blocked: the sentry matches the host kernel on every step."""
    _need_native()
    _blocking_profile()


def test_blocking_steps_record_what_woke() -> None:
    """A parked receive completed by a later send shows up in that send's step, with its message."""
    _need_native()
    case = Case((ROOT, ROOT), (MqOpen(0, "w", O_CREAT | O_RDWR, 0o666, (1, 16)), MqOpen(1, "w", O_RDWR),
                               Park(1, "mq_recv", 0, 16, deadline="far"), MqSend(0, 0, 5, 3),
                               Park(1, "mq_recv", 0, 16, deadline="far_ns"), Signal(0, 0, 10)))
    obs = run_pair(case)
    assert obs[2] == ("+", ("park", "a1", "mq_recv"), ((), (("a1", 0),)))
    woke = obs[3]
    assert woke[0] == "+" and woke[1] == ("mq_send", 0, "past")
    (label, what, (n, data, prio)), = woke[2][0]
    assert (label, what, n, prio) == ("a1", "mq_recv", 5, 3) and len(data) == 5
    assert obs[5][2][0] == (("a1", "mq_recv", (-4,)),)  # EINTR: SIGUSR1's handler has no SA_RESTART


# -- self-tests -------------------------------------------------------------------------------------------

class _LyingTask(SentryTask):
    """A sentry thread whose msgget reports EACCES instead of ENOENT: a planted sentry bug."""

    def syscall(self, nr: int, *args: int) -> int:
        ret = super().syscall(nr, *args)
        if nr == NUMBERS["amd64"]["msgget"] and ret == -ENOENT:
            return -EACCES
        return ret


class _LyingTarget(SentryTarget):
    def spawn(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] = (), caps: int | None = None) -> SentryTask:
        t = super().spawn(uid, gid, groups, caps)
        return _LyingTask(self, t.task)


ROOT = ActorSpec(0, 0, (), FULL_CAPS)
USER = ActorSpec(1000, 1000, (2000,), 0)


def test_runner_reports_a_planted_divergence() -> None:
    _need_native()
    case = Case((ROOT,), (MsgGet(0, 1, IPC_CREAT | 0o600), MsgGet(0, 2, 0), MsgGet(0, 3, 0)))
    with pytest.raises(Divergence) as info:
        run_pair(case, make_sentry=_LyingTarget)
    d = info.value
    assert d.step == 1 and d.sentry == ("msgget", -EACCES) and d.native == ("msgget", -ENOENT)
    # The reproducer stops at the divergent step and its expected values are the host's.
    assert d.case.steps == case.steps[:2]
    assert d.expected[:2] == [("msgget", 0), ("msgget", -ENOENT)]
    assert "def test_divergence(target: Target) -> None:" in d.report()


def test_reproducer_is_python_that_passes_on_both_targets() -> None:
    """render_test's output, executed, replays on the host kernel and on the (correct) sentry."""
    _need_native()
    case = Case((ROOT, USER), (
        MsgGet(0, 1, IPC_CREAT | 0o644), MsgSnd(0, 0, 7, 5), MsgRcv(1, 0, 100, 0, IPC_NOWAIT),
        MqOpen(0, "q", O_CREAT | O_RDWR, 0o644, (2, 16)), Fork(0), MqSend(2, 0, 3, 1),
        MqRecv(0, 0, 16), ReadSysvipc()))
    expected = record(case)
    src = render_test("generated", case, expected, "Generated by the self-test.")
    namespace: dict[str, Any] = {"replay": replay, "ActorSpec": ActorSpec, "Target": Target, "FULL_CAPS": FULL_CAPS}
    namespace.update({n: getattr(ops, n) for n in ops.__all__})
    exec(compile(src, "<reproducer>", "exec"), namespace)
    from mqsentry.testsuite.targets.native import NativeTarget

    for make in (NativeTarget, SentryTarget):
        t = make()
        try:
            namespace["test_generated"](t)
        finally:
            t.close()


def test_pids_and_times_are_normalised(target: Target) -> None:
    """lspid/lrpid become actor labels (a thread's tid is its own label) and times become "T"."""
    case = (MsgGet(0, 1, IPC_CREAT | 0o666), Thread(1), MsgSnd(2, 0, 1, 3), MsgRcv(0, 0, 8, 0, IPC_NOWAIT),
            MsgCtl(0, 0, IPC_STAT))
    from mqsentry.testsuite.difftest.world import World

    w = World(target, (ROOT, USER))
    obs = [op.run(w) for op in case]
    ds = obs[-1][2]
    assert ds[7:10] == ("T", "T", "T")
    assert ds[13:] == ("a1", "a0")  # lspid is the sending thread's tgid: its process's label
    assert not w.violations


def test_notification_deliveries_compare(target: Target) -> None:
    """A SIGEV_SIGNAL notification fired by another actor is observed with the sender's label."""
    from mqsentry.testsuite.difftest.world import World

    w = World(target, (ROOT, USER))
    steps = (MqOpen(1, "n", O_CREAT | O_RDWR, 0o600, (2, 16)), MqOpen(0, "n", 0), MqNotify(0, 0, "signal", 10, 42),
             MqSend(1, 0, 4, 0), ReadFd(0, 0), Deliveries(0))
    obs = [op.run(w, None) for op in steps]
    assert obs[3] == ("mq_send", 0, "past")
    assert obs[4][2][3] == 0  # registration gone after firing
    assert obs[5] == ("deliveries", ((10, -3, "a1", 1000, 42),))
