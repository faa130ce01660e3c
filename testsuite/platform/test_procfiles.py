"""Unit checks of the /proc IPC file server's pure parts: the node table and the sysctl write parser.

Linux counterpart: fs/proc/proc_sysctl.c and kernel/sysctl.c (``__do_proc_dointvec``,
``proc_get_long``); the end-to-end comparison with Linux is testsuite/platform/c/proc_files.c.
gVisor counterpart: none.
"""

from __future__ import annotations

import pytest

from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.ipc_namespace import SYSCTLS
from mqsentry.kernel.platform.procfiles import (
    MAY_READ,
    MAY_WRITE,
    NODES,
    may,
    parse_dointvec,
)

INT_MAX = 0x7FFF_FFFF


def test_node_modes_agree_with_the_sysctl_table() -> None:
    for node in NODES.values():
        if node.sysctl is not None:
            assert node.mode == SYSCTLS[node.sysctl].mode, node.name
    assert sorted(n.name for n in NODES.values() if n.listed) == [
        "msg_default", "msg_max", "msgsize_default", "msgsize_max", "queues_max"]


# What this host's kernel answered for each write (see proc_files.c and the issue 10 report).
@pytest.mark.parametrize(("data", "expected"), [
    (b"", (None, 0)),
    (b"5 6", (5, 2)),
    (b"  7  \n\n", (7, 7)),
    (b"0x10", (16, 4)),
    (b"010", (8, 3)),
    (b"-5", (-5, 2)),
    (b"2147483647", (INT_MAX, 10)),
])
def test_dointvec_accepts(data: bytes, expected: tuple[int | None, int]) -> None:
    assert parse_dointvec(data, -INT_MAX - 1, INT_MAX) == expected


@pytest.mark.parametrize("data", [b"abc", b"8x", b"08", b"0x", b"-", b" \n", b"5\0", b"2147483648",
                                  b"99999999999999999999", b"1" * 21])
def test_dointvec_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_dointvec(data, -INT_MAX - 1, INT_MAX)


def test_dointvec_range() -> None:
    with pytest.raises(ValueError):
        parse_dointvec(b"-1", 0, INT_MAX)
    with pytest.raises(ValueError):
        parse_dointvec(b"32769", 0, 32768)
    assert parse_dointvec(b"32768", 0, 32768) == (32768, 5)


def test_permissions() -> None:
    root = Credentials.for_user(0, 0)
    user = Credentials.for_user(1000, 1000)
    by_name = {n.name: n for n in NODES.values()}
    assert may(by_name["kernel.msgmax"], root, MAY_READ | MAY_WRITE) == 0
    assert may(by_name["kernel.msgmax"], user, MAY_READ) == 0
    assert may(by_name["kernel.msgmax"], user, MAY_WRITE) != 0
    assert may(by_name["kernel.msg_next_id"], root, MAY_WRITE) == 0  # CAP_SYS_ADMIN: 0666
    assert may(by_name["kernel.msg_next_id"], Credentials.for_user(0, 0, caps=0), MAY_WRITE) != 0
    assert may(by_name["sysvipc.msg"], root, MAY_WRITE) == 0  # opens; the write itself is EIO
    assert may(by_name["sysvipc.msg"], user, MAY_WRITE) != 0
