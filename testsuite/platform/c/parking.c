/* Parking (issue 9, item 10): many calls sleep in the sentry at once, and timed ones end on time.
 *
 * "many N": N threads each block in msgrcv on an empty queue; the main thread then waits for a byte
 * on stdin (the test sends it once it has seen the N calls parked in the sentry), sends N messages
 * and joins every receiver.
 * "timed": mq_timedreceive on an empty queue and mq_timedsend on a full one, from several threads
 * with different deadlines, plus a msgrcv woken by a message while they wait: each timed call
 * returns ETIMEDOUT, never before its deadline, and the woken one gets its message. */
#include "adv.h"
#include <pthread.h>
#include <time.h>

static int id;
static mqd_t q, full;

static void *rcv(void *a) {
    (void)a;
    struct amsg m;
    if (msgrcv(id, &m, sizeof m.text, 0, 0) < 0) printf("msgrcv: %s\n", ename(-1));
    return NULL;
}

static int many(int n) {
    id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    pthread_t *t = calloc(n, sizeof *t);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    int made = 0;
    for (int i = 0; i < n; i++) if (pthread_create(&t[made], &at, rcv, NULL) == 0) made++;
    char go;
    if (read(0, &go, 1) != 1) printf("no go byte\n");
    struct amsg m = {1, "x"};
    int sent = 0;
    for (int i = 0; i < made; i++) if (msgsnd(id, &m, sizeof m.text, 0) == 0) sent++;
    for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    printf("threads %d, sent %d, left %lu\n", made, sent, (unsigned long)ds.msg_qnum);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}

struct timed { int send; long ms; const char *res; int early; };

static void *timed(void *a) {
    struct timed *w = a;
    struct timespec start, dl, end;
    clock_gettime(CLOCK_REALTIME, &start);
    dl = start;
    dl.tv_nsec += w->ms * 1000000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    char buf[64];
    int r = w->send ? mq_timedsend(full, "y", 1, 0, &dl) : (int)mq_timedreceive(q, buf, sizeof buf, NULL, &dl);
    clock_gettime(CLOCK_REALTIME, &end);
    w->res = ename(r);
    w->early = end.tv_sec < dl.tv_sec || (end.tv_sec == dl.tv_sec && end.tv_nsec < dl.tv_nsec);
    return NULL;
}

static int timed_calls(void) {
    char name[64];
    struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 64};
    snprintf(name, sizeof name, "/mqsentry-parking-%d", getpid());
    q = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    mq_unlink(name);
    full = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    mq_unlink(name);
    mq_send(full, "f", 1, 0);
    id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct timed w[] = {{0, 120, 0, 0}, {0, 30, 0, 0}, {1, 60, 0, 0}, {0, 90, 0, 0}, {1, 10, 0, 0}};
    int n = sizeof w / sizeof w[0];
    pthread_t t[8], r;
    pthread_create(&r, NULL, rcv, NULL);
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, timed, &w[i]);
    struct amsg m = {1, "x"};
    msgsnd(id, &m, sizeof m.text, 0);  /* wakes the msgrcv, whichever order it parked in */
    pthread_join(r, NULL);
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        printf("%s %ld ms: %s%s\n", w[i].send ? "timedsend" : "timedreceive", w[i].ms, w[i].res,
               w[i].early ? " EARLY" : "");
    }
    msgctl(id, IPC_RMID, NULL);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && !strcmp(argv[1], "many")) return many(atoi(argv[2]));
    if (argc > 1 && !strcmp(argv[1], "timed")) return timed_calls();
    fprintf(stderr, "usage: parking many N | parking timed\n");
    return 2;
}
