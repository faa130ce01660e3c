/* Issue 9 item 7: no kernel-internal restart code (512..516) ever reaches a program: a ping-pong
 * pair beside a parked receiver, while another process storms the pair with SIGSTOP/SIGCONT. */
#include "adv.h"
#include <signal.h>
#define ROUNDS 3000
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int ping = msgget(IPC_PRIVATE, IPC_CREAT | 0600), pong = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    int idle = msgget(IPC_PRIVATE, IPC_CREAT | 0600), done = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    pid_t parked = fork();
    if (parked == 0) {  /* parked the whole time: keeps the sentry scanning */
        struct amsg m;
        msgrcv(idle, &m, sizeof m.text, 0, 0);
        _exit(0);
    }
    pid_t echo = fork();
    if (echo == 0) {
        struct amsg m;
        int bad = 0;
        for (int i = 0; i < ROUNDS; i++) {
            while (msgrcv(ping, &m, sizeof m.text, 0, 0) < 0) if (errno != EINTR) { bad++; break; }
            while (msgsnd(pong, &m, sizeof m.text, 0) < 0) if (errno != EINTR) { bad++; break; }
        }
        _exit(bad ? 1 : 0);
    }
    pid_t storm = fork();
    if (storm == 0) {
        struct amsg m;
        while (msgrcv(done, &m, sizeof m.text, 0, IPC_NOWAIT) < 0) {
            kill(echo, SIGSTOP);
            kill(echo, SIGCONT);
        }
        _exit(0);
    }
    struct amsg m = {1, "ball"};
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        while (msgsnd(ping, &m, sizeof m.text, 0) < 0) if (errno != EINTR) { bad++; break; }
        while (msgrcv(pong, &m, sizeof m.text, 0, 0) < 0) if (errno != EINTR) { bad++; break; }
    }
    msgsnd(done, &m, sizeof m.text, 0);
    waitchild(storm);
    int st = waitchild(echo);
    msgsnd(idle, &m, sizeof m.text, 0);
    waitchild(parked);
    printf("pinger errors: %d, echo exit: %d\n", bad, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    msgctl(ping, IPC_RMID, NULL); msgctl(pong, IPC_RMID, NULL);
    msgctl(idle, IPC_RMID, NULL); msgctl(done, IPC_RMID, NULL);
    return 0;
}
