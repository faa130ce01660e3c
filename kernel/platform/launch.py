"""Start a real program under the platform's seccomp filter and hand its listener to the sentry.

Linux counterpart: none (user space); the kernel side is seccomp(2) with
SECCOMP_FILTER_FLAG_NEW_LISTENER and SCM_RIGHTS (net/core/scm.c). gVisor counterpart: the
subprocess creation of pkg/sentry/platform/systrap (a stub process that installs its seccomp
filter before running anything else).

The sentry is multi-threaded, so it never fork()s to launch (docs/platform-rules.md §4, pitfall 3). It starts this
file as a helper process instead (``python -I -S launch.py SOCK FLAGS HEXPROG -- argv``): the helper
installs the filter on itself, sends the listener fd over the AF_UNIX socket ``SOCK`` with
SCM_RIGHTS (the listener is O_CLOEXEC, so this happens before exec), and execs the program. Every
process and thread the program creates inherits the filter. The helper half uses the standard library
only, so it starts in a few milliseconds; the sentry half (:func:`spawn`) builds the program.

The program tree dies with the sentry (issue 9): the helper forks; the child does the above, the
parent stays as the tree's *guardian*. The guardian is a child subreaper (every orphan of the tree
becomes its child, so nothing leaves the tree), has PR_SET_PDEATHSIG(SIGTERM) against the sentry and
kills the whole tree when that signal comes (or when the sentry was gone before the prctl), then
exits; the program has PR_SET_PDEATHSIG(SIGKILL) against the guardian. The guardian waits for every
process of the tree and exits with the program's status (re-raising its fatal signal), so the
sentry's ``wait`` of its child sees the program's status and, once it returns, nothing of the tree
is left to reap. It ignores the terminal's job-control and interrupt signals (they are meant for the
program) and restores their default before the program's exec.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_NR_SECCOMP = 317
_SET_MODE_FILTER = 1
_EACCES = 13


def _helper(argv: list[str]) -> int:
    """The helper process: install, send, exec. Exit status 127 if the program cannot be run."""
    sock_fd, flags, hexprog, sentry, proc_fd = int(argv[0]), int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    covers = _decode_covers(argv[5])
    assert argv[6] == "--"
    prog_argv = argv[7:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # Die with the sentry: a target left without its sentry would see ENOSYS from every queue call.
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    guard = _Guardian()
    signal.signal(signal.SIGTERM, guard.on_death)
    if os.getppid() != sentry:
        return guard.kill_tree_and_exit()
    # What the caller gave us, to give the program the same (an ignored signal stays ignored at exec).
    inherited = {sig: signal.getsignal(sig) for sig in _FOR_PROGRAM}
    for sig in _FOR_PROGRAM:
        signal.signal(sig, signal.SIG_IGN)
    child = os.fork()
    if child:
        os.close(sock_fd)
        if proc_fd >= 0:
            os.close(proc_fd)
        for c in covers:
            os.close(c[0])
        return guard.wait_all(child)
    me = os.getpid()
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1 or os.getppid() != guard.pid or me == guard.pid:
        os._exit(1)  # the guardian is gone already
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for sig in _FOR_PROGRAM:
        signal.signal(sig, signal.SIG_IGN if inherited[sig] == signal.SIG_IGN else signal.SIG_DFL)
    _exec_dispositions()
    devs: list[bytes] = []
    if proc_fd >= 0 or covers:
        if _private_namespace(libc):
            if proc_fd >= 0:
                _mount_proc_files(libc, proc_fd)
            devs = _cover_mqueue(libc, covers)
        else:
            for fd in [proc_fd] + [c[0] for c in covers]:
                if fd >= 0:
                    os.close(fd)
    code = bytes.fromhex(hexprog)
    n = len(code) // 8
    filt = ctypes.create_string_buffer(code, len(code))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.c_void_p)]

    fprog = Fprog(n, ctypes.addressof(filt))

    def install() -> int:
        return int(libc.syscall(ctypes.c_long(_NR_SECCOMP), ctypes.c_long(_SET_MODE_FILTER), ctypes.c_long(flags),
                                ctypes.byref(fprog)))

    fd = install()
    if fd < 0 and ctypes.get_errno() == _EACCES:
        # Not CAP_SYS_ADMIN: seccomp demands no_new_privs (set only then: it disables setuid exec).
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        fd = install()
    sock = socket.socket(fileno=sock_fd)
    if fd < 0:
        err = ctypes.get_errno()
        sock.sendall(f"E{err}".encode())
        return 126
    socket.send_fds(sock, [b"L" + b",".join(devs)], [fd])
    os.close(fd)
    sock.close()
    try:
        os.execvp(prog_argv[0], prog_argv)
    except OSError as e:
        print(f"mqsentry run: {prog_argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


def _exec_dispositions() -> None:
    """Give the program the signal state its caller had, as a native exec would.

    execve keeps ignored signals ignored and the blocked mask (fs/exec.c ``flush_signal_handlers``),
    so whatever this helper inherited passes through. But the interpreter ignores SIGPIPE and SIGXFSZ
    at start-up on its own (and the sentry's interpreter did too, so the caller's setting of those two
    is lost before we run): both go back to SIG_DFL, which is what a shell gives a program. Python's
    SIGINT handler is reset by execve itself. The mask is the spawning thread's, untouched."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)


