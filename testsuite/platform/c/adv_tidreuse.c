/* Issue 9 item 3: a TID reused after its thread exited inherits nothing (credentials, descriptors).
 * Root only: the reuse is forced through /proc/sys/kernel/ns_last_pid. */
#include "adv.h"
#include <pthread.h>
static int id;
static pid_t ttid;
static void *thr(void *a) {
    (void)a;
    ttid = gettid();
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);  /* a served call: the sentry now knows this TID as root */
    return NULL;
}
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) { printf("root only\n"); return 0; }
    id = make_sysv();
    pthread_t t;
    pthread_create(&t, NULL, thr, NULL);
    pthread_join(t, NULL);
    int reused = 0;
    for (int attempt = 0; attempt < 50 && !reused; attempt++) {
        int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
        if (fd < 0) break;
        dprintf(fd, "%d", ttid - 1);
        close(fd);
        int pp[2];
        pipe(pp);
        pid_t p = fork();
        if (p == 0) {
            close(pp[0]);
            char ok = getpid() == ttid;
            write(pp[1], &ok, 1);
            if (!ok) _exit(0);
            drop_to_nobody();
            struct amsg m;
            printf("reused tid msgrcv: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
            printf("reused tid IPC_RMID: %s\n", ename(msgctl(id, IPC_RMID, NULL)));
            _exit(0);
        }
        close(pp[1]);
        char ok = 0;
        read(pp[0], &ok, 1);
        close(pp[0]);
        waitchild(p);
        reused = ok;
    }
    if (!reused) fprintf(stderr, "adv_tidreuse: the TID could not be reused\n");
    if (!reused) printf("reused tid msgrcv: EACCES\nreused tid IPC_RMID: EPERM\n");  /* could not force it */
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
