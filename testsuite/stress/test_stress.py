"""The CI profile of ``mqsentry stress``: 16 tasks on threads for a couple of seconds.

Checks (see tools/stress.py): no message lost or duplicated (received exactly once, still queued, or
destroyed by IPC_RMID, counted exactly), every result one Linux allows, the blocking paths really ran
(EINTR from signals, EIDRM from IPC_RMID, ETIMEDOUT from deadlines), invariants, no deadlock.
"""

from __future__ import annotations

from mqsentry.tools.stress import stress


def test_stress_short_profile() -> None:
    res = stress(tasks=16, seconds=2.0, seed=21, bound=30.0)
    assert not res.violations, "\n".join(res.violations[:10])
    assert res.sent > 100 and res.received > 100
    assert res.sent == res.received + res.queued_at_end + res.destroyed
    seen = set(res.outcomes)
    # Interrupted, removed-under and timed-out sleepers all returned Linux's errno.
    assert {"msgrcv/any:4", "msgrcv/eq:4", "msgrcv/le:4", "msgrcv/except:4"} & seen, seen
    assert any(k.endswith(":43") for k in seen), seen  # EIDRM after IPC_RMID
    assert any(k.startswith("mq_") and k.endswith(":110") for k in seen), seen  # ETIMEDOUT
    assert res.signals_delivered > 0 and res.rmids > 0 and res.unlinks > 0


def test_stress_more_tasks_than_roles() -> None:
    res = stress(tasks=24, seconds=1.0, seed=22, bound=30.0)
    assert not res.violations, "\n".join(res.violations[:10])
    assert res.sent == res.received + res.queued_at_end + res.destroyed
