/* A new image has the credentials of the thread that exec'd (found by `mqsentry stress --real`).
 *
 * A non-leader thread drops its effective uid to 65534 (raw setresuid: that thread only) and execs
 * while the old leader keeps making IPC calls. Linux: the new image runs with euid 65534 and is
 * refused root's 0600 queue (EACCES). Each of ROUNDS child processes does this once; the new image
 * reports whether it could read the queue. Prints how many images got in (Linux: none). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 100
struct m { long mtype; char text[8]; };
static int q;
static char *self;

static void *dropper(void *arg) {
    (void)arg;
    if (geteuid() == 0) syscall(SYS_setresuid, -1, 65534, -1);
    char qs[16];
    snprintf(qs, sizeof qs, "%d", q);
    execl(self, self, "image", qs, (char *)NULL);
    _exit(9);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "image") == 0) {
        struct m m;
        int id = atoi(argv[2]);
        if (msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT) >= 0) {
            msgsnd(id, &m, sizeof m.text, 0); /* put it back for the next round */
            return 1;
        }
        return errno == EACCES ? 0 : 2;
    }
    if (geteuid() != 0) { printf("root only\n"); return 0; }
    self = argv[0];
    q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct m m = {1, "secret"};
    if (q < 0 || msgsnd(q, &m, sizeof m.text, 0) < 0) { perror("setup"); return 1; }
    int got_in = 0, other = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t p = fork();
        if (p == 0) {
            struct msqid_ds ds;
            pthread_t t;
            pthread_create(&t, NULL, dropper, NULL);
            for (;;) msgctl(q, IPC_STAT, &ds); /* the old leader's calls until de_thread kills it */
        }
        int st;
        waitpid(p, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1) got_in++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) other++;
    }
    printf("images that read root's 0600 queue at euid 65534: %d (other outcomes: %d)\n", got_in, other);
    msgctl(q, IPC_RMID, NULL);
    return 0;
}
