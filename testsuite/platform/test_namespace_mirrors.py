"""The platform's mirrors of host user and pid namespaces (userns.HostUserNamespaces, pidns.PidViews).

Linux counterpart: kernel/user_namespace.c (the uid_map/gid_map files as a reader in the parent
namespace sees them), fs/nsfs.c (``NS_GET_PARENT``, ``NS_GET_OWNER_UID``, ``NS_GET_USERNS``) and the
NSpid/NStgid lines of fs/proc/array.c. gVisor counterpart: none (gVisor creates its namespaces itself).

The real-program comparisons live in test_adversarial.py (adv_idmap.c, adv_ipcowner.c); here the
mirrors are checked against host processes made with unshare(1), waiting for the state each check
needs (the maps written, the namespace entered), never for a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from mqsentry.kernel.auth import NO_ID, OVERFLOW_ID, ROOT_USER_NAMESPACE
from mqsentry.kernel.platform import procfs
from mqsentry.kernel.platform.launch import parent_pids
from mqsentry.kernel.platform.pidns import PidView, PidViews
from mqsentry.kernel.platform.userns import HostUserNamespaces, _parse_map
from mqsentry.testsuite.platform.helpers import TIMEOUT
from mqsentry.testsuite.util import wait_until


def test_parse_map_keeps_kernel_ids_and_drops_invisible_ones() -> None:
    text = b"         0       1000          1\n         1     100000      65536\n         7 4294967295 1\n"
    assert _parse_map(text) == [(0, 1000, 1), (1, 100000, 65536)]
    assert _parse_map(b"") == []
    assert _parse_map(b"garbage line\n1 2\n") == []


def test_pid_view_answers_like_pid_nr_ns() -> None:
    outer, inner, other = (1, 10), (1, 11), (1, 12)
    v = PidView((4242, 1), (outer, inner))
    assert v.nr_at(0, outer) == 4242
    assert v.nr_at(1, inner) == 1
    assert v.nr_at(1, other) == 0  # a sibling namespace at the same level
    assert v.nr_at(2, inner) == 0  # deeper than the pid reaches


@pytest.fixture
def mapped_child() -> Iterator[int]:
    """A process in a new user namespace whose uid/gid 7 are our own ids (unshare -U --map-user=7),
    parked in ``cat`` on a pipe until the test ends."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is missing")
    r, w = os.pipe()
    p = subprocess.Popen(["unshare", "-U", "--map-user=7", "--map-group=7", "--", "cat"], stdin=r,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(r)
    try:
        wait_until(lambda: p.poll() is not None or _maps_written(p.pid), TIMEOUT, "the child's uid_map")
        if p.poll() is not None:
            pytest.skip(f"unshare -U failed: {p.stderr.read().decode().strip() if p.stderr else ''}")
        yield p.pid
    finally:
        os.close(w)
        p.wait(TIMEOUT)


def _maps_written(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/uid_map", "rb") as f:
            uid_map = f.read()
        with open(f"/proc/{pid}/gid_map", "rb") as f:
            gid_map = f.read()
        with open(f"/proc/{pid}/comm", "rb") as f:
            comm = f.read()
    except OSError:
        return False
    return bool(uid_map.strip()) and bool(gid_map.strip()) and comm.strip() == b"cat"


def test_host_user_namespace_is_mirrored_with_its_maps(mapped_child: int) -> None:
    users = HostUserNamespaces()
    try:
        assert users.of_thread(os.getpid()) is ROOT_USER_NAMESPACE
        ns = users.of_thread(mapped_child)
        assert ns is not None and ns.parent is ROOT_USER_NAMESPACE
        assert ns.owner == os.geteuid()  # NS_GET_OWNER_UID, as our namespace sees it
        with open(f"/proc/{mapped_child}/uid_map", "rb") as f:
            first, lower, count = (int(x) for x in f.read().split()[:3])
        assert (first, lower, count) == (7, os.geteuid(), 1)
        assert ns.map_to_kuid(first) == os.geteuid()
        assert ns.map_to_kgid(7) == os.getegid()
        assert ns.map_from_kuid(os.geteuid()) == first
        assert ns.map_to_kuid(first + 1) == NO_ID
        assert ns.map_from_kuid_munged(os.geteuid() + 1) == OVERFLOW_ID
        assert users.of_thread(mapped_child) is ns  # one mirror per host namespace
        assert len(users) == 1
        # Held weakly: once nothing uses the mirror, the next new mirror drops its entry and pin.
        del ns
        import gc

        gc.collect()
        again = users.of_thread(mapped_child)
        assert again is not None and again.map_to_kuid(7) == os.geteuid()
        assert len(users) == 1
    finally:
        users.close()


def test_pid_views_of_a_nested_pid_namespace() -> None:
    """A process that is pid 1 of a new pid namespace: its record has both numbers, the sentry's own
    threads have none, and pid_vnr answers from each side."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is missing")
    r, w = os.pipe()
    p = subprocess.Popen(["unshare", "-U", "-r", "-p", "-f", "--", "cat"], stdin=r, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    os.close(r)
    try:
        # The cat is unshare's child, pid 1 of the new namespace: find it by its NSpid line.
        found: list[procfs.ThreadStatus] = []

        def inner_cat() -> bool:
            if p.poll() is not None:
                return True
            for pid, ppid in parent_pids().items():
                if ppid != p.pid:
                    continue
                st = procfs.read_status(pid)
                if st is None or len(st.nspid) != 2 or st.nspid[1] != 1:
                    continue
                try:
                    with open(f"/proc/{pid}/comm", "rb") as f:
                        if f.read() != b"cat\n":
                            continue  # unshare's child before its exec
                except OSError:
                    continue
                found.append(st)
                return True
            return False

        wait_until(inner_cat, TIMEOUT, "pid 1 of the new pid namespace")
        if not found:
            pytest.skip(f"unshare -p failed: {p.stderr.read().decode().strip() if p.stderr else ''}")
        st = found[0]
        views = PidViews()
        assert not views.record(os.getpid(), os.getpid(), (os.getpid(),), (os.getpid(),))
        assert views.record(st.tid, st.tgid, st.nspid, st.nstgid)
        assert views.pid_vnr(st.tid, st.tid) == 1          # itself, from inside
        assert views.pid_vnr(st.tid, os.getpid()) == 0     # us: not visible inside
        assert views.pid_vnr(os.getpid(), st.tid) == st.tid  # from our namespace: as is
    finally:
        os.close(w)
        p.wait(TIMEOUT)
