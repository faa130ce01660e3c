/* Signals while a call is parked: msgrcv and mq_receive, with a handler installed with and without
 * SA_RESTART, and SIGSTOP/SIGCONT. Linux: msgrcv is never restarted after a handler (EINTR even with
 * SA_RESTART, -ERESTARTNOHAND); mq_receive restarts under SA_RESTART (-ERESTARTSYS); a stop and
 * continue restarts both transparently. Then a process-directed signal with two threads parked. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static void on_usr1(int s) { (void)s; hits++; }
struct m { long mtype; char text[32]; };

static void child_result(const char *what, long n, const char *data) {
    if (n < 0) printf("%s: -1 %s hits=%d\n", what, strerrorname_np(errno), (int)hits);
    else printf("%s: %ld %s hits=%d\n", what, n, data, (int)hits);
    fflush(stdout);
}

static void scenario(const char *label, int posix, int mode /* 0 norestart, 1 restart, 2 stop/cont */) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    char qn[32];
    snprintf(qn, sizeof qn, "/plat-sig-%d", posix * 10 + mode);
    mq_unlink(qn);
    struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 32};
    mqd_t q = mq_open(qn, O_CREAT | O_RDWR, 0600, &at);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_usr1;
        sa.sa_flags = mode == 1 ? SA_RESTART : 0;
        sigaction(SIGUSR1, &sa, NULL);
        char buf[64] = {0};
        long n;
        if (posix) {
            n = mq_receive(q, buf, sizeof buf, NULL);
        } else {
            struct m r = {0};
            n = msgrcv(id, &r, sizeof r.text, 0, 0);
            memcpy(buf, r.text, sizeof r.text);
        }
        child_result(label, n, buf);
        _exit(0);
    }
    usleep(100000);
    if (mode == 2) {
        kill(pid, SIGSTOP);
        usleep(50000);
        kill(pid, SIGCONT);
    } else {
        kill(pid, SIGUSR1);
    }
    usleep(150000);
    if (posix) mq_send(q, "late", 5, 0);
    else { struct m s = {1, "late"}; msgsnd(id, &s, 5, IPC_NOWAIT); }
    waitpid(pid, NULL, 0);
    msgctl(id, IPC_RMID, NULL);
    mq_close(q);
    mq_unlink(qn);
}

static int mt_id;
static void *mt_thread(void *arg) {
    struct m r = {0};
    long n = msgrcv(mt_id, &r, sizeof r.text, (long)arg, 0);
    /* Only the thread that took the signal returns EINTR; the other one gets its message. */
    printf("thread %ld: %ld %s\n", (long)arg, n, n < 0 ? strerrorname_np(errno) : r.text);
    fflush(stdout);
    return NULL;
}

static void two_threads(void) {
    mt_id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        /* Threads 1 and 2 take the signal; the main thread blocks it and waits. */
        pthread_t a, b;
        pthread_create(&a, NULL, mt_thread, (void *)1L);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        pthread_create(&b, NULL, mt_thread, (void *)2L);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        _exit(0);
    }
    usleep(150000);
    kill(pid, SIGUSR1); /* thread 1 is the only thread not blocking it */
    usleep(150000);
    struct m s = {2, "for-two"};
    msgsnd(mt_id, &s, 8, 0);
    waitpid(pid, NULL, 0);
    msgctl(mt_id, IPC_RMID, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    scenario("msgrcv norestart", 0, 0);
    scenario("msgrcv SA_RESTART", 0, 1);
    scenario("msgrcv stop/cont", 0, 2);
    scenario("mq_receive norestart", 1, 0);
    scenario("mq_receive SA_RESTART", 1, 1);
    scenario("mq_receive stop/cont", 1, 2);
    two_threads();
    return 0;
}
