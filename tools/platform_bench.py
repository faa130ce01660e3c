"""Per-call overhead of the platform: a C loop run natively and under the sentry.

Linux counterpart: none (a measurement). gVisor counterpart: the syscall microbenchmarks of
test/perf (e.g. getpid_benchmark), which compare a sandboxed run with a native one.

A small C program (compiled at run time with the system C compiler) times N iterations of
msgsnd+msgrcv, mq_send+mq_receive, and a bare served call (msgctl on an invalid id, which the
sentry rejects at once), and prints nanoseconds per call. It runs natively (in a private IPC
namespace when ``unshare -i`` works) and under the platform in this process; the median of
``repeat`` runs is reported, beside a minimal C seccomp-notify round trip run in the same process
order. Targets (issue 9): <= 25 µs per served msgsnd or msgrcv, <= 15 µs per bare served call.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from typing import Any

LOOP_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
struct m { long mtype; char text[64]; };
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    struct m s = {1}, r;
    memset(s.text, 'x', 64);
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    double t0 = now();
    for (long i = 0; i < n; i++) { msgsnd(id, &s, 64, 0); msgrcv(id, &r, 64, 0, 0); }
    double t1 = now();
    msgctl(id, IPC_RMID, NULL);
    char name[64];
    snprintf(name, sizeof name, "/mqsentry-bench-%d", getpid());
    struct mq_attr at = {.mq_maxmsg = 8, .mq_msgsize = 64};
    mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    mq_unlink(name);
    char buf[64];
    double t2 = now();
    for (long i = 0; i < n; i++) { mq_send(q, s.text, 64, 0); mq_receive(q, buf, 64, NULL); }
    double t3 = now();
    for (long i = 0; i < n; i++) msgctl(-1, IPC_STAT, NULL);
    double t4 = now();
    printf("%.1f %.1f %.1f\n", (t1 - t0) / (2 * n), (t3 - t2) / (2 * n), (t4 - t3) / n);
    return 0;
}
"""

#: A minimal seccomp user-notification round trip in C, measured in the same run: the floor a
#: supervisor in any language pays (the child's trapped call, RECV, SEND, the child's return). The
#: child traps msgctl and times N calls; the parent answers each with -EINVAL.
NOTIFY_C = r"""
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t p = fork();
    if (p == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_msgctl, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {4, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        char c = 0; struct iovec io = {&c, 1};
        char cb[CMSG_SPACE(sizeof(int))]; memset(cb, 0, sizeof cb);
        struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        sendmsg(sv[1], &mh, 0);
        close(fd);
        double t0 = now();
        for (long i = 0; i < n; i++) syscall(SYS_msgctl, -1, 2, 0);
        printf("%.1f\n", (now() - t0) / n);
        fflush(stdout);
        _exit(0);
    }
    char c; struct iovec io = {&c, 1};
    char cb[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
    recvmsg(sv[0], &mh, 0);
    int fd; memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof fd);
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
    struct seccomp_notif req; struct seccomp_notif_resp resp;
    for (long i = 0; i < n; i++) {
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) break;
        resp.id = req.id; resp.val = 0; resp.error = -22; resp.flags = 0;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    waitpid(p, NULL, 0);
    return 0;
}
"""

KEYS = ("msgsnd+msgrcv", "mq_send+mq_receive", "bare served call")
#: Median targets per served call (issue 9): a msgsnd or msgrcv (and an mq_send or mq_receive)
#: <= 25 µs, a bare served call <= 15 µs.
TARGETS_NS = (25_000, 25_000, 15_000)


def _compile(workdir: str) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) found")
    src = os.path.join(workdir, "loop.c")
    exe = os.path.join(workdir, "loop")
    with open(src, "w") as f:
        f.write(LOOP_C)
    subprocess.run([cc, "-O2", "-o", exe, src], check=True, capture_output=True)
    return exe


def _compile_notify(workdir: str) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(workdir, "notify.c")
    exe = os.path.join(workdir, "notify")
    with open(src, "w") as f:
        f.write(NOTIFY_C)
    r = subprocess.run([cc or "cc", "-O2", "-o", exe, src], capture_output=True)
    return exe if r.returncode == 0 else None


def _c_notify(exe: str, n: int) -> float:
    return float(subprocess.run([exe, str(n)], check=True, capture_output=True, text=True).stdout.split()[0])


def _parse(out: str) -> list[float]:
    return [float(x) for x in out.split()]


