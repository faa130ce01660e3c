"""The permission matrix as tests: the sentry against the host kernel, and against the Linux model.

Linux counterpart: ipc/util.c ``ipcperms``/``ipcctl_obtain_check``, ipc/msg.c ``msgctl_down``,
ipc/mqueue.c with fs/namei.c ``generic_permission``/``may_delete``. gVisor counterpart: the permission
cases of test/syscalls/linux/msgqueue.cc and mq.cc, generalised to the whole matrix.
"""

from __future__ import annotations

import pytest

from mqsentry.testsuite.difftest.runner import native_reason
from mqsentry.testsuite.permissions.matrix import CAPS, CLASSES, MODES, OPS, Cell, expected, run_matrix


@pytest.mark.parametrize("cls", list(CLASSES))
def test_matrix_matches_host(cls: str) -> None:
    """Every cell of this caller class: the sentry's result equals the host kernel's (and the model's;
    CAP_SYS_RESOURCE cells, which the host's root cannot hold, are checked against the model)."""
    reason = native_reason()
    if reason:
        pytest.skip(f"native target unavailable: {reason}")
    rep = run_matrix(native=True, classes=(cls,))
    assert rep.cells == len(OPS) * len(CAPS) * len(MODES)
    assert rep.compared == len(OPS) * (len(CAPS) - 1) * len(MODES)
    assert not rep.mismatches and not rep.model_errors, rep.summary()


def test_matrix_sentry_matches_model() -> None:
    """The whole matrix on the sentry alone, against the Linux model of :func:`expected` (runs anywhere)."""
    rep = run_matrix(native=False)
    assert rep.cells == len(OPS) * len(CLASSES) * len(CAPS) * len(MODES)
    assert not rep.mismatches, rep.summary()


def test_model_spot_checks() -> None:
    """A few cells of the model stated directly (ipc/util.c ipcperms, ipc/mqueue.c do_mq_open and mq_unlink)."""
    assert expected(Cell("msgget(0)", "other", "none", 0o000)) == "ok"  # no bits requested
    assert expected(Cell("msgget(0600)", "other", "none", 0o600)) == "EACCES"
    assert expected(Cell("msgrcv", "other", "CAP_IPC_OWNER", 0o000)) == "ok"
    assert expected(Cell("IPC_SET(mode)", "creator-not-owner", "none", 0o000)) == "ok"  # cuid matches
    assert expected(Cell("IPC_SET(qbytes+)", "owner", "none", 0o600)) == "EPERM"
    assert expected(Cell("IPC_SET(qbytes+)", "owner", "CAP_SYS_RESOURCE", 0o600)) == "ok"
    assert expected(Cell("IPC_RMID", "other", "CAP_SYS_ADMIN", 0o000)) == "ok"
    assert expected(Cell("MSG_STAT_ANY", "other", "none", 0o000)) == "ok"
    assert expected(Cell("mq_open(O_RDWR)", "group-supplementary", "none", 0o040)) == "EACCES"
    assert expected(Cell("mq_open(O_RDWR)", "other", "CAP_DAC_OVERRIDE", 0o000)) == "ok"
    assert expected(Cell("mq_open(O_RDONLY)", "creator-not-owner", "none", 0o400)) == "EACCES"  # chowned away
    assert expected(Cell("mq_unlink", "group-primary", "none", 0o777)) == "EPERM"  # sticky root
    assert expected(Cell("mq_unlink", "other", "CAP_FOWNER", 0o000)) == "ok"
