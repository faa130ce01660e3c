"""User namespaces in the sentry: id maps, ``ns_capable``, and ids at the msgctl/mq_notify boundary.

Linux counterpart: kernel/user_namespace.c (``make_kuid``, ``from_kuid_munged``, ``map_write``'s
checks), security/commoncap.c ``cap_capable``, ipc/util.c ``ipc_update_perm`` and
``kernel_to_ipc64_perm``, ipc/msg.c ``msgctl_stat`` (``pid_vnr``), ipc/mqueue.c ``__do_notify`` and
kernel/signal.c ``send_signal_locked``. gVisor counterpart: pkg/sentry/kernel/auth/user_namespace.go
and id_map.go (ideas only).

Sentry-only: in-process tasks live in the root namespace, so a task is moved into a child namespace
by giving it credentials there, as the platform does for a host thread (the real-program comparison
with Linux is testsuite/platform/c/adv_idmap.c).
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import EINVAL, EPERM
from mqsentry.abi.linux.ipc import IPC_SET, IPC_STAT
from mqsentry.abi.linux.msgqueue import MSQID64_DS
from mqsentry.abi.linux.signal import SI_MESGQ
from mqsentry.boot import Kernel
from mqsentry.kernel.auth import NO_ID, OVERFLOW_ID, ROOT_USER_NAMESPACE, Credentials, UserNamespace
from mqsentry.kernel.auth.user_namespace import IdMap, valid_extents
from mqsentry.kernel.task import Task

N = sysno.AMD64


# -- the maps ----------------------------------------------------------------------------------------
def test_root_namespace_maps_every_id_to_itself() -> None:
    root = ROOT_USER_NAMESPACE
    assert root.is_root and root.level == 0
    for uid in (0, 1000, 65534, NO_ID - 1):
        assert root.map_to_kuid(uid) == uid == root.map_from_kuid(uid)
        assert root.map_to_kgid(uid) == uid == root.map_from_kgid_munged(uid)


def test_child_namespace_maps_through_its_extents() -> None:
    ns = ROOT_USER_NAMESPACE.child(owner=1000)
    assert ns.level == 1 and ns.parent is ROOT_USER_NAMESPACE and ns.owner == 1000
    # Empty maps: nothing maps either way.
    assert ns.map_to_kuid(0) == NO_ID
    assert ns.map_from_kuid_munged(1000) == OVERFLOW_ID
    assert ns.set_uid_map([(0, 100000, 65536), (70000, 1000, 1)])
    assert ns.set_gid_map([(0, 100000, 10)])
    assert ns.map_to_kuid(0) == 100000
    assert ns.map_to_kuid(65535) == 165535
    assert ns.map_to_kuid(65536) == NO_ID
    assert ns.map_to_kuid(70000) == 1000
    assert ns.map_to_kuid(-1) == NO_ID  # (uid_t)-1 is never mapped
    assert ns.map_from_kuid(1000) == 70000
    assert ns.map_from_kuid(99999) == NO_ID
    assert ns.map_from_kuid_munged(99999) == OVERFLOW_ID
    assert ns.map_to_kgid(9) == 100009 and ns.map_to_kgid(10) == NO_ID
    assert ns.map_from_kgid_munged(100010) == OVERFLOW_ID


def test_a_map_is_written_once() -> None:
    ns = UserNamespace(ROOT_USER_NAMESPACE, 0)
    assert ns.set_uid_map([(0, 0, 1)])
    assert not ns.set_uid_map([(0, 5, 1)])  # Linux: EPERM on the second write
    assert ns.map_to_kuid(0) == 0
    assert not ROOT_USER_NAMESPACE.set_uid_map([(0, 1, 1)])  # the root's map is fixed


@pytest.mark.parametrize("extents", [
    [],                                    # empty
    [(0, 0, 0)],                           # zero count
    [(0, 0, 5), (4, 100, 2)],              # overlapping upper ranges
    [(0, 0, 5), (10, 3, 2)],               # overlapping lower ranges
    [(NO_ID - 1, 0, 2)],                   # reaching (uid_t)-1
    [(i * 2, i * 2, 1) for i in range(341)],  # more than UID_GID_MAP_MAX_EXTENTS
])
def test_malformed_maps_are_refused(extents: list[tuple[int, int, int]]) -> None:
    assert not valid_extents(extents)
    assert not UserNamespace(ROOT_USER_NAMESPACE, 0).set_uid_map(extents)


def test_idmap_up_and_down_are_inverse_on_the_mapped_range() -> None:
    m = IdMap([(10, 500, 3), (0, 900, 2)])
    assert [m.down(i) for i in (0, 1, 10, 12)] == [900, 901, 500, 502]
    assert [m.up(k) for k in (900, 901, 500, 502)] == [0, 1, 10, 12]
    assert m.down(2) == NO_ID and m.up(503) == NO_ID


# -- ns_capable (cap_capable) --------------------------------------------------------------------------
def test_capabilities_count_in_the_own_namespace_and_below_only() -> None:
    child = ROOT_USER_NAMESPACE.child(owner=1000)
    grandchild = child.child(owner=0)
    root_creds = Credentials.for_user(0, 0)
    child_root = Credentials.for_user(0, 0).with_changes(user_ns=child)
    assert root_creds.has_cap_in(CAP_IPC_OWNER, child)  # an ancestor's capability counts below
    assert child_root.has_cap_in(CAP_IPC_OWNER, child)
    assert child_root.has_cap_in(CAP_IPC_OWNER, grandchild)
    assert not child_root.has_cap_in(CAP_IPC_OWNER, ROOT_USER_NAMESPACE)  # never upwards
    no_caps = Credentials.for_user(1000, 1000)
    assert not no_caps.has_cap_in(CAP_SYS_ADMIN, ROOT_USER_NAMESPACE)
    # The owner of a child namespace has every capability in it (and below), none above.
    assert no_caps.has_cap_in(CAP_SYS_ADMIN, child)
    assert no_caps.has_cap_in(CAP_SYS_ADMIN, grandchild)
    assert not Credentials.for_user(1001, 1001).has_cap_in(CAP_SYS_ADMIN, child)


# -- ids at the syscall boundary -------------------------------------------------------------------------
def _in_namespace(t: Task, ns: UserNamespace) -> None:
    t.creds = t.creds.with_changes(user_ns=ns)


def _stat(t: Task, qid: int) -> dict[str, int]:
    buf = t.mm.alloc(MSQID64_DS.size)
    assert t.syscall(N["msgctl"], qid, IPC_STAT, buf) == 0
    return dict(zip(MSQID64_DS.fields, MSQID64_DS.unpack(t.mm.read(buf, MSQID64_DS.size)), strict=True))


def _set(t: Task, qid: int, uid: int, gid: int, mode: int, blind: bool = False) -> int:
    """IPC_SET of a struct read with IPC_STAT (all zeros but the owner and mode with ``blind``)."""
    fields = dict.fromkeys(MSQID64_DS.fields, 0) if blind else _stat(t, qid)
    fields.update({"perm.uid": uid, "perm.gid": gid, "perm.mode": mode})
    buf = t.mm.alloc(MSQID64_DS.size)
    t.mm.write(buf, MSQID64_DS.pack(*(fields[f] for f in MSQID64_DS.fields)))
    return t.syscall(N["msgctl"], qid, IPC_SET, buf)


def test_ipc_stat_and_ipc_set_translate_through_the_callers_namespace() -> None:
    k = Kernel()
    owner = k.new_task(uid=1000, gid=1000)
    qid = owner.syscall(N["msgget"], 0, 0o1600)
    assert qid >= 0
    ns = ROOT_USER_NAMESPACE.child(owner=1000)
    _in_namespace(owner, ns)
    # Unmapped: stat shows the overflow id, IPC_SET with it fails in make_kuid -- after the owner
    # check, which compares kernel ids and passes.
    d = _stat(owner, qid)
    assert (d["perm.uid"], d["perm.gid"], d["perm.cuid"], d["perm.cgid"]) == (OVERFLOW_ID,) * 4
    assert _set(owner, qid, OVERFLOW_ID, OVERFLOW_ID, 0o600) == -EINVAL
    assert ns.set_uid_map([(0, 1000, 1)]) and ns.set_gid_map([(0, 1000, 1)])
    d = _stat(owner, qid)
    assert (d["perm.uid"], d["perm.gid"], d["perm.cuid"], d["perm.cgid"]) == (0, 0, 0, 0)
    assert _set(owner, qid, 0, 0, 0o640) == 0
    assert _set(owner, qid, 1, 0, 0o640) == -EINVAL
    assert _set(owner, qid, 0, 1, 0o640) == -EINVAL
    outside = k.new_task(uid=0, gid=0)
    d = _stat(outside, qid)
    assert (d["perm.uid"], d["perm.gid"], d["perm.mode"] & 0o777) == (1000, 1000, 0o640)


def test_a_non_owner_gets_eperm_before_einval() -> None:
    k = Kernel()
    root = k.new_task(uid=0, gid=0)
    qid = root.syscall(N["msgget"], 0, 0o1600)
    other = k.new_task(uid=1000, gid=1000)
    _in_namespace(other, ROOT_USER_NAMESPACE.child(owner=1000))
    assert _set(other, qid, 12345, 12345, 0o600, blind=True) == -EPERM


def test_msg_lspid_and_lrpid_go_through_pid_view() -> None:
    k = Kernel()
    t = k.new_task()
    qid = t.syscall(N["msgget"], 0, 0o1600)
    buf = t.mm.alloc(16)
    t.mm.write(buf, (1).to_bytes(8, "little") + b"x" * 8)
    assert t.syscall(N["msgsnd"], qid, buf, 8, 0) == 0
    assert _stat(t, qid)["lspid"] == t.tg.tgid
    seen: list[tuple[int, int]] = []

    def view(task: Task, pid: int) -> int:
        seen.append((task.tid, pid))
        return 0

    k.pid_view = view
    d = _stat(t, qid)
    assert (d["lspid"], d["lrpid"]) == (0, 0)
    assert seen == [(t.tid, t.tg.tgid)]  # lrpid 0 (nobody received) is not translated


@pytest.mark.parametrize(("owner_map", "sender_map", "expect"), [
    # Owner in a child namespace mapping 0 -> 1000, sender (1000) in the root namespace: 0 in the
    # owner's namespace, then delivery maps 0 from the root (kernel id 0) into the owner's: unmapped.
    ([(0, 1000, 1)], None, OVERFLOW_ID),
    # The same with root mapped too: kernel id 0 is uid 1 there.
    ([(0, 1000, 1), (1, 0, 1)], None, 1),
    # Owner and sender in the same child namespace: no second mapping.
    ([(0, 1000, 1)], "same", 0),
    # Owner in a namespace that does not map the sender: the overflow id, kept by delivery when
    # the sender's namespace maps 65534 to a kernel id the owner's does not map.
    ([(0, 5, 1)], None, OVERFLOW_ID),
])
def test_mq_notify_si_uid_is_mapped_like_linux(owner_map: list[tuple[int, int, int]], sender_map: str | None,
                                               expect: int) -> None:
    """ipc/mqueue.c ``__do_notify``: si_uid = from_kuid_munged(notify_user_ns, the sender's ruid);
    kernel/signal.c ``send_signal_locked`` then maps it on from the sender's user namespace into the
    target's when the two differ (the host kernel does this too)."""
    from mqsentry.abi.linux.signal import SIGEV_SIGNAL, SIGUSR1
    from mqsentry.kernel.mq.notify import Notification
    from mqsentry.kernel.signals import SigInfo

    k = Kernel()
    ns = ROOT_USER_NAMESPACE.child(owner=1000)
    assert ns.set_uid_map(owner_map)
    owner = k.new_task(uid=1000, gid=1000)
    sender = k.new_task(uid=1000, gid=1000)
    _in_namespace(owner, ns)
    if sender_map == "same":
        _in_namespace(sender, ns)
    got: list[SigInfo] = []
    owner.tg.signal_sink = lambda target, info, group: got.append(info)
    Notification(owner.tg.tgid, SIGEV_SIGNAL, SIGUSR1, 7, None, b"", ns).fire(k, sender)
    assert [(i.signo, i.code, i.pid, i.uid, i.value) for i in got] == [(SIGUSR1, SI_MESGQ, sender.tg.tgid, expect, 7)]


def test_ipc_object_capabilities_count_in_the_namespace_owner() -> None:
    """ipcperms and ipcctl_obtain_check ask ns_capable(ns->user_ns): a child namespace's root rules
    the objects of an IPC namespace its namespace owns, not those of the root's."""
    from mqsentry.kernel.ipc import Object, ipcperms, may_control
    from mqsentry.kernel.ipc.object import S_IRUGO

    child = ROOT_USER_NAMESPACE.child(owner=1000)
    assert child.set_uid_map([(0, 1000, 1), (1, 5000, 1)]) and child.set_gid_map([(0, 1000, 1)])
    child_root = Credentials.for_user(1000, 1000).with_changes(
        cap_effective=Credentials.for_user(0, 0).cap_effective, user_ns=child)
    theirs = Object(0, Credentials.for_user(5000, 5000), 0o600)
    theirs.user_ns = child  # an object of an IPC namespace the child namespace owns
    ours = Object(0, Credentials.for_user(0, 0), 0o600)  # of the root's IPC namespace
    assert ipcperms(child_root, theirs, S_IRUGO) and may_control(child_root, theirs)
    assert not ipcperms(child_root, ours, S_IRUGO) and not may_control(child_root, ours)
    root = Credentials.for_user(0, 0)
    assert ipcperms(root, theirs, S_IRUGO) and may_control(root, theirs)  # an ancestor's capability
    assert not child_root.has_cap(CAP_SYS_ADMIN)  # capable(): the root namespace only


def test_dac_capabilities_need_the_inode_ids_mapped() -> None:
    """generic_permission's capable_wrt_inode_uidgid: CAP_DAC_OVERRIDE held in the caller's namespace
    counts only for an inode whose owner and group are both mapped there."""
    from mqsentry.fs.vfs.inode import MAY_READ, generic_permission
    from mqsentry.kernel.errors import SysError

    child = ROOT_USER_NAMESPACE.child(owner=1000)
    assert child.set_uid_map([(0, 1000, 1), (1, 5000, 1)]) and child.set_gid_map([(0, 1000, 1), (1, 5000, 1)])
    child_root = Credentials.for_user(1000, 1000).with_changes(
        cap_effective=Credentials.for_user(0, 0).cap_effective, user_ns=child)
    generic_permission(child_root, 0o100600, 5000, 5000, MAY_READ)  # mapped: overridden
    with pytest.raises(SysError):
        generic_permission(child_root, 0o100600, 0, 0, MAY_READ)  # root's file: not mapped
    with pytest.raises(SysError):
        generic_permission(child_root, 0o100600, 5000, 7, MAY_READ)  # group unmapped
