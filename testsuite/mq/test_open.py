"""mq_open and mq_unlink: names (kernel and glibc level), creation and access modes, permissions,
attribute validation and defaults, umask, EEXIST/EACCES order, unlink permissions.

Linux counterpart: ipc/mqueue.c do_mq_open/prepare_open/mqueue_get_inode/mq_attr_ok, SYSCALL mq_unlink,
fs/namei.c lookup_one_len/may_delete; glibc mq_open.c/mq_unlink.c. gVisor counterpart:
test/syscalls/linux/mq.cc Open, ModeWithFileType, OpenAfterUnlink, OpenInvalidArgs, CreateAlreadyExists,
NoQueueExists, OpenNoAccess, OpenReadAccess, OpenWriteAccess.
"""

from __future__ import annotations

from mqsentry.abi.linux.capability import CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EACCES, EBADF, EEXIST, EFAULT, EINVAL, ENAMETOOLONG, ENOENT, EPERM
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY, S_IFIFO, S_IFMT, S_IFREG
from mqsentry.abi.linux.limits import RLIM_INFINITY, RLIMIT_MSGQUEUE
from mqsentry.abi.linux.mqueue import HARD_MSGMAX, HARD_MSGSIZEMAX
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSG, MSGSIZE, NAME, create, require_cap, user
from mqsentry.testsuite.targets.base import Target

# -- gVisor MqTest ---------------------------------------------------------------------------------------


def test_open(proc: Proc) -> None:
    fd = proc.mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0o777)
    assert fd >= 0
    proc.mq_close(fd)
    proc.mq_unlink(NAME)


def test_mode_with_file_type(proc: Proc) -> None:
    """File-type bits in mode are ignored: the queue is a regular file."""
    proc.umask(0)
    fd = proc.mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0o777 | S_IFIFO)
    assert proc.fstat(fd).mode == S_IFREG | 0o777


def test_open_after_unlink(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_unlink(NAME)
    with expect_errno(ENOENT):
        proc.mq_open(NAME, O_RDWR)
    proc.mq_close(fd)


def test_open_invalid_args(proc: Proc) -> None:
    with expect_errno(EINVAL):  # glibc: no leading slash
        proc.mq_open("test", O_RDWR)
    with expect_errno(EACCES):  # kernel name "test/name" contains a slash
        proc.mq_open("/test/name", O_RDWR)
    # gVisor expects EINVAL for "." and ".." without noting that glibc, not the kernel, rejects them.
    with expect_errno(EINVAL):
        proc.mq_open(".", O_RDWR)
    with expect_errno(EINVAL):
        proc.mq_open("..", O_RDWR)
    with expect_errno(EINVAL):
        create(proc, attr=(-1, 10))
    with expect_errno(EINVAL):
        create(proc, attr=(10, -1))
    # The name is looked up before the attributes are validated.
    with expect_errno(ENAMETOOLONG):
        create(proc, "/" + "a" * 256, attr=(10, -1))


def test_create_already_exists(proc: Proc) -> None:
    create(proc)
    with expect_errno(EEXIST):
        create(proc)


def test_no_queue_exists(proc: Proc) -> None:
    with expect_errno(ENOENT):
        proc.mq_open("/gvisor-mq-test-nonexistent-queue", O_RDWR)


def test_open_no_access(target: Target) -> None:
    """gVisor ran this as root and relied on capabilities being ignored (gVisor divergence D10,
    docs/gvisor-divergences.md); on Linux the owner
    without CAP_DAC_OVERRIDE is refused, root is not."""
    owner = user(target)
    create(owner, mode=0o000)
    for acc in (O_RDONLY, O_WRONLY, O_RDWR):
        with expect_errno(EACCES):
            owner.mq_open(NAME, acc)
    r = Proc(target.spawn())
    for acc in (O_RDONLY, O_WRONLY, O_RDWR):
        r.mq_close(r.mq_open(NAME, acc))


def test_open_read_access(target: Target) -> None:
    owner = user(target)
    create(owner, mode=0o400)
    with expect_errno(EACCES):
        owner.mq_open(NAME, O_WRONLY)
    with expect_errno(EACCES):
        owner.mq_open(NAME, O_RDWR)
    owner.mq_open(NAME, O_RDONLY)


def test_open_write_access(target: Target) -> None:
    owner = user(target)
    create(owner, mode=0o200)
    with expect_errno(EACCES):
        owner.mq_open(NAME, O_RDONLY)
    owner.mq_open(NAME, O_WRONLY)


# -- permission classes and capabilities ----------------------------------------------------------------------


def test_open_permission_classes(target: Target) -> None:
    owner = user(target)
    create(owner, mode=0o640)
    group_member = user(target, gid=owner.getgid() + 1, groups=(owner.getgid(),))
    group_member.mq_open(NAME, O_RDONLY)
    with expect_errno(EACCES):
        group_member.mq_open(NAME, O_WRONLY)
    other = user(target)
    with expect_errno(EACCES):
        other.mq_open(NAME, O_RDONLY)
    # The owner class wins even when it grants less than the group class.
    create(owner, "/r", mode=0o060)
    with expect_errno(EACCES):
        owner.mq_open("/r", O_RDONLY)


def test_root_without_dac_override_is_checked(target: Target, proc: Proc) -> None:
    owner = user(target)
    create(owner, mode=0o600)
    proc.drop_cap(CAP_DAC_OVERRIDE)
    with expect_errno(EACCES):
        proc.mq_open(NAME, O_WRONLY)
    with expect_errno(EACCES):
        proc.mq_open(NAME, O_RDWR)
    # CAP_DAC_READ_SEARCH still grants read access.
    proc.mq_open(NAME, O_RDONLY)
    proc.drop_cap(CAP_DAC_READ_SEARCH)
    with expect_errno(EACCES):
        proc.mq_open(NAME, O_RDONLY)


def test_eexist_before_eacces(target: Target, proc: Proc) -> None:
    create(proc, mode=0o000)
    other = user(target)
    with expect_errno(EEXIST):
        other.mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0o600)
    with expect_errno(EACCES):
        other.mq_open(NAME, O_RDWR | O_CREAT, 0o600)


