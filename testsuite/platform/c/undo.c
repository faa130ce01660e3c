/* Run by testsuite/platform/undo_driver.py, whose listener SIGKILLs a receiver right before the
 * reply of its msgrcv(msgtyp == 77) is sent: the message it had dequeued must come back. Each case
 * prints what the parent then finds. (Natively nobody kills the children at that point: this
 * program's transcript is the sentry's only; see test_undo.py.) */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

struct m { long mtype; char t[64]; };
static struct m s, r;
static int id;

static void snd(long type, const char *text) {
    s.mtype = type;
    strcpy(s.t, text);
    if (msgsnd(id, &s, strlen(text) + 1, 0) < 0) printf("msgsnd: %s\n", strerrorname_np(errno));
}
static void rcv_nowait(const char *what) {
    memset(&r, 0, sizeof r);
    long n = msgrcv(id, &r, sizeof r.t, 0, IPC_NOWAIT);
    if (n < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: type %ld, %ld bytes, \"%s\"\n", what, r.mtype, n, r.t);
    fflush(stdout);
}
static pid_t receiver(const char *name, long msgtyp, size_t size, int flags) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        long n = msgrcv(id, &r, size, msgtyp, flags);
        printf("%s got %ld bytes \"%.*s\"\n", name, n, (int)(n < 0 ? 0 : n), r.t);
        fflush(stdout);
        _exit(0);
    }
    return p;
}
static void reap(const char *name, pid_t p) {
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st)) printf("%s killed by signal %d\n", name, WTERMSIG(st));
    else printf("%s exited %d\n", name, WEXITSTATUS(st));
    fflush(stdout);
}

int main(void) {
    id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("1. a queued message taken by a receiver that dies before the reply\n");
    snd(77, "first");
    snd(5, "newer");
    reap("child", receiver("child", 77, sizeof r.t, 0));
    rcv_nowait("next");  /* the undone message is back where it was: at the front */
    rcv_nowait("next");
    rcv_nowait("next");

    printf("2. a message handed straight to a waiting receiver that dies before the reply\n");
    pid_t c = receiver("child", 77, sizeof r.t, 0);
    usleep(100000);
    snd(77, "second");
    reap("child", c);
    rcv_nowait("next");

    printf("3. the undo hands the message to the next waiting receiver, as msgsnd would\n");
    pid_t a = receiver("A", 77, sizeof r.t, 0);
    usleep(100000);
    pid_t b = receiver("B", -77, sizeof r.t, 0);
    usleep(100000);
    snd(77, "third");
    reap("B", b);  /* B prints before it exits: reaping B first keeps the transcript's order */
    reap("A", a);
    rcv_nowait("next");

    printf("4. MSG_NOERROR: the whole message comes back, not the truncated copy\n");
    snd(77, "not truncated");
    reap("child", receiver("child", 77, 3, MSG_NOERROR));
    rcv_nowait("next");

    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    printf("qnum %lu cbytes %lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
