/* Calls that never sleep never fail with EINTR (found by `mqsentry stress --real`).
 *
 * Linux: msgsnd/msgrcv with IPC_NOWAIT, IPC_STAT and mq_open do not sleep, so a signal cannot
 * interrupt them, whatever the handler's flags. Under seccomp user notification the host kernel waits
 * *interruptibly* until the supervisor has received the notification (WAIT_KILLABLE_RECV makes only
 * the wait after the RECV killable), and a signal in that window fails the call with ERESTARTSYS:
 * EINTR after a handler without SA_RESTART. One thread makes such calls while another sends it
 * SIGWINCH (a handler without SA_RESTART) until the caller is done; the count of EINTRs is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 4000
static int q;
static _Atomic int done, tid;
static int eintr, other;

static void on_winch(int sig) { (void)sig; }

static void *caller(void *arg) {
    (void)arg;
    atomic_store(&tid, (int)gettid());
    struct { long mtype; char text[8]; } m = {1, "x"};
    struct msqid_ds ds;
    for (int i = 0; i < ROUNDS; i++) {
        int r[3] = {msgsnd(q, &m, sizeof m.text, IPC_NOWAIT), 0, 0};
        int e0 = errno;
        r[1] = (int)msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
        int e1 = errno;
        r[2] = msgctl(q, IPC_STAT, &ds);
        int e2 = errno;
        int e[3] = {e0, e1, e2};
        for (int k = 0; k < 3; k++)
            if (r[k] < 0) { if (e[k] == EINTR) eintr++; else other++; }
        mqd_t fd = mq_open("/nosleep", O_RDONLY);
        if (fd == (mqd_t)-1) { if (errno == EINTR) eintr++; else other++; }
        else mq_close(fd);
    }
    atomic_store(&done, 1);
    return NULL;
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_winch}; /* no SA_RESTART */
    sigaction(SIGWINCH, &sa, NULL);
    q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 8};
    mq_unlink("/nosleep");
    mqd_t fd = mq_open("/nosleep", O_CREAT | O_RDWR, 0600, &a);
    if (q < 0 || fd == (mqd_t)-1) { perror("setup"); return 1; }
    pthread_t th;
    pthread_create(&th, NULL, caller, NULL);
    while (!atomic_load(&tid)) sched_yield();
    while (!atomic_load(&done)) syscall(SYS_tgkill, getpid(), atomic_load(&tid), SIGWINCH);
    pthread_join(th, NULL);
    printf("calls that never sleep: %d EINTR, %d other errors\n", eintr, other);
    msgctl(q, IPC_RMID, NULL);
    mq_unlink("/nosleep");
    return 0;
}
