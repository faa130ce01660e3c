/* A process asleep in poll(), epoll_wait() or select() on a queue descriptor is woken when another
 * process's mq_send makes the queue readable or its mq_receive makes it writable (Linux:
 * mqueue_poll_file, and the wake_up of the queue's wait_q in __do_notify and msg_get's callers).
 * The other process acts only once the sleeper is asleep in that call (/proc/<pid>/syscall names
 * it and /proc/<pid>/stat says S), so the wake-up is what is tested, not a first readiness check.
 * Prints a deterministic transcript compared with the native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The syscall number /proc/<pid>/syscall shows while <pid> sleeps, and S in /proc/<pid>/stat. */
static long sleeping_in(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    if (!end || end[1] != ' ' || end[2] != 'S') return -1;
    snprintf(path, sizeof path, "/proc/%d/syscall", pid);
    f = fopen(path, "r");
    if (!f) return -1;
    long nr = -1;
    if (fscanf(f, "%ld", &nr) != 1) nr = -1;
    fclose(f);
    return nr;
}

static void wait_asleep(pid_t pid, long a, long b) {
    for (;;) {
        long nr = sleeping_in(pid);
        if (nr == a || nr == b) return;
        sched_yield();
    }
}

static int child_done(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered is duplicated by fork */
    const char *name = "/plat-pollwake-1";
    mq_unlink(name);
    struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 16};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    if (q < 0) {
        printf("mq_open: %s\n", strerrorname_np(errno));
        return 1;
    }
    char buf[16];
    unsigned prio;

    /* 1: poll(POLLIN) on an empty queue, woken by a send. */
    pid_t c = fork();
    if (c == 0) {
        struct pollfd pf = {.fd = q, .events = POLLIN};
        int r = poll(&pf, 1, -1);
        printf("poll woke: ret=%d revents=%#x\n", r, pf.revents);
        ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
        printf("poller received %.*s at %u\n", (int)(n > 0 ? n : 0), buf, prio);
        _exit(0);
    }
    wait_asleep(c, SYS_poll, SYS_ppoll);
    int sent = mq_send(q, "one", 3, 5);
    int status = child_done(c); /* the sleeper's lines come first, whichever runs first now */
    printf("send: %d; poller exit %d\n", sent, status);

    /* 2: epoll_wait(EPOLLOUT) on a full queue, woken by a receive. */
    printf("fill: %d\n", mq_send(q, "two", 3, 6));
    c = fork();
    if (c == 0) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = 7}, got;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev) != 0) printf("epoll_ctl: %s\n", strerrorname_np(errno));
        int r = epoll_wait(ep, &got, 1, -1);
        printf("epoll woke: ret=%d events=%#x data=%u\n", r, got.events, got.data.u32);
        _exit(0);
    }
    wait_asleep(c, SYS_epoll_wait, SYS_epoll_pwait);
    ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
    status = child_done(c);
    printf("received %.*s at %u; epoller exit %d\n", (int)(n > 0 ? n : 0), buf, prio, status);

    /* 3: select() for reading on an empty queue, woken by a send. */
    c = fork();
    if (c == 0) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(q, &rd);
        int r = select(q + 1, &rd, NULL, NULL, NULL);
        printf("select woke: ret=%d readable=%d\n", r, FD_ISSET(q, &rd) != 0);
        _exit(0);
    }
    wait_asleep(c, SYS_select, SYS_pselect6);
    sent = mq_send(q, "three", 5, 1);
    status = child_done(c);
    printf("send: %d; selecter exit %d\n", sent, status);
    n = mq_receive(q, buf, sizeof buf, &prio);
    printf("received %.*s at %u\n", (int)(n > 0 ? n : 0), buf, prio);
    mq_unlink(name);
    return 0;
}
