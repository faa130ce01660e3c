/* Issue 9 item 6: run under a listener that reports one syscall's notifications as no longer valid
 * (as if the caller had died and its TID had been reused): the sentry must not act on what it read
 * from /proc for such a call, nor write into the caller's memory. */
#include "adv.h"
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "get") == 0) {
        printf("msgget: %s\n", ename(msgget(IPC_PRIVATE, IPC_CREAT | 0600)));
        return 0;
    }
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct amsg m = {1, "payload"}, r = {-5, "untouched"};
    printf("msgsnd: %s\n", ename(msgsnd(id, &m, sizeof m.text, 0)));
    long n = msgrcv(id, &r, sizeof r.text, 0, IPC_NOWAIT);
    printf("msgrcv: %s, buffer: %ld %s\n", ename(n), r.mtype, r.text);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
