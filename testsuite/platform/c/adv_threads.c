/* Issue 9 items 8 and 9: a non-leader thread may make a process's first served call (a parked
 * msgrcv, an mq_notify registration) and the leader's first call must not disturb it; O_NONBLOCK set
 * by mq_setattr in a non-leader thread holds for the open file description. */
#include "adv.h"
#include <pthread.h>
#include <signal.h>
static int id;
static mqd_t q;
static volatile int got_signal;
static void on_usr1(int s) { (void)s; got_signal = 1; }
static volatile int rtid;
static void *receiver(void *a) {
    (void)a;
    struct amsg m;
    rtid = (int)syscall(SYS_gettid);
    long r = msgrcv(id, &m, sizeof m.text, 0, 0);
    printf("thread msgrcv: %s %s\n", ename(r), r >= 0 ? m.text : "");
    return NULL;
}
static void *notifier(void *a) {
    (void)a;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    printf("thread mq_notify: %s\n", ename(mq_notify(q, &ev)));
    return NULL;
}
static void *setter(void *a) {
    (void)a;
    struct mq_attr na = {.mq_flags = O_NONBLOCK}, old;
    printf("thread mq_setattr: %s\n", ename(mq_setattr(q, &na, &old)));
    return NULL;
}
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_usr1);
    id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    const char *name = "/adv-threads";
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mq_unlink(name);
    pid_t p = fork();
    if (p == 0) {
        /* The child's first served call comes from a thread, and parks. */
        pthread_t t;
        pthread_create(&t, NULL, receiver, NULL);
        /* Wait until the thread sleeps in msgrcv (its state), then make the leader's first call. */
        char path[64], st[256];
        int parked = 0;
        while (!rtid) sched_yield();
        while (!parked) {
            snprintf(path, sizeof path, "/proc/self/task/%d/stat", rtid);
            FILE *f = fopen(path, "r");
            if (f) {
                if (fgets(st, sizeof st, f)) { char *c = strrchr(st, ')'); parked = c && (c[2] == 'S' || c[2] == 'D'); }
                fclose(f);
            }
            if (!parked) sched_yield();
        }
        struct amsg m = {1, "hello"};
        const char *r = ename(msgsnd(id, &m, sizeof m.text, 0));
        pthread_join(t, NULL);
        printf("leader msgsnd: %s\n", r);
        _exit(0);
    }
    waitchild(p);
    q = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    pthread_t t;
    pthread_create(&t, NULL, notifier, NULL);
    pthread_join(t, NULL);
    struct mq_attr a;
    printf("leader getattr: %s\n", ename(mq_getattr(q, &a)));
    printf("leader send: %s\n", ename(mq_send(q, "x", 1, 0)));
    while (!got_signal) pause();
    printf("notified: %d\n", got_signal);
    char buf[64];
    mq_receive(q, buf, sizeof buf, NULL);
    pthread_create(&t, NULL, setter, NULL);
    pthread_join(t, NULL);
    mq_getattr(q, &a);
    printf("flags nonblock: %d, fcntl nonblock: %d\n", !!(a.mq_flags & O_NONBLOCK), !!(fcntl(q, F_GETFL) & O_NONBLOCK));
    printf("receive on empty: %s\n", ename(mq_receive(q, buf, sizeof buf, NULL)));
    fcntl(q, F_SETFL, 0);
    mq_getattr(q, &a);
    printf("after F_SETFL 0: nonblock %d\n", !!(a.mq_flags & O_NONBLOCK));
    mq_unlink(name);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
