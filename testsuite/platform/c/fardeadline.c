/* Far deadlines (issue 11): mq_timedreceive/mq_timedsend with tv_sec = INT64_MAX block until a
 * message, room or a signal, as Linux clamps the timeout; an interrupted far-deadline receive leaves
 * no waiter behind (the next message is queued, not handed to it); an interrupted far-deadline send
 * queues nothing; invalid timespecs are EINVAL. The main thread waits for the other thread's
 * sleeping state (/proc/self/task/<tid>/stat), never for a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NAME "/plat-fardeadline"
static mqd_t q;
static volatile pid_t worker_tid;
static struct timespec far = {INT64_MAX, 999999999};

static void on_usr1(int sig) { (void)sig; }

static int sleeping(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static void wait_sleeping(void) {
    while (!worker_tid) sched_yield();
    while (!sleeping(worker_tid)) sched_yield();
}

static void *receiver(void *arg) {
    (void)arg;
    char buf[64];
    unsigned prio = 0;
    worker_tid = syscall(SYS_gettid);
    errno = 0;
    ssize_t n = mq_timedreceive(q, buf, sizeof buf, &prio, &far);
    printf("far receive: %zd %s", n, n < 0 ? strerrorname_np(errno) : "");
    if (n >= 0) printf("'%.*s' prio %u", (int)n, buf, prio);
    printf("\n");
    return NULL;
}

static void *sender(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    errno = 0;
    int r = mq_timedsend(q, "phantom", 7, 0, &far);
    printf("far send: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    return NULL;
}

static void run(void *(*fn)(void *), int interrupt, const char *wake_msg) {
    pthread_t th;
    worker_tid = 0;
    pthread_create(&th, NULL, fn, NULL);
    wait_sleeping();
    if (interrupt) syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
    else if (wake_msg) mq_send(q, wake_msg, strlen(wake_msg), 3);
    else { char b[64]; mq_receive(q, b, sizeof b, NULL); }
    pthread_join(th, NULL);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1; /* no SA_RESTART: the interrupted calls fail with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    struct mq_attr attr = {0, 1, 16, 0};
    mq_unlink(NAME);
    q = mq_open(NAME, O_CREAT | O_RDWR, 0600, &attr);
    run(receiver, 0, "wake");        /* a message ends the far wait */
    run(receiver, 1, NULL);          /* EINTR ... */
    mq_send(q, "kept", 4, 1);        /* ... and the next message stays queued */
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("after the interrupted receive: curmsgs %ld\n", a.mq_curmsgs);
    run(sender, 0, NULL);            /* the queue is full: room ends the far wait */
    char b[64];
    unsigned prio;
    ssize_t n = mq_receive(q, b, sizeof b, &prio);
    printf("queued by the far send: '%.*s'\n", (int)n, b);
    mq_send(q, "full", 4, 0);
    run(sender, 1, NULL);            /* EINTR, and nothing is queued */
    n = mq_receive(q, b, sizeof b, &prio);
    mq_getattr(q, &a);
    printf("after the interrupted send: '%.*s', curmsgs %ld\n", (int)n, b, a.mq_curmsgs);
    struct timespec bad[] = {{-1, 0}, {0, 1000000000}, {0, -1}, {INT64_MAX, 1000000000}};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        int r = mq_timedsend(q, "x", 1, 0, &bad[i]);
        printf("invalid timespec %u: send %d %s", i, r, strerrorname_np(errno));
        errno = 0;
        n = mq_timedreceive(q, b, sizeof b, NULL, &bad[i]);
        printf(", receive %zd %s\n", n, strerrorname_np(errno));
    }
    mq_unlink(NAME);
    return 0;
}
