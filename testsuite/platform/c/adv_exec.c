/* Issue 9 item 4: a non-leader thread that changed its own uid and exec'd: the new image has that
 * uid, not the leader's. */
#include "adv.h"
#include <pthread.h>
static char **gargv;
static char idbuf[16];
static void *thr(void *a) {
    (void)a;
    drop_to_nobody();
    execl("/proc/self/exe", gargv[0], "child", idbuf, (char *)NULL);
    return NULL;
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *name = "/adv-exec";
    if (argc > 2) {
        int id = atoi(argv[2]);
        struct amsg m;
        printf("uid after exec is nobody: %d\n", getuid() == 65534 || geteuid() != 0);
        printf("msgrcv: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
        printf("mq_open: %s\n", ename(mq_open(name, O_RDONLY)));
        if (geteuid() == 65534 || getuid() == 65534) return 0;
        msgctl(id, IPC_RMID, NULL);
        mq_unlink(name);
        return 0;
    }
    if (geteuid() != 0) { printf("root only\n"); return 0; }
    int id = make_sysv();
    make_posix(name, 0600);
    pid_t p = fork();
    if (p == 0) {
        gargv = argv;
        snprintf(idbuf, sizeof idbuf, "%d", id);
        struct msqid_ds ds;
        msgctl(id, IPC_STAT, &ds);  /* the leader is known to the sentry as root */
        pthread_t t;
        pthread_create(&t, NULL, thr, NULL);
        pthread_join(t, NULL);
        _exit(1);
    }
    waitchild(p);
    struct amsg m;
    printf("owner msgrcv: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
    msgctl(id, IPC_RMID, NULL);
    mq_unlink(name);
    return 0;
}
