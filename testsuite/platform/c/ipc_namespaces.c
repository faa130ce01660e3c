/* IPC namespaces a program makes itself: unshare(CLONE_NEWIPC) gives empty SysV and POSIX worlds
 * with default sysctls, a child forked there shares the new namespace, setns goes back (and into a
 * namespace kept alive by a descriptor), a thread may switch alone, and a process created with
 * clone(CLONE_NEWIPC) starts in a namespace of its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY 0x5eed

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

static void sysctl(const char *path) {
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0) printf("%s: %s\n", path, strerrorname_np(errno));
    else printf("%s = %s", path, buf);
    if (fd >= 0) close(fd);
}

static void put(const char *path, const char *v) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, v, strlen(v)) < 0) printf("write %s: %s\n", path, strerrorname_np(errno));
    if (fd >= 0) close(fd);
}

static void world(const char *label) {
    printf("-- %s\n", label);
    say("msgget(KEY)", msgget(KEY, 0));
    mqd_t q = mq_open("/plat-ns", O_RDONLY);
    say("mq_open(/plat-ns)", q < 0 ? -1 : 0);
    if (q >= 0) mq_close(q);
    sysctl("/proc/sys/kernel/msgmax");
    sysctl("/proc/sys/fs/mqueue/msg_max");
    fflush(stdout);
}

static void make(const char *label) {
    int id = msgget(KEY, IPC_CREAT | 0600);
    printf("%s: msgget(KEY, IPC_CREAT) = %d\n", label, id);
    struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 8};
    mqd_t q = mq_open("/plat-ns", O_CREAT | O_RDWR, 0600, &at);
    say("mq_open(/plat-ns, O_CREAT)", q < 0 ? -1 : 0);
    if (q >= 0) mq_close(q);
}

static void *thread_unshare(void *arg) {
    (void)arg;
    say("thread: unshare(CLONE_NEWIPC)", unshare(CLONE_NEWIPC));
    world("thread after its unshare");
    return NULL;
}

static char stack[1 << 16];
static int child_fn(void *arg) {
    (void)arg;
    world("clone(CLONE_NEWIPC) child");
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    make("initial");
    put("/proc/sys/kernel/msgmax", "4096");
    world("initial");
    int orig = open("/proc/self/ns/ipc", O_RDONLY);

    say("unshare(CLONE_NEWIPC)", unshare(CLONE_NEWIPC));
    world("after unshare");
    make("new");
    world("new, populated");
    int second = open("/proc/self/ns/ipc", O_RDONLY);

    pid_t pid = fork();
    if (pid == 0) {
        world("child forked in the new namespace");
        say("child: unshare(CLONE_NEWIPC)", unshare(CLONE_NEWIPC));
        world("child after its own unshare");
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    say("setns(original)", setns(orig, CLONE_NEWIPC));
    world("back in the original");
    say("setns(second, kept alive by a descriptor)", setns(second, CLONE_NEWIPC));
    world("second again");
    say("setns(original)", setns(orig, CLONE_NEWIPC));

    pthread_t th;
    pthread_create(&th, NULL, thread_unshare, NULL);
    pthread_join(th, NULL);
    world("main thread after the thread's unshare");

    pid = clone(child_fn, stack + sizeof stack, CLONE_NEWIPC | SIGCHLD, NULL);
    if (pid < 0) perror("clone");
    waitpid(pid, NULL, 0);

    int id = msgget(KEY, 0);
    msgctl(id, IPC_RMID, NULL);
    mq_unlink("/plat-ns");
    return 0;
}
