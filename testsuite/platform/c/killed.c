/* A receiver SIGKILLed while it waits must not take a message with it; a sender killed while it
 * waits on a full queue must not deliver its message. Then the sysctl limits are printed (the test
 * runs this with kernel.msgmax=4096 and fs.mqueue.msg_max=5 set, natively and in the sentry). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}
struct m { long mtype; char t[5000]; };
static struct m s, r;

int main(void) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    mq_unlink("/plat-killed");
    struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 16};
    mqd_t q = mq_open("/plat-killed", O_CREAT | O_RDWR, 0600, &at);
    pid_t a = fork();
    if (a == 0) { msgrcv(id, &r, 16, 0, 0); _exit(1); }
    pid_t b = fork();
    if (b == 0) { char buf[16]; mq_receive(q, buf, sizeof buf, NULL); _exit(1); }
    usleep(100000);
    kill(a, SIGKILL);
    kill(b, SIGKILL);
    waitpid(a, NULL, 0);
    waitpid(b, NULL, 0);
    s.mtype = 1;
    strcpy(s.t, "kept");
    say("msgsnd", msgsnd(id, &s, 5, 0));
    say("msgrcv nowait", msgrcv(id, &r, 16, 0, IPC_NOWAIT));
    say("mq_send", mq_send(q, "kept", 5, 0));
    struct mq_attr g;
    mq_getattr(q, &g);
    printf("curmsgs after send = %ld\n", g.mq_curmsgs);
    /* The queue is full (maxmsg 1): a blocked sender is killed; its message never arrives. */
    pid_t c = fork();
    if (c == 0) { mq_send(q, "lost", 5, 0); _exit(1); }
    usleep(100000);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    char buf[16] = {0};
    say("mq_receive", mq_receive(q, buf, sizeof buf, NULL));
    printf("  got %s\n", buf);
    mq_getattr(q, &g);
    printf("curmsgs after receive = %ld\n", g.mq_curmsgs);
    /* Limits from the sysctls. */
    say("msgsnd 4096", msgsnd(id, &s, 4096, IPC_NOWAIT));
    say("msgsnd 4097", msgsnd(id, &s, 4097, IPC_NOWAIT));
    struct mq_attr big = {.mq_maxmsg = 6, .mq_msgsize = 8}, ok = {.mq_maxmsg = 5, .mq_msgsize = 8};
    say("mq_open maxmsg 6 > msg_max", mq_open("/plat-killed-2", O_CREAT | O_RDWR, 0600, &big) < 0 ? -1 : 0);
    say("mq_open maxmsg 5", mq_open("/plat-killed-3", O_CREAT | O_RDWR, 0600, &ok) < 0 ? -1 : 0);
    mq_unlink("/plat-killed-3");
    mq_unlink("/plat-killed");
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