# -- kernel names ------------------------------------------------------------------------------------------


def test_kernel_name_with_slash_is_eacces(proc: Proc) -> None:
    for name in (b"a/b", b"/q", b"q/", b"/"):
        with expect_errno(EACCES):
            proc.sys_mq_open(name, O_RDWR | O_CREAT, 0o600)
        with expect_errno(EACCES):
            proc.sys_mq_unlink(name)


def test_kernel_dot_names_are_eacces(proc: Proc) -> None:
    for name in (b".", b".."):
        with expect_errno(EACCES):
            proc.sys_mq_open(name, O_RDWR | O_CREAT, 0o600)
        with expect_errno(EACCES):
            proc.sys_mq_open(name, O_RDONLY)
        with expect_errno(EACCES):
            proc.sys_mq_unlink(name)
    # Through glibc the leading slash is stripped, so "/." reaches the kernel as ".".
    with expect_errno(EACCES):
        proc.mq_open("/.", O_RDWR | O_CREAT)
    with expect_errno(EACCES):
        proc.mq_open("/..", O_RDONLY)
    # Names that merely start with a dot are ordinary.
    proc.sys_mq_open(b"...", O_RDWR | O_CREAT | O_EXCL, 0o600)
    proc.sys_mq_open(b".hidden", O_RDWR | O_CREAT | O_EXCL, 0o600)


def test_name_length_limit(proc: Proc) -> None:
    proc.sys_mq_open(b"a" * 255, O_RDWR | O_CREAT | O_EXCL, 0o600)
    with expect_errno(ENAMETOOLONG):
        proc.sys_mq_open(b"b" * 256, O_RDWR | O_CREAT | O_EXCL, 0o600)
    with expect_errno(ENAMETOOLONG):
        proc.sys_mq_unlink(b"b" * 256)
    # Longer than PATH_MAX fails in getname, with the same errno.
    with expect_errno(ENAMETOOLONG):
        proc.sys_mq_open(b"c" * 5000, O_RDWR | O_CREAT, 0o600)
    proc.mq_open("/" + "a" * 255, O_RDWR)
    proc.mq_unlink("/" + "a" * 255)
    with expect_errno(ENAMETOOLONG):
        proc.mq_open("/" + "d" * 256, O_RDWR | O_CREAT)


