/* Threads and fork+exec: four threads ping-pong through one SysV queue and one POSIX queue; a
 * forked child execs this program again ("exec-child"), which finds the queues by key and name,
 * checks that the inherited mq fd was closed by exec (mq fds are O_CLOEXEC) and replies. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY 0x6d717322
#define NAME "/plat-threads"
#define ROUNDS 200
struct m { long mtype; int v; };
static int id;
static mqd_t q;

static void *sysv_thread(void *arg) {
    long me = (long)arg; /* types 1..2: thread me receives type me, replies to the other */
    long other = 3 - me;
    int sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        struct m s = {other, i}, r;
        if (me == 1) { msgsnd(id, &s, sizeof(int), 0); msgrcv(id, &r, sizeof(int), me, 0); }
        else { msgrcv(id, &r, sizeof(int), me, 0); s.v = r.v; msgsnd(id, &s, sizeof(int), 0); }
        sum += r.v;
    }
    return (void *)(long)sum;
}

static void *posix_thread(void *arg) {
    long me = (long)arg;
    int sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int v[4] = {i};
        if (me == 1) mq_send(q, (char *)v, sizeof v[0], 1);
        else { mq_receive(q, (char *)v, sizeof v, NULL); sum += v[0]; }
    }
    return (void *)(long)sum;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "exec-child")) {
        int fd = atoi(argv[2]);
        errno = 0;
        int r = mq_send(fd, "x", 1, 0);
        printf("exec child: inherited fd after exec: %d %s\n", r, strerrorname_np(errno));
        int cid = msgget(KEY, 0);
        mqd_t cq = mq_open(NAME, O_RDWR);
        struct m s = {9, 99};
        printf("exec child: msgsnd %d, mq_send %d\n", msgsnd(cid, &s, sizeof(int), 0),
               mq_send(cq, "from-exec", 9, 7));
        fflush(stdout);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    id = msgget(KEY, IPC_CREAT | 0600);
    mq_unlink(NAME);
    struct mq_attr at = {.mq_maxmsg = 3, .mq_msgsize = 16};
    q = mq_open(NAME, O_CREAT | O_RDWR, 0600, &at);
    pthread_t t[4];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, sysv_thread, (void *)(i + 1));
    for (long i = 0; i < 2; i++) pthread_create(&t[2 + i], NULL, posix_thread, (void *)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        printf("thread %d sum=%ld\n", i, (long)ret);
    }
    pid_t pid = fork();
    if (pid == 0) {
        char fdtxt[16];
        snprintf(fdtxt, sizeof fdtxt, "%d", (int)q);
        execl("/proc/self/exe", argv[0], "exec-child", fdtxt, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    struct m r;
    char buf[16] = {0};
    unsigned prio;
    long a = msgrcv(id, &r, sizeof(int), 9, IPC_NOWAIT);
    long b = mq_receive(q, buf, sizeof buf, &prio);
    printf("parent: child exit %d, msgrcv %ld v=%d, mq_receive %ld %s prio=%u\n", WEXITSTATUS(st), a, r.v, b, buf, prio);
    msgctl(id, IPC_RMID, NULL);
    mq_unlink(NAME);
    return 0;
}
