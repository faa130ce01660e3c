/* What a program inherits at exec: every signal whose disposition is not SIG_DFL, and the blocked
 * mask. Linux (fs/exec.c flush_signal_handlers): caught signals become SIG_DFL, ignored ones stay
 * ignored, the mask is kept. A launcher written in Python ignores SIGPIPE and SIGXFSZ itself; those
 * must not leak into the program. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) < 0) continue;
        const char *name = sigabbrev_np(s);
        char buf[16];
        if (!name) { snprintf(buf, sizeof buf, "RT%d", s - SIGRTMIN); name = buf; }
        if (sa.sa_handler != SIG_DFL) printf("SIG%s: %s\n", name, sa.sa_handler == SIG_IGN ? "ignored" : "caught");
        if (sigismember(&mask, s)) printf("SIG%s: blocked\n", name);
    }
    printf("done\n");
    return 0;
}