def test_empty_kernel_name_is_enoent(proc: Proc) -> None:
    with expect_errno(ENOENT):
        proc.sys_mq_open(b"", O_RDWR | O_CREAT, 0o600)
    with expect_errno(ENOENT):
        proc.sys_mq_open(b"", O_RDONLY)
    with expect_errno(ENOENT):
        proc.sys_mq_unlink(b"")
    # glibc strips the slash of "/" and passes "" to the kernel.
    with expect_errno(ENOENT):
        proc.mq_open("/", O_RDWR | O_CREAT)
    with expect_errno(ENOENT):
        proc.mq_unlink("/")


def test_glibc_requires_leading_slash(proc: Proc) -> None:
    for name in ("", "noslash", "q/"):
        with expect_errno(EINVAL):
            proc.mq_open(name, O_RDWR | O_CREAT)
        with expect_errno(EINVAL):
            proc.mq_unlink(name)
    # The kernel itself accepts a name without a slash.
    fd = proc.sys_mq_open(b"noslash", O_RDWR | O_CREAT | O_EXCL, 0o600)
    proc.mq_close(fd)
    proc.mq_open("/noslash", O_RDWR)
    proc.mq_unlink("/noslash")


def test_name_efault(target: Target, proc: Proc) -> None:
    with expect_errno(EFAULT):
        proc.sys_mq_open(target.bad_addr, O_RDWR | O_CREAT, 0o600)
    with expect_errno(EFAULT):
        proc.sys_mq_unlink(target.bad_addr)
    # A name running into unmapped memory before its NUL.
    p = proc.end_of_mapping(4)
    proc.write(p, b"abc")
    with expect_errno(EFAULT):
        proc.sys_mq_open(p, O_RDWR | O_CREAT, 0o600)


def test_names_are_binary_and_case_sensitive(proc: Proc) -> None:
    proc.sys_mq_open(b"Q", O_RDWR | O_CREAT | O_EXCL, 0o600)
    proc.sys_mq_open(b"q", O_RDWR | O_CREAT | O_EXCL, 0o600)
    proc.sys_mq_open(b"\xff\x01 x", O_RDWR | O_CREAT | O_EXCL, 0o600)
    proc.sys_mq_open(b"\xff\x01 x", O_RDONLY)


# -- access mode 3 ------------------------------------------------------------------------------------------


def test_accmode3_accepted_on_create_but_useless(proc: Proc) -> None:
    fd = proc.mq_open(NAME, O_RDWR | O_WRONLY | O_CREAT | O_EXCL, 0o600)
    with expect_errno(EBADF):
        proc.mq_send(fd, MSG)
    with expect_errno(EBADF):
        proc.mq_receive(fd, MSGSIZE)
    with expect_errno(EBADF):
        proc.read_fd(fd, 100)
    assert proc.mq_getattr(fd).maxmsg == MAXMSG


def test_accmode3_on_existing_queue_is_einval(proc: Proc) -> None:
    create(proc)
    with expect_errno(EINVAL):
        proc.mq_open(NAME, O_RDWR | O_WRONLY)
    with expect_errno(EINVAL):
        proc.mq_open(NAME, O_RDWR | O_WRONLY | O_CREAT)
    # EEXIST is checked first.
    with expect_errno(EEXIST):
        proc.mq_open(NAME, O_RDWR | O_WRONLY | O_CREAT | O_EXCL)


# -- attributes ---------------------------------------------------------------------------------------------


def test_attr_ignored_for_existing_queue(proc: Proc) -> None:
    create(proc, attr=(3, 100))
    for bad in ((-1, -1), (0, 0), (HARD_MSGMAX + 1, HARD_MSGSIZEMAX + 1)):
        fd = proc.mq_open(NAME, O_RDWR | O_CREAT, 0o600, bad)
        a = proc.mq_getattr(fd)
        assert (a.maxmsg, a.msgsize) == (3, 100)