def _native(exe: str, n: int) -> list[float]:
    cmd = [exe, str(n)]
    if shutil.which("unshare") and os.geteuid() == 0:
        cmd = ["unshare", "-i", *cmd]
    return _parse(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def _sentry(exe: str, n: int, sync: bool = True) -> list[float]:
    from mqsentry.boot import Kernel
    from mqsentry.kernel.platform import launch
    from mqsentry.kernel.platform.calls import OBSERVED, SERVED
    from mqsentry.kernel.platform.run import build_platform
    from mqsentry.kernel.platform.seccomp import Listener

    k = Kernel(arch="amd64")
    launched = launch.spawn([exe, str(n)], list(SERVED), list(OBSERVED), stdout=subprocess.PIPE)
    listener = Listener(launched.listener_fd)
    if sync:
        listener.try_sync_wake_up()
    plat = build_platform(k, listener)
    out: list[bytes] = []

    def reap() -> None:
        assert launched.proc.stdout is not None
        out.append(launched.proc.stdout.read())
        launched.proc.wait()

    th = threading.Thread(target=reap, daemon=True)
    th.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        plat.serve()
    finally:
        th.join()
        plat.close()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ns = ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) * 1e9
    return _parse(out[0].decode()) + [cpu_ns / max(plat.stats["served"], 1)]


def measure(iterations: int = 20_000, repeat: int = 5, sync: bool = True) -> dict[str, Any]:
    """Median ns per call, native and under the platform, for each of :data:`KEYS`."""
    from mqsentry.kernel import platform as plat_pkg

    reason = plat_pkg.available()
    if reason is not None:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="mqsentry-bench-") as d:
        exe = _compile(d)
        cnotify = _compile_notify(d)
        nat: list[list[float]] = []
        sen: list[list[float]] = []
        cn: list[float] = []
        for _ in range(repeat):  # interleaved, so load changes hit every column alike
            nat.append(_native(exe, iterations))
            sen.append(_sentry(exe, iterations, sync))
            if cnotify is not None:
                cn.append(_c_notify(cnotify, iterations))
    res: dict[str, Any] = {"iterations": iterations, "repeat": repeat, "rows": []}
    for i, key in enumerate(KEYS):
        nmed = statistics.median(r[i] for r in nat)
        smed = statistics.median(r[i] for r in sen)
        res["rows"].append({"name": key, "native_ns": nmed, "sentry_ns": smed,
                            "sentry_runs": [r[i] for r in sen], "overhead_ns": smed - nmed})
    res["sentry_cpu_ns_per_call"] = statistics.median(r[len(KEYS)] for r in sen)
    res["c_notify_ns"] = statistics.median(cn) if cn else None
    return res


def report(iterations: int = 20_000, repeat: int = 5, sync: bool = True) -> str:
    """A table of :func:`measure`'s results (what ``mqsentry bench`` can print)."""
    res = measure(iterations, repeat, sync)
    cn = res["c_notify_ns"]
    lines = [f"platform cost per served call (median of {repeat} runs x {iterations} iterations; C notify = a "
             f"minimal C seccomp-notify round trip measured in the same run)",
             f"{'operation (per call)':<22}{'native':>12}{'platform':>12}{'C notify':>12}{'ratio':>8}  target"]
    for row, target in zip(res["rows"], TARGETS_NS):
        ok = "PASS" if row["sentry_ns"] <= target else "MISS"
        cn_text = f"{cn / 1000:>10.2f}µs" if cn is not None else f"{'n/a':>12}"
        lines.append(f"{row['name']:<22}{row['native_ns'] / 1000:>10.2f}µs{row['sentry_ns'] / 1000:>10.2f}µs"
                     f"{cn_text}{row['sentry_ns'] / max(row['native_ns'], 1):>7.0f}x  <= {target / 1000:.0f}µs {ok}")
    lines.append(f"sentry CPU time per served call (user+sys, all kinds): {res['sentry_cpu_ns_per_call'] / 1000:.2f}µs "
                 f"(independent of how busy the machine is; wall-clock figures are not)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m mqsentry.tools.platform_bench")
    p.add_argument("-n", "--iterations", type=int, default=20_000)
    p.add_argument("-r", "--repeat", type=int, default=5)
    p.add_argument("--no-sync", action="store_true")
    a = p.parse_args(argv)
    print(report(a.iterations, a.repeat, not a.no_sync))
    return 0


if __name__ == "__main__":
    sys.exit(main())
