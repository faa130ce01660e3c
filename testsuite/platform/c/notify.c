/* mq_notify from a real program: SIGEV_SIGNAL (siginfo: SI_MESGQ, sender pid, sival), one-shot,
 * EBUSY, removal when the owner closes any fd of the queue, the status line, SIGEV_THREAD through
 * glibc (netlink helper thread), and a notification fired by another process's send. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_sig, got_code, got_val, pid_ok;
static pid_t expect_pid;
static volatile pid_t got_pid;
static void on_sig(int s, siginfo_t *si, void *u) {
    (void)u;
    got_sig = s;
    got_code = si->si_code;
    got_val = si->si_value.sival_int;
    pid_ok = si->si_pid == expect_pid;
    got_pid = si->si_pid;
}

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int thread_val;
static void on_thread(union sigval v) {
    pthread_mutex_lock(&mu);
    thread_val = v.sival_int;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void status(mqd_t q) {
    char buf[128] = {0};
    lseek(q, 0, SEEK_SET);
    if (read(q, buf, sizeof buf - 1) > 0) {
        char *p = strstr(buf, "NOTIFY_PID:");
        if (p) { int np = atoi(p + 11); p[11] = 0; printf("status: %s%s\n", buf, np == 0 ? "0" : np == getpid() ? "me" : "other"); }
    }
    fflush(stdout);
}

int main(void) {
    const char *name = "/plat-notify";
    mq_unlink(name);
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 16};
    mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);

    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_value.sival_int = 4242;
    say("notify signal", mq_notify(q, &ev));
    status(q);
    say("notify again", mq_notify(q, &ev));
    expect_pid = getpid();
    say("send", mq_send(q, "a", 1, 0)); /* the handler has run when mq_send returns */
    printf("signal %d code=%d val=%d pid_ok=%d\n", (int)got_sig, (int)got_code, (int)got_val, (int)pid_ok);
    status(q);
    got_sig = 0;
    say("send (one-shot, no signal)", mq_send(q, "b", 1, 0));
    printf("signal after second send: %d\n", (int)got_sig);
    char buf[32];
    mq_receive(q, buf, sizeof buf, NULL);
    mq_receive(q, buf, sizeof buf, NULL);

    /* The owner closing any fd of the queue drops its registration. */
    say("notify signal", mq_notify(q, &ev));
    mqd_t q2 = mq_open(name, O_RDWR);
    mq_close(q2);
    status(q);
    say("notify after close", mq_notify(q, &ev));

    /* Another process's send fires it: si_pid is the sender. */
    got_sig = 0;
    pid_t pid = fork();
    if (pid == 0) {
        mq_send(q, "child", 5, 0);
        _exit(0);
    }
    /* The signal was queued before the child's mq_send returned: it has arrived once the child is
     * reaped (it may interrupt waitpid itself). */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    printf("signal from child %d code=%d val=%d pid_ok=%d\n", (int)got_sig, (int)got_code, (int)got_val,
           got_pid == pid);
    mq_receive(q, buf, sizeof buf, NULL);

    /* SIGEV_THREAD. */
    struct sigevent tev = {0};
    tev.sigev_notify = SIGEV_THREAD;
    tev.sigev_notify_function = on_thread;
    tev.sigev_value.sival_int = 77;
    say("notify thread", mq_notify(q, &tev));
    status(q);
    say("send", mq_send(q, "t", 1, 0));
    pthread_mutex_lock(&mu);
    while (!thread_val) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("thread callback val=%d\n", thread_val);
    mq_receive(q, buf, sizeof buf, NULL);
    /* Register and unregister (NOTIFY_REMOVED goes to glibc's helper). */
    say("notify thread", mq_notify(q, &tev));
    say("notify NULL", mq_notify(q, NULL));
    say("notify NULL again", mq_notify(q, NULL));
    status(q);
    say("notify bad fd", mq_notify(99, NULL));
    ev.sigev_notify = 77;
    say("notify bad kind", mq_notify(q, &ev));
    mq_close(q);
    mq_unlink(name);
    return 0;
}