#: Where the sentry's IPC /proc files go (procfiles.py): its FUSE root replaces /proc/sys/fs/mqueue
#: (the five mqueue sysctls), and these names of that root are bound over the other files.
PROC_DIR = b"/proc/sys/fs/mqueue"
PROC_BINDS = ((b"kernel.msgmax", b"/proc/sys/kernel/msgmax"), (b"kernel.msgmnb", b"/proc/sys/kernel/msgmnb"),
              (b"kernel.msgmni", b"/proc/sys/kernel/msgmni"), (b"kernel.msg_next_id", b"/proc/sys/kernel/msg_next_id"),
              (b"sysvipc.msg", b"/proc/sysvipc/msg"))
_CLONE_NEWNS = 0x20000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_SLAVE = 2, 4, 8, 4096, 0x4000, 1 << 19


def _private_namespace(libc: ctypes.CDLL) -> bool:
    """A mount namespace of the program's own: host mounts still propagate in, ours never out."""
    return bool(libc.unshare(_CLONE_NEWNS) == 0 and libc.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None) == 0)


def _mount_proc_files(libc: ctypes.CDLL, fuse_fd: int) -> bool:
    """In the program's mount namespace, mount the sentry's FUSE connection ``fuse_fd`` over
    PROC_DIR and bind PROC_BINDS. The sentry's server answers the mount's requests meanwhile. The
    FUSE fd is closed before exec in any case (a program holding it could answer for the sentry).
    False if any step failed."""
    ok = False
    try:
        opts = f"fd={fuse_fd},rootmode=40555,user_id=0,group_id=0,allow_other".encode()
        if libc.mount(b"mqsentry", PROC_DIR, b"fuse.mqsentry-ipc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, opts) != 0:
            return False
        ok = True
        for name, target in PROC_BINDS:
            if libc.mount(PROC_DIR + b"/" + name, target, None, _MS_BIND, None) != 0:
                ok = False
        return ok
    finally:
        os.close(fuse_fd)


_MS_RDONLY, _MS_NOSYMFOLLOW, _MS_NOATIME, _MS_NODIRATIME, _MS_STRICTATIME = 1, 256, 1024, 2048, 1 << 24
#: mountinfo's per-mount options -> mount(2) flags.
_MNT_OPTS = {b"ro": _MS_RDONLY, b"nosuid": _MS_NOSUID, b"nodev": _MS_NODEV, b"noexec": _MS_NOEXEC,
             b"noatime": _MS_NOATIME, b"nodiratime": _MS_NODIRATIME, b"nosymfollow": _MS_NOSYMFOLLOW}

Cover = tuple[int, bytes, bytes, int]  # (FUSE fd, mount point, source, mount flags)


def _unescape(field: bytes) -> bytes:
    """mountinfo's octal escapes (``\\040`` for a space...)."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i:i + 1] == b"\\" and field[i + 1:i + 4].isdigit():
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def mountinfo(text: bytes) -> list[tuple[bytes, bytes, bytes, bytes, bytes]]:
    """(mount point, fstype, source, per-mount options, major:minor) of each mountinfo line."""
    out = []
    for line in text.split(b"\n"):
        left, sep, right = line.partition(b" - ")
        if not sep:
            continue
        lf, rf = left.split(b" "), right.split(b" ")
        if len(lf) < 6 or len(rf) < 2:
            continue
        out.append((_unescape(lf[4]), rf[0], _unescape(rf[1]), lf[5], lf[2]))
    return out


def mqueue_mounts() -> list[tuple[bytes, bytes, int]]:
    """The mqueue mounts the program's namespace will have (a copy of ours): (mount point, source,
    mount flags), each mount point once."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            text = f.read()
    except OSError:
        return []
    seen: dict[bytes, tuple[bytes, bytes, int]] = {}
    for point, fstype, source, opts, _dev in mountinfo(text):
        if fstype == b"mqueue":
            flags = 0
            for o in opts.split(b","):
                flags |= _MNT_OPTS.get(o, 0)
            if b"noatime" not in opts.split(b",") and b"relatime" not in opts.split(b","):
                flags |= _MS_STRICTATIME
            seen[point] = (point, source, flags)
    return list(seen.values())


def _encode_covers(covers: Sequence[Cover]) -> str:
    return ",".join(f"{fd}:{p.hex()}:{src.hex()}:{fl}" for fd, p, src, fl in covers) or "-"


def _decode_covers(arg: str) -> list[Cover]:
    if arg == "-":
        return []
    out = []
    for item in arg.split(","):
        fd, p, src, fl = item.split(":")
        out.append((int(fd), bytes.fromhex(p), bytes.fromhex(src), int(fl)))
    return out


