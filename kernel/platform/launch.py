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
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1
_NR_SECCOMP = 317
_SET_MODE_FILTER = 1
_EACCES = 13


def _helper(argv: list[str]) -> int:
    """The helper process: install, send, exec. Exit status 127 if the program cannot be run."""
    sock_fd, flags, hexprog = int(argv[0]), int(argv[1]), argv[2]
    assert argv[3] == "--"
    prog_argv = argv[4:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # Die with the sentry: a target left without its sentry would see ENOSYS from every queue call.
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
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
    socket.send_fds(sock, [b"L"], [fd])
    os.close(fd)
    sock.close()
    try:
        os.execvp(prog_argv[0], prog_argv)
    except OSError as e:
        print(f"mqsentry run: {prog_argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


class Launched:
    """A started program: the helper's Popen (the program itself after exec) and the listener fd."""

    def __init__(self, proc: subprocess.Popen[bytes], listener_fd: int) -> None:
        self.proc = proc
        self.listener_fd = listener_fd


def spawn(argv: list[str], notify: list[int], observe: list[int] = (), killable: bool = True,  # type: ignore[assignment]
          **popen_kw: object) -> Launched:
    """Start ``argv`` with ``notify`` (served) and ``observe`` (seen, then continued) syscalls sent to a
    new listener; returns once the listener is in our hands. OSError if the kernel refused."""
    from mqsentry.kernel.platform import seccomp

    code = seccomp.encode_filter(seccomp.build_filter(notify, observe))
    flags = seccomp.SECCOMP_FILTER_FLAG_NEW_LISTENER
    if killable:
        flags |= seccomp.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        cmd = [sys.executable, "-I", "-S", os.path.abspath(__file__), str(theirs.fileno()), str(flags), code.hex(),
               "--", *argv]
        proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), **popen_kw)  # type: ignore[call-overload]
        theirs.close()
        msg, fds, _flags, _addr = socket.recv_fds(ours, 64, 1)
        if not fds:
            proc.wait()
            text = msg.decode(errors="replace")
            if text.startswith("E"):
                e = int(text[1:])
                raise OSError(e, f"seccomp filter refused: {os.strerror(e)}")
            raise OSError(f"launcher exited with status {proc.returncode} before sending the listener")
        return Launched(proc, fds[0])
    finally:
        theirs.close()
        ours.close()


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1:]))
