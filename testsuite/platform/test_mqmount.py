"""Issue 10 item 3: the program's mqueue mounts show the sentry's queues.

Linux counterpart: fs/namespace.c ``path_mount`` and ipc/mqueue.c's filesystem, exercised from user
space; the pure parts of kernel/platform/mqmount.py and launch.py's mountinfo reading are unit-tested
here too. gVisor counterpart: test/syscalls/linux/mq.cc's mount cases (rewritten, not ported).

The C programs run natively (private IPC and mount namespaces) and under ``mqsentry run``, and their
transcripts must be equal. What differs by design (fsopen, the filesystem type) is asserted as such.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable

import pytest

from mqsentry.kernel.platform import launch, mqmount
from mqsentry.testsuite.platform.helpers import PYTHON_M, TIMEOUT, assert_same, run_native, run_sentry


@pytest.fixture(scope="module")
def fuse_ok(platform_ok: None) -> None:
    from mqsentry.kernel.platform import fuse

    reason = fuse.fuse_available()
    if reason is not None:
        pytest.skip(reason)


def test_mount_checks_and_queue_files_like_linux(cprog: Callable[[str], str], fuse_ok: None) -> None:
    """mount(2)'s checks in Linux's order; stat, open/creat, read, poll, unlink, chmod/chown, readdir;
    queues shared with mq_open both ways; a read-only mount; a second IPC namespace; uid 65534 and
    a user namespace of its own."""
    exe = cprog("mqueue_mount")
    native = run_native([exe])
    assert "mount common options: ok" in native.stdout
    assert_same(native, run_sentry([exe]))


def test_i386_program_like_linux(fuse_ok: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same program built for i386: mount(2) and fsopen(2) have their own numbers there."""
    from mqsentry.testsuite.abi32 import builds
    from mqsentry.testsuite.platform.helpers import C_DIR

    reason = builds.native_reason("i386")
    if reason is not None:
        pytest.skip(reason)
    exe = builds.build("i386", "mqueue_mount", str(tmp_path_factory.mktemp("i386")), C_DIR)
    assert_same(run_native([exe]), run_sentry([exe]))


