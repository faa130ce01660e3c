"""Shrunk reproducers of divergences the differential runner found, kept as regression tests.

Linux counterpart: the behaviour each docstring names (ipc/msg.c, ipc/mqueue.c). gVisor counterpart:
none. Each test replays a minimal sequence on ``target`` (both targets) and checks every observation
against the host kernel's, recorded when the divergence was found; on ``native`` it proves the recorded
values are Linux's, on ``sentry`` it guards the fix.
"""

from __future__ import annotations

from mqsentry.abi.linux.file import O_CREAT, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY  # noqa: F401
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_STAT  # noqa: F401

# Every operation, so that a new reproducer can be pasted as printed.
from mqsentry.testsuite.difftest.ops import (  # noqa: F401
    Close,
    Deliveries,
    Dup,
    Exit,
    Fork,
    MqAttr,
    MqNotify,
    MqOpen,
    MqRecv,
    MqSend,
    MqUnlink,
    MsgCtl,
    MsgGet,
    MsgRcv,
    MsgSet,
    MsgSnd,
    ReadFd,
    ReadSysvipc,
    Sysctl,
    Thread,
    Unshare,
)
from mqsentry.testsuite.difftest.runner import replay
from mqsentry.testsuite.difftest.world import FULL_CAPS, ActorSpec
from mqsentry.testsuite.targets.base import Target


def test_ipc_set_qbytes_int_truncation(target: Target) -> None:
    """IPC_SET passes msg_qbytes to msgctl_down as an int compared with the unsigned msgmnb: 2^31 is EPERM
    without CAP_SYS_RESOURCE, 2^32 + 5 truncates to 5 and is allowed."""
    replay(target,
        [ActorSpec(uid=1001, gid=2000, groups=(), caps=0)],
        [
            MsgGet(a=0, key=1, flags=IPC_CREAT | 0o600),
            MsgSet(a=0, q=0, uid=1001, gid=2000, mode=0o600, qbytes=1 << 31, ptr='ok'),
            MsgSet(a=0, q=0, uid=1001, gid=2000, mode=0o600, qbytes=(1 << 32) + 5, ptr='ok'),
            MsgCtl(a=0, q=0, cmd=IPC_STAT, idx=False, ptr='ok'),
        ],
        [('msgget', 0), ('ipc_set', -1), ('ipc_set', 0),
         ('msgctl', 0, (1, 1001, 2000, 1001, 2000, 384, 0, 0, 0, 'T', 0, 0, 5, 0, 0)),
         ('final',
          ('sysvipc',
           b'       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime   '
           b'   rtime      ctime\n',
           ((1, 0, 384, 0, 0, 0, 0, 1001, 2000, 1001, 2000, 0, 0, 'T'),)),
          ('deliveries', ()), ('fds', ()))])


def test_mq_queues_max_negative_is_unlimited(target: Target) -> None:
    """fs.mqueue.queues_max is an unsigned int set through proc_dointvec: -1 reads back as -1 and lifts the
    limit (UINT_MAX); 0 makes the next creation ENOSPC (no actor has CAP_SYS_RESOURCE)."""
    replay(target,
        [ActorSpec(uid=0, gid=0, groups=(), caps=FULL_CAPS)],
        [
            Sysctl(name='queues_max', value='-1'),
            MqOpen(a=0, name='a', oflag=O_CREAT | O_RDWR, mode=0o600, attr=(2, 16)),
            Sysctl(name='queues_max', value='0'),
            MqOpen(a=0, name='b', oflag=O_CREAT | O_RDWR, mode=0o600, attr=(2, 16)),
        ],
        [('sysctl', 0, b'-1\n'), ('mq_open', 0), ('sysctl', 0, b'0\n'), ('mq_open', -28),
         ('final',
          ('sysvipc',
           b'       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime   '
           b'   rtime      ctime\n',
           ()),
          ('deliveries', ()), ('fds', ((0, (b'0         ', b'0    ', b'0    ', 0)),)))])

