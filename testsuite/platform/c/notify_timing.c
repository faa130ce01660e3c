/* When a notification signal arrives. mq_notify(SIGEV_SIGNAL) registered by the sender itself:
 * Linux queues the signal inside mq_send (__do_notify), so the handler has run when mq_send returns,
 * and the next call is never interrupted by it. Repeated to catch a late signal. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_sig(int s) { (void)s; got++; }

int main(void) {
    const char *name = "/plat-notify-timing";
    mq_unlink(name);
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 16};
    mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, &at);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig; /* no SA_RESTART: a late signal would make the next call fail with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    int before_return = 0, eintr = 0;
    char buf[16];
    for (int i = 0; i < 20; i++) {
        got = 0;
        if (mq_notify(q, &ev) < 0) { perror("mq_notify"); return 1; }
        if (mq_send(q, "x", 1, 0) < 0) { if (errno == EINTR) eintr++; }
        if (got == 1) before_return++;
        struct mq_attr cur;
        if (mq_getattr(q, &cur) < 0 && errno == EINTR) eintr++;
        if (msgget(IPC_PRIVATE, 0600) < 0 && errno == EINTR) eintr++;
        if (mq_receive(q, buf, sizeof buf, NULL) < 0 && errno == EINTR) eintr++;
    }
    printf("handler ran before mq_send returned: %d/20\n", before_return);
    printf("later calls failed with EINTR: %d\n", eintr);
    mq_close(q);
    mq_unlink(name);
    return 0;
}
