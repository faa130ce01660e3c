/* A client/server pair as separate processes (the test starts "server & client" from a shell):
 *   clientserver sysv-server | sysv-client | posix-server | posix-client
 * The server upper-cases each request and replies; "quit" ends it and it prints a summary. The
 * client flushes everything it printed before sending "quit", so the transcript is deterministic. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#define KEY 0x6d717321
#define REQ "/plat-cs-req"
#define REP "/plat-cs-rep"
struct m { long mtype; char text[64]; };

static void upper(char *s) { for (; *s; s++) *s = toupper((unsigned char)*s); }
static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo"};

static int sysv_server(void) {
    int id = msgget(KEY, IPC_CREAT | IPC_EXCL | 0666);
    if (id < 0) { perror("msgget"); return 1; }
    int served = 0;
    for (;;) {
        struct m r = {0};
        if (msgrcv(id, &r, sizeof r.text, 1, 0) < 0) { perror("msgrcv"); return 1; }
        if (!strcmp(r.text, "quit")) break;
        upper(r.text);
        struct m s = {2};
        strcpy(s.text, r.text);
        msgsnd(id, &s, strlen(s.text) + 1, 0);
        served++;
    }
    printf("sysv server: served %d, removing\n", served);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}

static int sysv_client(void) {
    int id;
    while ((id = msgget(KEY, 0)) < 0) usleep(2000);
    for (int i = 0; i < 5; i++) {
        struct m s = {1}, r = {0};
        strcpy(s.text, words[i]);
        msgsnd(id, &s, strlen(s.text) + 1, 0);
        long n = msgrcv(id, &r, sizeof r.text, 2, 0);
        printf("sysv client: %s -> %s (%ld)\n", words[i], r.text, n);
    }
    fflush(stdout);
    struct m q = {1, "quit"};
    msgsnd(id, &q, 5, 0);
    return 0;
}

static int posix_server(void) {
    struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 64};
    mqd_t rep = mq_open(REP, O_CREAT | O_WRONLY, 0600, &at);
    mqd_t req = mq_open(REQ, O_CREAT | O_EXCL | O_RDONLY, 0600, &at);
    if (req < 0 || rep < 0) { perror("mq_open"); return 1; }
    int served = 0;
    char buf[64];
    unsigned prio;
    for (;;) {
        long n = mq_receive(req, buf, sizeof buf, &prio);
        if (n < 0) { perror("mq_receive"); return 1; }
        buf[n] = 0;
        if (!strcmp(buf, "quit")) break;
        upper(buf);
        mq_send(rep, buf, strlen(buf), prio);
        served++;
    }
    printf("posix server: served %d, unlinking\n", served);
    mq_unlink(REQ);
    mq_unlink(REP);
    return 0;
}

static int posix_client(void) {
    mqd_t req;
    while ((req = mq_open(REQ, O_WRONLY)) < 0) usleep(2000);
    mqd_t rep = mq_open(REP, O_RDONLY);
    for (int i = 0; i < 5; i++) {
        char buf[64] = {0};
        unsigned prio;
        mq_send(req, words[i], strlen(words[i]), i);
        long n = mq_receive(rep, buf, sizeof buf, &prio);
        printf("posix client: %s -> %s (%ld, prio %u)\n", words[i], buf, n, prio);
    }
    fflush(stdout);
    mq_send(req, "quit", 4, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "sysv-server")) return sysv_server();
    if (!strcmp(argv[1], "sysv-client")) return sysv_client();
    if (!strcmp(argv[1], "posix-server")) return posix_server();
    if (!strcmp(argv[1], "posix-client")) return posix_client();
    return 2;
}
