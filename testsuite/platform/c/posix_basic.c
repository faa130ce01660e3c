/* POSIX message queues from a real program: open/create/excl, priorities, attributes, non-blocking
 * errors, access modes, dup/close, fork with a blocking child, read() of the status line, poll(),
 * unlink. Prints a deterministic transcript compared with the native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}

int main(void) {
    char name[64];
    snprintf(name, sizeof name, "/plat-basic-%d", 1);
    mq_unlink(name);
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0640, &at);
    printf("mq_open create ok=%d cloexec=%d\n", q >= 0, (fcntl(q, F_GETFD) & FD_CLOEXEC) != 0);
    say("mq_open excl again", mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0640, &at));
    say("mq_open noslash", mq_open("noslash", O_RDWR));
    say("mq_open missing", mq_open("/plat-missing-q", O_RDWR));
    struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 8};
    say("mq_open bad attr", mq_open("/plat-bad-attr", O_CREAT | O_RDWR, 0600, &bad));
    struct stat st;
    fstat(q, &st);
    printf("fstat reg=%d mode=%o\n", S_ISREG(st.st_mode), st.st_mode & 0777);

    say("send p1", mq_send(q, "low", 3, 1));
    say("send p9", mq_send(q, "high", 4, 9));
    say("send p5", mq_send(q, "mid", 3, 5));
    say("send too big", mq_send(q, "x", 33, 0));
    say("send bad prio", mq_send(q, "x", 1, 40000));
    struct mq_attr g;
    mq_getattr(q, &g);
    printf("getattr flags=%ld maxmsg=%ld msgsize=%ld curmsgs=%ld\n", g.mq_flags, g.mq_maxmsg, g.mq_msgsize, g.mq_curmsgs);
    char buf[64];
    unsigned prio;
    say("receive small buf", mq_receive(q, buf, 8, &prio));
    for (int i = 0; i < 3; i++) {
        memset(buf, 0, sizeof buf);
        long n = mq_receive(q, buf, sizeof buf, &prio);
        printf("receive = %ld %s prio=%u\n", n, buf, prio);
    }
    struct mq_attr nb = {.mq_flags = O_NONBLOCK}, old;
    say("setattr nonblock", mq_setattr(q, &nb, &old));
    printf("  old flags=%ld\n", old.mq_flags);
    say("receive empty nonblock", mq_receive(q, buf, sizeof buf, &prio));
    for (int i = 0; i < 4; i++) mq_send(q, "fill", 4, 0);
    say("send full nonblock", mq_send(q, "x", 1, 0));
    nb.mq_flags = 0;
    mq_setattr(q, &nb, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    say("timedsend full", mq_timedsend(q, "x", 1, 0, &ts));
    ts.tv_nsec = -1;
    say("timedsend bad ts", mq_timedsend(q, "x", 1, 0, &ts));

    /* read() gives the status line; poll() readiness. */
    memset(buf, 0, sizeof buf);
    long n = read(q, buf, sizeof buf - 1);
    printf("read = %ld: %s", n, buf);
    struct pollfd pf = {.fd = q, .events = POLLIN | POLLOUT};
    say("poll", poll(&pf, 1, 0));
    printf("  revents in=%d out=%d\n", !!(pf.revents & POLLIN), !!(pf.revents & POLLOUT));
    for (int i = 0; i < 4; i++) mq_receive(q, buf, sizeof buf, &prio);

    /* Access modes and dup/close. */
    mqd_t w = mq_open(name, O_WRONLY);
    say("receive on O_WRONLY", mq_receive(w, buf, sizeof buf, &prio));
    mqd_t r = mq_open(name, O_RDONLY);
    say("send on O_RDONLY", mq_send(r, "x", 1, 0));
    int d = dup(w);
    say("send via dup", mq_send(d, "dup", 3, 2));
    close(d);
    say("send after close", mq_send(d, "dup", 3, 2));
    say("send on stdout", mq_send(1, "x", 1, 0));
    say("receive via r", mq_receive(r, buf, sizeof buf, &prio));
    mq_close(w);
    mq_close(r);

    /* A forked child blocks in mq_receive until the parent sends. */
    pid_t pid = fork();
    if (pid == 0) {
        char cb[64] = {0};
        unsigned cp;
        long cn = mq_receive(q, cb, sizeof cb, &cp);
        printf("child receive = %ld %s prio=%u\n", cn, cb, cp);
        fflush(stdout);
        _exit(0);
    }
    usleep(100000);
    int ok = mq_send(q, "hello child", 11, 3);
    int stc;
    waitpid(pid, &stc, 0);
    printf("parent send = %d, child exit=%d\n", ok, WEXITSTATUS(stc));

    /* O_NONBLOCK set with fcntl() on the fd is the description's flag too. */
    int fl = fcntl(q, F_GETFL);
    fcntl(q, F_SETFL, fl | O_NONBLOCK);
    say("receive empty after F_SETFL O_NONBLOCK", mq_receive(q, buf, sizeof buf, &prio));
    mq_getattr(q, &g);
    printf("getattr flags after F_SETFL=%ld\n", g.mq_flags);
    fcntl(q, F_SETFL, fl);
    nb.mq_flags = O_NONBLOCK;
    mq_setattr(q, &nb, NULL);
    printf("F_GETFL after mq_setattr nonblock: %d\n", (fcntl(q, F_GETFL) & O_NONBLOCK) != 0);
    nb.mq_flags = 0;
    mq_setattr(q, &nb, NULL);

    say("unlink", mq_unlink(name));
    say("unlink again", mq_unlink(name));
    say("send after unlink", mq_send(q, "still", 5, 0));
    say("receive after unlink", mq_receive(q, buf, sizeof buf, &prio));
    mq_close(q);
    return 0;
}