def _cover_mqueue(libc: ctypes.CDLL, covers: Sequence[Cover]) -> list[bytes]:
    """Mount each sentry mqueue FUSE connection over the mqueue mount it replaces, with the same
    flags; returns each new mount's major:minor ("" where the mount failed). The fds are closed."""
    devs: list[bytes] = []
    for fd, point, source, flags in covers:
        try:
            opts = f"fd={fd},rootmode=41777,user_id=0,group_id=0,allow_other,default_permissions".encode()
            if libc.mount(source or b"none", point, b"fuse.mqueue", flags, opts) != 0:
                devs.append(b"")
                continue
            with open("/proc/self/mountinfo", "rb") as f:
                found = [dev for p, fstype, _s, _o, dev in mountinfo(f.read())
                         if p == point and fstype == b"fuse.mqueue"]
            devs.append(found[-1] if found else b"")
        finally:
            os.close(fd)
    return devs


#: Signals a terminal sends to the whole foreground group: meant for the program, not the guardian.
_FOR_PROGRAM = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP)


def parent_pids() -> dict[int, int]:
    """Every process on the host: pid -> parent pid (field 4 of /proc/<pid>/stat, read after the
    command name's closing parenthesis, since a name may hold spaces and parentheses)."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        parent[int(name)] = int(data[data.rindex(b")") + 2:].split()[1])
    return parent


class _Guardian:
    """The helper's parent half: waits for the whole tree, kills it when the sentry dies."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def on_death(self, _sig: int, _frame: object) -> None:
        self.kill_tree_and_exit()

    def _descendants(self) -> list[int]:
        parent = parent_pids()
        found: list[int] = []
        frontier = {self.pid}
        while frontier:
            nxt = {pid for pid, pp in parent.items() if pp in frontier}
            found.extend(nxt)
            frontier = nxt
        return found

    def kill_tree_and_exit(self) -> int:
        # Orphans of the tree become our children (we are a subreaper): repeat until none is left.
        while True:
            pids = self._descendants()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
        os._exit(137)

    def wait_all(self, child: int) -> int:
        status = 0
        while True:
            try:
                pid, st = os.waitpid(-1, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                break
            if pid == child:
                status = st
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(sig, signal.SIG_DFL)
            os.kill(self.pid, sig)
            return 128 + sig
        return os.waitstatus_to_exitcode(status)


class Launched:
    """A started program: the helper's Popen (the program itself after exec) and the listener fd."""

    def __init__(self, proc: subprocess.Popen[bytes], listener_fd: int, covered: Sequence[int] = ()) -> None:
        self.proc = proc
        self.listener_fd = listener_fd
        #: st_dev of each mqueue cover mount (-1 where it failed), in the order asked.
        self.covered = list(covered)


def spawn(argv: list[str], notify: list[int], observe: list[int] = (), killable: bool = True,  # type: ignore[assignment]
          notify32: Sequence[int] = (), observe32: Sequence[int] = (), proc_fd: int = -1,
          covers: Sequence[Cover] = (), **popen_kw: object) -> Launched:
    """Start ``argv`` with ``notify`` (served) and ``observe`` (seen, then continued) syscalls sent to a
    new listener; returns once the listener is in our hands. OSError if the kernel refused.
    ``proc_fd``: a /dev/fuse descriptor whose server serves the IPC /proc files (procfiles.py), to be
    mounted in the program's own mount namespace (-1: the program sees the host's files).
    ``covers``: sentry mqueue FUSE connections to mount over the namespace's mqueue mounts."""
    import subprocess  # here, not at the top: the helper process does not need it

    from mqsentry.kernel.platform import seccomp

    code = seccomp.encode_filter(seccomp.build_filter(notify, observe, notify32, observe32))
    flags = seccomp.SECCOMP_FILTER_FLAG_NEW_LISTENER
    if killable:
        flags |= seccomp.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        cmd = [sys.executable, "-I", "-S", os.path.abspath(__file__), str(theirs.fileno()), str(flags), code.hex(),
               str(os.getpid()), str(proc_fd), _encode_covers(covers), "--", *argv]
        passed = (theirs.fileno(), *([proc_fd] if proc_fd >= 0 else []), *(c[0] for c in covers))
        proc = subprocess.Popen(cmd, pass_fds=passed, **popen_kw)  # type: ignore[call-overload]
        theirs.close()
        msg, fds, _flags, _addr = socket.recv_fds(ours, 4096, 1)
        if not fds:
            proc.wait()
            text = msg.decode(errors="replace")
            if text.startswith("E"):
                e = int(text[1:])
                raise OSError(e, f"seccomp filter refused: {os.strerror(e)}")
            raise OSError(f"launcher exited with status {proc.returncode} before sending the listener")
        covered = []
        for dev in msg[1:].split(b","):
            if b":" in dev:
                major, minor = dev.split(b":")
                covered.append(os.makedev(int(major), int(minor)))
            elif covers:
                covered.append(-1)
        return Launched(proc, fds[0], covered)
    finally:
        theirs.close()
        ours.close()


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1:]))