def test_attr_copied_in_even_without_o_creat(target: Target, proc: Proc) -> None:
    create(proc)
    with expect_errno(EFAULT):
        proc.sys_mq_open(b"q", O_RDWR, 0, target.bad_addr)
    # ... before the name is even read.
    with expect_errno(EFAULT):
        proc.sys_mq_open(b"", O_RDWR, 0, target.bad_addr)
    with expect_errno(EFAULT):
        proc.sys_mq_open(b"a/b", O_RDWR | O_CREAT, 0o600, proc.end_of_mapping(64))
    # glibc passes attr only with O_CREAT, so the same bad pointer is harmless there.
    proc.mq_open(NAME, O_RDWR, 0, target.bad_addr)


# EOVERFLOW (msgsize * maxmsg overflowing an unsigned long) cannot be reached on 64-bit targets: the
# HARD limits bound the product by 2**40, so no test can provoke it.


def test_attr_zero_is_einval(proc: Proc) -> None:
    for bad in ((0, 10), (10, 0), (0, 0), (-5, 100), (1, -(1 << 63))):
        with expect_errno(EINVAL):
            create(proc, attr=bad)
    with expect_errno(ENOENT):  # nothing was created
        proc.mq_open(NAME, O_RDONLY)


def test_attr_flags_and_curmsgs_ignored_on_create(proc: Proc) -> None:
    fd = create(proc, attr=(0o4000, 4, 64, 99))
    a = proc.mq_getattr(fd)
    assert (a.flags, a.maxmsg, a.msgsize, a.curmsgs) == (0, 4, 64, 0)


def test_unprivileged_attr_limits(target: Target) -> None:
    p = user(target)
    create(p, "/a", attr=(MAXMSG, MSGSIZE))
    with expect_errno(EINVAL):
        create(p, "/b", attr=(MAXMSG + 1, 1))
    with expect_errno(EINVAL):
        create(p, "/c", attr=(1, MSGSIZE + 1))


def test_unprivileged_attr_limits_follow_sysctls(target: Target) -> None:
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"20\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_max", b"16384\n")
    p = user(target)
    create(p, "/a", attr=(20, 128))
    create(p, "/b", attr=(1, 16384))
    with expect_errno(EINVAL):
        create(p, "/c", attr=(21, 128))
    with expect_errno(EINVAL):
        create(p, "/d", attr=(1, 16385))
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"3\n")
    with expect_errno(EINVAL):
        create(p, "/e", attr=(4, 128))


def test_root_without_cap_sys_resource_has_unprivileged_limits(proc: Proc) -> None:
    proc.drop_cap(CAP_SYS_RESOURCE)
    with expect_errno(EINVAL):
        create(proc, attr=(MAXMSG + 1, 16))
    create(proc, attr=(MAXMSG, 16))


def test_cap_sys_resource_allows_hard_limits(target: Target) -> None:
    """CAP_SYS_RESOURCE lifts msg_max/msgsize_max up to HARD_MSGMAX/HARD_MSGSIZEMAX. A dedicated uid
    keeps the large RLIMIT_MSGQUEUE charges away from other tests."""
    p = user(target, caps=1 << CAP_SYS_RESOURCE)
    require_cap(p, CAP_SYS_RESOURCE)
    p.prlimit(RLIMIT_MSGQUEUE, (RLIM_INFINITY, RLIM_INFINITY))
    fd = create(p, "/a", attr=(HARD_MSGMAX, 1))
    assert p.mq_getattr(fd).maxmsg == HARD_MSGMAX
    fd = create(p, "/b", attr=(1, HARD_MSGSIZEMAX))
    assert p.mq_getattr(fd).msgsize == HARD_MSGSIZEMAX
    create(p, "/c", attr=(MAXMSG + 1, MSGSIZE + 1))
    with expect_errno(EINVAL):
        create(p, "/d", attr=(HARD_MSGMAX + 1, 1))
    with expect_errno(EINVAL):
        create(p, "/e", attr=(1, HARD_MSGSIZEMAX + 1))
    # Lower sysctls do not bind a privileged caller either.
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"1\n")
    create(p, "/f", attr=(5, 128))


def test_null_attr_defaults(proc: Proc) -> None:
    fd = proc.mq_open(NAME, O_RDWR | O_CREAT, 0o600)
    a = proc.mq_getattr(fd)
    assert (a.flags, a.maxmsg, a.msgsize, a.curmsgs) == (0, MAXMSG, MSGSIZE, 0)


