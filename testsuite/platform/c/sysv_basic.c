/* SysV message queues from a real program: types, blocking child, IPC_NOWAIT, E2BIG, MSG_NOERROR,
 * MSG_EXCEPT, negative msgtyp, IPC_STAT, IPC_SET, IPC_RMID (waking a blocked receiver with EIDRM).
 * Prints a deterministic transcript; the test compares it with the native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

struct m { long mtype; char text[64]; };

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}

int main(void) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("msgget private ok=%d\n", id >= 0);
    struct m a = {1, "one"}, b = {2, "two"}, c = {3, "three"}, r;
    say("msgsnd 1", msgsnd(id, &a, 4, 0));
    say("msgsnd 2", msgsnd(id, &b, 4, 0));
    say("msgsnd 3", msgsnd(id, &c, 6, 0));
    memset(&r, 0, sizeof r);
    say("msgrcv type 2", msgrcv(id, &r, sizeof r.text, 2, 0));
    printf("  got %ld %s\n", r.mtype, r.text);
    say("msgrcv -3", msgrcv(id, &r, sizeof r.text, -3, 0));
    printf("  got %ld %s\n", r.mtype, r.text);
    say("msgrcv except 3", msgrcv(id, &r, sizeof r.text, 3, MSG_EXCEPT | IPC_NOWAIT));
    say("msgrcv small", msgrcv(id, &r, 2, 0, 0));
    say("msgrcv noerror", msgrcv(id, &r, 2, 0, MSG_NOERROR));
    printf("  got %ld %.2s\n", r.mtype, r.text);
    say("msgrcv empty nowait", msgrcv(id, &r, sizeof r.text, 0, IPC_NOWAIT));
    say("msgsnd bad type", msgsnd(id, &(struct m){0, "x"}, 1, 0));
    say("msgsnd bad ptr", msgsnd(id, (void *)8, 1, 0));
    say("msgrcv bad id", msgrcv(-1, &r, 1, 0, 0));

    struct msqid_ds ds;
    say("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    printf("  qnum=%lu mode=%o lspid_is_me=%d\n", (unsigned long)ds.msg_qnum, ds.msg_perm.mode & 0777,
           ds.msg_lspid == getpid());
    ds.msg_qbytes = 16;
    say("IPC_SET qbytes=16", msgctl(id, IPC_SET, &ds));
    say("msgsnd 10", msgsnd(id, &a, 10, 0));
    say("msgsnd 10 full nowait", msgsnd(id, &a, 10, IPC_NOWAIT));
    say("msgrcv drain", msgrcv(id, &r, sizeof r.text, 0, 0));

    /* A child blocks in msgrcv; the parent sends after a pause. */
    pid_t pid = fork();
    if (pid == 0) {
        struct m cr;
        long n = msgrcv(id, &cr, sizeof cr.text, 7, 0);
        printf("child msgrcv = %ld %ld %s\n", n, cr.mtype, cr.text);
        fflush(stdout);
        /* Then blocks again until the queue is removed. */
        n = msgrcv(id, &cr, sizeof cr.text, 0, 0);
        printf("child msgrcv after rmid = %ld %s\n", n, n < 0 ? strerrorname_np(errno) : "");
        fflush(stdout);
        _exit(0);
    }
    /* The parent prints only after the child is done: the transcript's order is then fixed. */
    usleep(100000);
    struct m s7 = {7, "seven"};
    long snd = msgsnd(id, &s7, 6, 0);
    int snd_errno = errno;
    usleep(100000);
    long rm = msgctl(id, IPC_RMID, NULL);
    int rm_errno = errno;
    int st;
    waitpid(pid, &st, 0);
    errno = snd_errno;
    say("parent msgsnd 7", snd);
    errno = rm_errno;
    say("parent IPC_RMID", rm);
    printf("child exit=%d\n", WEXITSTATUS(st));
    say("msgsnd after rmid", msgsnd(id, &a, 1, 0));
    int k = msgget(0x5151, IPC_CREAT | IPC_EXCL | 0644);
    printf("msgget key ok=%d\n", k >= 0);
    say("msgget excl again", msgget(0x5151, IPC_CREAT | IPC_EXCL | 0644));
    say("msgget lookup same", msgget(0x5151, 0) == k);
    say("rmid key", msgctl(k, IPC_RMID, NULL));
    return 0;
}
