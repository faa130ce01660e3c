"""Hypothesis strategies for differential sequences.

Linux counterpart: none. gVisor counterpart: none (syzkaller descriptions are the nearest relative:
typed arguments drawn from small sets of interesting values).

Values are drawn from small sets chosen to collide and to sit on Linux's boundaries: few keys and
names (so actors meet on the same objects), sizes around msgmax/msgmnb/msgsize, types around 0 and
LONG_MIN/LONG_MAX, priorities around MQ_PRIO_MAX, modes that exercise each permission class, past and
invalid deadlines, bad and edge-of-mapping pointers. The simplest value of each set comes first, which
is what hypothesis shrinks towards.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from mqsentry.abi.linux.capability import CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_IPC_OWNER, CAP_SYS_ADMIN
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_NONBLOCK, O_RDWR
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_STAT
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_EXCEPT, MSG_INFO, MSG_NOERROR, MSG_STAT, MSG_STAT_ANY
from mqsentry.testsuite.difftest import blocking, ops
from mqsentry.testsuite.difftest.runner import Case
from mqsentry.testsuite.difftest.world import FULL_CAPS, ActorSpec

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1

ACTOR = st.integers(0, 7)


def pick(common: list, rare: Sequence = (), weight: int = 4) -> st.SearchStrategy:
    """One of ``common`` (each ``weight`` times as likely as a ``rare`` value); shrinks to common[0].
    The rare values sit in the middle: hypothesis favours both ends of a sampled list."""
    half = (weight + 1) // 2
    return st.sampled_from(list(common) * half + list(rare) + list(common) * (weight - half))


KEYS = pick([1, 2], [0, -5])
MODES = pick([0o600, 0o666, 0o644, 0o660], [0o400, 0o200, 0o000, 0o060, 0o040, 0o020, 0o006, 0o004, 0o002,
                                           0o777, 0o7777], 3)
QREF = pick([0, 1, 2], [-1, -2, -3, -4])
FDREF = pick([0, 1, 2, 3], [-1, -2])
SIZES = pick([0, 1, 16, 100], [8191, 8192, 8193, 16384, 16385, 65536, 1 << 40, 1 << 63, (1 << 64) - 1], 8)
MQ_SIZES = pick([16, 0, 1, 8], [15, 17, 128, 8191, 8192, 8193, 65536, 1 << 40, 1 << 63], 8)
MTYPES = pick([1, 2, 3], [0, -1, LONG_MAX, LONG_MIN], 8)
MSGTYPS = pick([0, 1, 2, -2], [3, -1, -3, 5, LONG_MAX, LONG_MIN])
PRIOS = pick([0, 1, 5], [32767, 32768, 0xFFFF_FFFF])
TIMEOUTS = pick(["past", "null"], ["past_ns", "ns_big", "ns_neg", "sec_neg", "bad", "edge"], 6)
NAMES = pick(["a", "b"], ["", "x/y", ".", "BAD", "EDGE", "L255", "L256"], 6)
SIGNOS = pick([10, 12, 34], [0, 17, 65, -1])
PTRS = pick(["ok"], ["bad", "edge", "null"], 16)
RCV_PTRS = pick(["ok"], ["bad", "edge", "null"], 16)


#: Optional capabilities an actor may hold (never CAP_SYS_RESOURCE: see world.FULL_CAPS).
CAPS = (CAP_IPC_OWNER, CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_FOWNER)


@st.composite
def actor_specs(draw: st.DrawFn) -> ActorSpec:
    uid = draw(st.sampled_from([0, 1000, 1001, 1002]))
    gid = draw(st.sampled_from([0, 1000, 2000]))
    groups = tuple(sorted(draw(st.sets(st.sampled_from([1000, 2000, 3000]), max_size=2))))
    if uid == 0 and draw(st.booleans()):
        # Root, possibly without some of the IPC-relevant capabilities.
        drop = draw(st.sets(st.sampled_from(CAPS)))
        caps = FULL_CAPS
        for c in drop:
            caps &= ~(1 << c)
    else:
        caps = 0
        for c in draw(st.sets(st.sampled_from(CAPS))):
            caps |= 1 << c
    return ActorSpec(uid, gid, groups, caps)


SYSV_OPS = [
    st.builds(ops.MsgGet, ACTOR, KEYS, st.tuples(pick([IPC_CREAT, 0], [IPC_CREAT | IPC_EXCL]), MODES).map(sum)),
    st.builds(ops.MsgSnd, ACTOR, QREF, MTYPES, SIZES, st.just(IPC_NOWAIT), PTRS),
    st.builds(ops.MsgRcv, ACTOR, QREF, pick([100, 16, 1, 0], [8191, 8192, 8193, 65536, 1 << 40, 1 << 63]),
              MSGTYPS, pick([IPC_NOWAIT, IPC_NOWAIT | MSG_NOERROR, IPC_NOWAIT | MSG_EXCEPT],
                            [IPC_NOWAIT | MSG_COPY, MSG_COPY, IPC_NOWAIT | MSG_COPY | MSG_NOERROR,
                             IPC_NOWAIT | MSG_COPY | MSG_EXCEPT, IPC_NOWAIT | MSG_NOERROR | MSG_EXCEPT]), RCV_PTRS),
    st.builds(ops.MsgCtl, ACTOR, QREF,
              pick([IPC_STAT, MSG_STAT, MSG_STAT_ANY, IPC_RMID, IPC_INFO, MSG_INFO], [99, -1, IPC_STAT | 0x100]),
              st.booleans(), PTRS),
    st.builds(ops.MsgSet, ACTOR, QREF, pick([0, 1000, 1001, 1002], [-1]), pick([0, 1000, 2000, 3000], [-1]), MODES,
              pick([16384, 5, 100, 1], [0, 16385, 1 << 20, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 63]), PTRS),
]

ATTRS = pick([(2, 16), (1, 16), (3, 8), None], ["bad", (10, 8192), (11, 8192), (10, 8193), (0, 1), (1, 0), (-1, 1),
                                             (65536, 128), (65537, 1), (2, 1 << 62), (1 << 62, 1 << 62)])

POSIX_OPS = [
    st.builds(ops.MqOpen, ACTOR, NAMES, st.tuples(pick([2, 0, 1], [3]), pick([O_CREAT, 0], [O_CREAT | O_EXCL]),
                                                  pick([0], [O_NONBLOCK, O_EXCL])).map(sum), MODES, ATTRS),
    st.builds(ops.MqUnlink, ACTOR, NAMES),
    st.builds(ops.MqSend, ACTOR, FDREF, MQ_SIZES, PRIOS, TIMEOUTS, PTRS),
    st.builds(ops.MqRecv, ACTOR, FDREF, pick([16, 8192], [0, 1, 15, 17, 8193, 1 << 40, 1 << 63]), TIMEOUTS,
              pick(["ok"], ["bad", "edge"], 10), pick(["ok", "null"], ["bad"], 5)),
    st.builds(ops.MqNotify, ACTOR, FDREF, pick(["signal", "null", "none"], ["notify", "thread", "thread_bad", "bad"]),
              SIGNOS, st.sampled_from([0, 7, -1])),
    st.builds(ops.MqAttr, ACTOR, FDREF, pick([None, 0, O_NONBLOCK], [O_NONBLOCK | O_RDWR, 1, "bad"]),
              pick(["ok", "null"], ["bad"])),
    st.builds(ops.Close, ACTOR, FDREF),
    st.builds(ops.Dup, ACTOR, FDREF),
    st.builds(ops.ReadFd, ACTOR, FDREF, st.booleans()),
]

SYSCTL_VALUES = {
    "msgmax": ["16", "0", "8192", "65536", "-1", "2147483647", "2147483648", "x"],
    "msgmnb": ["5", "0", "16384", "100000", "-1"],
    "msgmni": ["1", "0", "2", "32000", "32768", "32769"],
    "queues_max": ["1", "0", "256", "-1"],
    "msg_max": ["1", "0", "2", "10", "65536", "65537"],
    "msgsize_max": ["128", "127", "8192", "16777216", "16777217"],
    "msg_default": ["1", "0", "2", "65536", "65537"],
    "msgsize_default": ["128", "127", "8192", "16777217"],
}

OTHER_OPS = [
    st.builds(ops.Fork, ACTOR),
    st.builds(ops.Thread, ACTOR),
    st.builds(ops.Exit, ACTOR),
    st.builds(ops.Unshare, ACTOR),
    st.builds(ops.Deliveries, ACTOR),
    st.sampled_from(sorted(SYSCTL_VALUES)).flatmap(
        lambda n: st.builds(ops.Sysctl, st.just(n), st.sampled_from(SYSCTL_VALUES[n]))),
    st.just(ops.ReadSysvipc()),
]

#: Operations weighted towards the IPC calls (each list entry is one branch of one_of).
OPS = st.one_of(*SYSV_OPS, *POSIX_OPS[:4], *OTHER_OPS, *POSIX_OPS, *SYSV_OPS[:3])


#: Opening moves that create objects, so that the random steps after them meet something.
PROLOGUE = st.one_of(
    st.builds(ops.MsgGet, ACTOR, KEYS, MODES.map(lambda m: IPC_CREAT | m)),
    st.builds(ops.MqOpen, ACTOR, pick(["a", "b"]), st.just(O_CREAT | O_RDWR), MODES, pick([(2, 16), (3, 8), None])),
)


def cases(min_steps: int = 5, max_steps: int = 30) -> st.SearchStrategy[Case]:
    """Actors (1-4 spawned processes) and steps: up to 3 creating moves, then random operations."""
    steps = st.tuples(st.lists(PROLOGUE, max_size=3), st.lists(OPS, min_size=min_steps, max_size=max_steps))
    return st.builds(Case, st.lists(actor_specs(), min_size=1, max_size=4).map(tuple),
                     steps.map(lambda t: tuple(t[0] + t[1])))


# -- blocking sequences (testsuite.difftest.blocking) --------------------------------------------------------

DEADLINE_KINDS = pick(["null", "far"], ["far_ns", "past", "sec_neg", "ns_big"], 4)

BLOCKING_OPS = [
    st.builds(blocking.Park, ACTOR, st.just("mq_recv"), FDREF, pick([16, 8192], [1, 8193]), st.just(0), st.just(0),
              DEADLINE_KINDS),
    st.builds(blocking.Park, ACTOR, st.just("mq_send"), FDREF, pick([16, 1, 8], [0, 17, 8193]), PRIOS, st.just(0),
              DEADLINE_KINDS),
    st.builds(blocking.Park, ACTOR, st.just("msgrcv"), QREF, pick([100, 16], [1, 0]), MSGTYPS,
              pick([0, MSG_NOERROR], [MSG_EXCEPT, MSG_EXCEPT | MSG_NOERROR])),
    st.builds(blocking.Park, ACTOR, st.just("msgsnd"), QREF, pick([16, 60, 1], [0, 8192, 8193]), MTYPES, st.just(0)),
    st.builds(blocking.Signal, ACTOR, st.integers(0, 3), pick([10, blocking.RESTART_SIGNAL], [34, 12])),
]

#: Small queues, so that senders find them full: an mq queue of 1 or 2 messages, opened by every
#: actor, and a SysV queue of 100 bytes.
BLOCKING_PROLOGUE = st.tuples(
    st.builds(ops.MqOpen, st.just(0), pick(["a"]), st.just(O_CREAT | O_RDWR), st.just(0o666),
              pick([(2, 16), (1, 16)])),
    st.builds(ops.MsgGet, st.just(0), st.just(1), st.just(IPC_CREAT | 0o666)),
    st.builds(ops.MsgSet, st.just(0), st.just(0), st.just(0), st.just(0), st.just(0o666), pick([100, 16384], [1, 5])),
).map(lambda t: [*t, *(ops.MqOpen(i, "a", O_RDWR) for i in (1, 2, 3))])

#: Blocking operations and the calls that wake, remove or interrupt them (sends, receives, IPC_RMID,
#: mq_unlink, close, notifications), weighted towards the blocking ones. No IPC_SET: it wakes every
#: blocked receiver to re-check (expunge_all) and they re-queue in the order the scheduler runs them,
#: on Linux too (the prologue's IPC_SET makes the queue small before anyone blocks).
WAKERS = [
    st.builds(ops.MqSend, ACTOR, FDREF, pick([16, 1, 8]), PRIOS, pick(["past", "null"])),
    st.builds(ops.MqRecv, ACTOR, FDREF, pick([16, 8192]), pick(["past", "null"])),
    st.builds(ops.MsgSnd, ACTOR, st.just(0), pick([1, 2, 3]), pick([16, 60, 1])),
    st.builds(ops.MsgRcv, ACTOR, st.just(0), pick([100, 16]), MSGTYPS),
]

BLOCKING_MIX = st.one_of(*BLOCKING_OPS, *BLOCKING_OPS, *WAKERS, *WAKERS, *[BLOCKING_OPS[-1]] * 4,
                         POSIX_OPS[0], POSIX_OPS[1], POSIX_OPS[2], POSIX_OPS[3],
                         POSIX_OPS[4], POSIX_OPS[6], SYSV_OPS[1], SYSV_OPS[2], SYSV_OPS[3],
                         OTHER_OPS[0], OTHER_OPS[1], OTHER_OPS[4])


def blocking_cases(min_steps: int = 5, max_steps: int = 25) -> st.SearchStrategy[Case]:
    """Sequences with parked senders and receivers: 2-4 root processes (permissions are the plain
    difftest's business; here every actor may signal every other), a small mq queue and a small SysV
    queue, then a mix of blocking and waking operations."""
    root = ActorSpec(0, 0, (), FULL_CAPS)
    steps = st.tuples(BLOCKING_PROLOGUE, st.lists(BLOCKING_MIX, min_size=min_steps, max_size=max_steps))
    return st.builds(Case, st.integers(2, 4).map(lambda n: (root,) * n), steps.map(lambda t: tuple(t[0] + t[1])))


__all__ = ["BLOCKING_OPS", "OPS", "actor_specs", "blocking_cases", "cases"]