def test_null_attr_defaults_from_sysctls(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/fs/mqueue/msg_default", b"5\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_default", b"1024\n")
    a = proc.mq_getattr(create(proc, "/a"))
    assert (a.maxmsg, a.msgsize) == (5, 1024)
    # The defaults are capped by the unprivileged maxima, even for a privileged caller.
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"3\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_max", b"512\n")
    a = proc.mq_getattr(create(proc, "/b"))
    assert (a.maxmsg, a.msgsize) == (3, 512)
    target.write_file("/proc/sys/fs/mqueue/msg_default", b"30\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_default", b"9000\n")
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"40\n")
    target.write_file("/proc/sys/fs/mqueue/msgsize_max", b"20000\n")
    a = proc.mq_getattr(create(proc, "/c"))
    assert (a.maxmsg, a.msgsize) == (30, 9000)


# -- mode, owner, umask -----------------------------------------------------------------------------------


def test_umask_applies_to_mode(proc: Proc) -> None:
    proc.umask(0o027)
    fd = proc.mq_open("/a", O_RDWR | O_CREAT | O_EXCL, 0o777)
    assert proc.fstat(fd).mode == S_IFREG | 0o750
    proc.umask(0)
    fd = proc.mq_open("/b", O_RDWR | O_CREAT | O_EXCL, 0o641)
    assert proc.fstat(fd).mode == S_IFREG | 0o641


def test_special_mode_bits_kept(proc: Proc) -> None:
    proc.umask(0)
    fd = proc.mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0o7777 | S_IFMT)
    assert proc.fstat(fd).mode == S_IFREG | 0o7777


def test_owner_is_creator(target: Target) -> None:
    p = user(target)
    fd = create(p)
    st = p.fstat(fd)
    assert (st.uid, st.gid) == (p.geteuid(), p.getegid())


# -- mq_unlink ------------------------------------------------------------------------------------------------


def test_unlink_missing_is_enoent(proc: Proc) -> None:
    with expect_errno(ENOENT):
        proc.mq_unlink(NAME)
    create(proc)
    proc.mq_unlink(NAME)
    with expect_errno(ENOENT):
        proc.mq_unlink(NAME)


def test_unlink_by_non_owner_eperm_raw_eacces_libc(target: Target, proc: Proc) -> None:
    """The mqueue root is sticky (01777): only the queue's owner, the directory's owner or a
    CAP_FOWNER holder may remove an entry. The kernel says EPERM; glibc reports EACCES."""
    proc.umask(0)
    create(proc, mode=0o666)
    other = user(target)
    with expect_errno(EPERM):
        other.sys_mq_unlink(b"q")
    with expect_errno(EACCES):
        other.mq_unlink(NAME)
    # The queue is still there.
    other.mq_open(NAME, O_RDWR)


def test_unlink_by_owner(target: Target) -> None:
    owner = user(target)
    create(owner, mode=0o600)
    owner.mq_unlink(NAME)
    with expect_errno(ENOENT):
        owner.mq_open(NAME, O_RDONLY)


def test_unlink_with_cap_fowner(target: Target) -> None:
    owner = user(target)
    create(owner, mode=0o600)
    fowner = user(target, caps=1 << CAP_FOWNER)
    fowner.mq_unlink(NAME)
    with expect_errno(ENOENT):
        owner.mq_open(NAME, O_RDONLY)


def test_root_unlinks_any_queue(target: Target, proc: Proc) -> None:
    owner = user(target)
    create(owner, mode=0o600)
    proc.mq_unlink(NAME)


def test_unlinked_queue_keeps_working(proc: Proc) -> None:
    fd = create(proc)
    rd = proc.mq_open(NAME, O_RDONLY)
    proc.mq_send(fd, b"before", 1)
    proc.mq_unlink(NAME)
    proc.mq_send(fd, b"after", 2)
    assert proc.mq_receive(rd, MSGSIZE) == (b"after", 2)
    assert proc.mq_receive(fd, MSGSIZE) == (b"before", 1)
    # A new queue with the same name is a different queue.
    fd2 = create(proc)
    proc.mq_send(fd, b"old", 0)
    assert proc.mq_getattr(fd2).curmsgs == 0
    assert proc.mq_getattr(fd).curmsgs == 1
