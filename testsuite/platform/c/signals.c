/* Signals while a call is parked: msgrcv and mq_receive, with a handler installed with and without
 * SA_RESTART, and SIGSTOP/SIGCONT. Linux: msgrcv is never restarted after a handler (EINTR even with
 * SA_RESTART, -ERESTARTNOHAND); mq_receive restarts under SA_RESTART (-ERESTARTSYS); a stop and
 * continue restarts both transparently. Then a process-directed signal with two threads parked.
 *
 * The parent never assumes a time is enough: it waits for observed states. "Parked" is the child's
 * thread asleep in the call (/proc/<pid>/task/<tid>/syscall names the call, stat says S) followed by
 * a barrier: one served call of the parent's own (msgctl IPC_STAT). Natively the barrier does nothing;
 * under a seccomp supervisor the kernel hands notifications out in the order they were raised, so
 * once the barrier has returned the supervisor holds the child's call (a signal that arrived before
 * that would be indistinguishable from one that arrived before the call was entered). The signal
 * handler writes a byte to a pipe, so the parent knows when it has run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static int ran_w = -1, ran_r = -1; /* the handler's "I ran" pipe */
static void on_usr1(int s) {
    (void)s;
    hits++;
    if (ran_w >= 0 && write(ran_w, "x", 1) < 0) hits += 100;
}
struct m { long mtype; char text[32]; };

/* The state letter of /proc/<pid>/task/<tid>/stat (0 if gone). */
static char task_state(pid_t pid, pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* The numbers /proc/<pid>/task/<tid>/syscall may show for the calls glibc makes. On i386, glibc
 * sends msgrcv through ipc(2) and mq_timedreceive through mq_timedreceive_time64 (falling back to the
 * 32-bit-time call on kernels without it); elsewhere each is its own syscall. */
#if defined(__i386__)
#define NR_MSGRCV SYS_ipc
#define NR_MSGRCV_ALT SYS_msgrcv
#define NR_MQ_TIMEDRECEIVE SYS_mq_timedreceive_time64
#define NR_MQ_TIMEDRECEIVE_ALT SYS_mq_timedreceive
#else
#define NR_MSGRCV SYS_msgrcv
#define NR_MSGRCV_ALT SYS_msgrcv
#define NR_MQ_TIMEDRECEIVE SYS_mq_timedreceive
#define NR_MQ_TIMEDRECEIVE_ALT SYS_mq_timedreceive
#endif

/* Is the thread asleep inside syscall nr (or its alternative, alt)? */
static int asleep_in2(pid_t pid, pid_t tid, long nr, long alt) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *end;
    long got = strtol(buf, &end, 10);
    return end != buf && (got == nr || got == alt) && task_state(pid, tid) == 'S';
}

static void barrier(int id) {
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
}

static void wait_parked(pid_t pid, pid_t tid, long nr, long alt, int barrier_id) {
    while (!asleep_in2(pid, tid, nr, alt)) usleep(1000);
    barrier(barrier_id);
}

static void wait_state(pid_t pid, char want) {
    while (task_state(pid, pid) != want) usleep(1000);
}

static void wait_handler(void) {
    char c;
    while (read(ran_r, &c, 1) < 0 && errno == EINTR) {}
}

/* The number of threads of pid. */
static int nthreads(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

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
    wait_parked(pid, pid, posix ? NR_MQ_TIMEDRECEIVE : NR_MSGRCV, posix ? NR_MQ_TIMEDRECEIVE_ALT : NR_MSGRCV_ALT, id);
    if (mode == 2) {
        kill(pid, SIGSTOP);
        wait_state(pid, 'T');
        kill(pid, SIGCONT); /* the call restarts and takes the message sent below */
    } else {
        kill(pid, SIGUSR1);
        wait_handler(); /* the call has returned EINTR or is restarting: the message cannot change that */
    }
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
    /* Both threads asleep in msgrcv (the leader waits in pthread_join). */
    for (;;) {
        int parked = 0;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.' && atoi(e->d_name) != pid && asleep_in2(pid, atoi(e->d_name), NR_MSGRCV, NR_MSGRCV_ALT)) parked++;
        if (d) closedir(d);
        if (parked == 2) break;
        usleep(1000);
    }
    barrier(mt_id);
    kill(pid, SIGUSR1); /* thread 1 is the only thread not blocking it */
    wait_handler();
    while (nthreads(pid) > 2) usleep(1000); /* thread 1 has printed and exited */
    struct m s = {2, "for-two"};
    msgsnd(mt_id, &s, 8, 0);
    waitpid(pid, NULL, 0);
    msgctl(mt_id, IPC_RMID, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2];
    if (pipe(p) < 0) return 1;
    ran_r = p[0];
    ran_w = p[1];
    scenario("msgrcv norestart", 0, 0);
    scenario("msgrcv SA_RESTART", 0, 1);
    scenario("msgrcv stop/cont", 0, 2);
    scenario("mq_receive norestart", 1, 0);
    scenario("mq_receive SA_RESTART", 1, 1);
    scenario("mq_receive stop/cont", 1, 2);
    two_threads();
    return 0;
}