def test_mount_command_like_linux(fuse_ok: None) -> None:
    """mount(8) (libmount) mounts mqueue; touch makes a queue, cat shows its QSIZE line, rm removes it."""
    script = ('d=$(mktemp -d) && mount -t mqueue -o nosuid,nodev none "$d" && touch "$d/q" && cat "$d/q" && '
              'stat -c "%A %s %h" "$d" "$d/q" && ls "$d" && rm "$d/q" && ls -A "$d" | wc -l && '
              'mount -t mqueue none "$d" ; echo "again: $?"')
    native = subprocess.run(["unshare", "-i", "-m", "sh", "-c", script], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert "QSIZE:0" in native.stdout
    assert_same(native, run_sentry(["unshare", "-m", "sh", "-c", script]))


def test_remount_and_bind_like_linux(fuse_ok: None) -> None:
    """Remount read-only and back, and a bind of the mount: the host's calls on the served mount."""
    script = ('d=$(mktemp -d); e=$(mktemp -d); mount -t mqueue none $d && touch $d/q && mount -o remount,ro $d; '
              'echo remount=$?; touch $d/r 2>/dev/null; echo touch=$?; mount --bind $d $e; echo bind=$?; ls $e; '
              'mount -o remount,rw $d; echo rw=$?; touch $d/r; echo touch=$?; umount $e; echo umount=$?; ls $d')
    native = subprocess.run(["unshare", "-i", "-m", "sh", "-c", script], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert native.stdout == "remount=0\ntouch=1\nbind=0\nq\nrw=0\ntouch=0\numount=0\nq\nr\n"
    assert_same(native, run_sentry(["unshare", "-m", "sh", "-c", script]))


def test_existing_mqueue_mount_is_covered(cprog: Callable[[str], str], fuse_ok: None) -> None:
    """An mqueue mount the program's namespace starts with (like /dev/mqueue) shows the sentry's
    queues: the host has none here, so one is made natively in a private mount namespace first."""
    exe = cprog("mqueue_cover")
    with tempfile.TemporaryDirectory(prefix="mqsentry-cover-") as point:
        setup = f'mount -t mqueue none "{point}" && exec "$0" "$@"'
        native = subprocess.run(["unshare", "-i", "-m", "sh", "-c", setup, exe, point], capture_output=True,
                                text=True, timeout=TIMEOUT)
        sentry = subprocess.run(["unshare", "-m", "sh", "-c", setup, *PYTHON_M, "mqsentry.tools.run", exe, point],
                                capture_output=True, text=True, timeout=TIMEOUT)
    assert "listed: 2" in native.stdout
    assert_same(native, sentry)


def test_fsopen_of_mqueue_says_enosys(cprog: Callable[[str], str], fuse_ok: None) -> None:
    """fsopen("mqueue") is not served: ENOSYS (a kernel without the new mount API), so mount tools fall
    back to mount(2); other types stay the host's."""
    exe = cprog("fsopen_mqueue")
    native = run_native([exe])
    sentry = run_sentry([exe])
    assert native.stdout == "fsopen mqueue: fd\nfsopen tmpfs: fd\nfsopen nosuchfs: ENODEV\n"
    assert sentry.stdout == "fsopen mqueue: ENOSYS\nfsopen tmpfs: fd\nfsopen nosuchfs: ENODEV\n", sentry.stderr


def test_other_file_systems_are_the_hosts(fuse_ok: None) -> None:
    """A tmpfs mount (and a bind, and a propagation change) continue natively."""
    script = ('d=$(mktemp -d) && mount -t tmpfs -o size=1m none "$d" && stat -f -c %T "$d" && '
              'mount --make-private "$d" && mkdir "$d/x" && mount --bind "$d/x" "$d/x" && echo ok')
    native = subprocess.run(["unshare", "-i", "-m", "sh", "-c", script], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert native.stdout == "tmpfs\nok\n"
    assert_same(native, run_sentry(["unshare", "-m", "sh", "-c", script]))


def test_mount_shows_fuse_type(fuse_ok: None) -> None:
    """What stays different (DESIGN.md): the mount's type is fuse.mqueue, statfs's f_type FUSE's."""
    script = ('d=$(mktemp -d) && mount -t mqueue none "$d" && stat -f -c %T "$d" && '
              'grep -c " $d fuse.mqueue " /proc/self/mounts')
    r = run_sentry(["unshare", "-m", "sh", "-c", script])
    assert r.stdout == "fuseblk\n1\n" or r.stdout == "fuse\n1\n", r.stdout + r.stderr


# -- pure parts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "have_source", "err"), [
    (b"", False, 0),
    (b"ro,rw,sync,async,dirsync,lazytime,nolazytime,mand,nomand", True, 0),
    (b"ro=1", True, 0),
    (b"=x,,", True, 0),
    (b"source=x", False, 0),
    (b"source=", False, 0),
    (b"source=x", True, 22),
    (b"source=x,source=y", False, 22),
    (b"source", False, 22),
    (b"nosuid", False, 22),
    (b"bogus=1", False, 22),
    (b"ro\0bogus", False, 0),
])
def test_parse_options(data: bytes, have_source: bool, err: int) -> None:
    assert mqmount.parse_options(data, have_source) == err


def test_mount_attrs() -> None:
    assert mqmount.mount_attrs(0) == 0  # relatime
    assert mqmount.mount_attrs(1 | 2 | 4 | 8) == 1 | 2 | 4 | 8
    assert mqmount.mount_attrs(1024) == 0x10  # noatime
    assert mqmount.mount_attrs(1024 | 1 << 24) == 0x20  # strictatime wins
    assert mqmount.mount_attrs(2048 | 256) == 0x80 | 0x200000


def test_mountinfo_parsing() -> None:
    text = (b"36 25 0:31 / /dev/mqueue rw,nosuid,nodev,noexec,relatime shared:14 - mqueue mqueue rw\n"
            b"37 25 0:32 / /tmp/with\\040space ro,noatime - mqueue none rw\n"
            b"38 25 0:33 / /tmp rw,relatime - tmpfs tmpfs rw\n")
    rows = launch.mountinfo(text)
    assert rows[0] == (b"/dev/mqueue", b"mqueue", b"mqueue", b"rw,nosuid,nodev,noexec,relatime", b"0:31")
    assert rows[1][0] == b"/tmp/with space"
    assert len(rows) == 3


def test_screen_reads_only_what_it_needs() -> None:
    """peek_string stops at the NUL, refuses unreadable memory and strings without a NUL in the limit."""
    import ctypes

    buf = ctypes.create_string_buffer(b"mqueue\0junk")
    assert mqmount.peek_string(os.getpid(), ctypes.addressof(buf)) == b"mqueue"
    assert mqmount.peek_string(os.getpid(), 8) is None
    assert mqmount.peek_string(os.getpid(), 0) is None
    long = ctypes.create_string_buffer(b"x" * 100)
    assert mqmount.peek_string(os.getpid(), ctypes.addressof(long), 50) is None


def test_create_of_a_name_that_appeared_meanwhile_checks_permission() -> None:
    """A create that finds the name taken (mq_open made it after the caller's lookup) opens the queue
    only with may_open's permission: the owner-only queue is EACCES for another user."""
    from mqsentry.abi.linux.file import O_CREAT, O_RDONLY, O_WRONLY
    from mqsentry.boot import Kernel
    from mqsentry.fs.mqfs import MqueueFilesystem, QueueFD
    from mqsentry.kernel.errors import SysError

    k = Kernel(arch="amd64")
    owner = k.new_task(uid=1000, gid=1000)
    other = k.new_task(uid=1001, gid=1001)
    fs = k.root_ipc_ns.posix_queues
    assert isinstance(fs, MqueueFilesystem)
    d = fs.open_queue(owner, "q", O_CREAT | O_RDONLY, 0o600, None, 0)
    with pytest.raises(SysError) as e:
        fs.root.create(other, "q", 0o666, O_CREAT | O_WRONLY)
    assert e.value.errno == 13
    again = fs.root.create(owner, "q", 0o666, O_CREAT | O_WRONLY)
    assert isinstance(again, QueueFD) and again.queue is d.queue
    again.decref()
    d.decref()


def test_mount_outlives_its_namespace_like_linux(fuse_ok: None) -> None:
    """A mount of a namespace whose last process is gone (none of them made a served call) still shows
    its queues; a create through it is refused (EACCES: the namespace is dead); unlink still works."""
    script = ('d=$(mktemp -d); unshare -i sh -c "mount -t mqueue none $d && touch $d/q && echo made"; ls $d; '
              'cat $d/q; touch $d/r 2>/dev/null; echo touch=$?; rm $d/q; echo rm=$?; ls -A $d | wc -l; '
              'umount $d; rmdir $d')
    native = subprocess.run(["unshare", "-i", "-m", "sh", "-c", script], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert native.stdout.startswith("made\nq\nQSIZE:0") and "touch=1\nrm=0\n0\n" in native.stdout, native.stdout
    assert_same(native, run_sentry(["unshare", "-m", "sh", "-c", script]))
