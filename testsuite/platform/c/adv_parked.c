/* Issue 9 item 10: 1,100 parked receivers do not stop the sender from being served. */
#include "adv.h"
#include <pthread.h>
#define N 1100
static int id;
static volatile int started;
static void *rcv(void *a) {
    (void)a;
    struct amsg m;
    __sync_fetch_and_add(&started, 1);
    if (msgrcv(id, &m, sizeof m.text, 0, 0) < 0) printf("msgrcv: %s\n", ename(-1));
    return NULL;
}
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    static pthread_t t[N];
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    int made = 0;
    for (int i = 0; i < N; i++) if (pthread_create(&t[i], &at, rcv, NULL) == 0) made++;
    while (started < made) sched_yield();
    struct amsg m = {1, "x"};
    int sent = 0;
    for (int i = 0; i < made; i++) if (msgsnd(id, &m, sizeof m.text, 0) == 0) sent++;
    for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
    printf("threads %d, sent %d, all received\n", made == N ? N : -made, sent);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
