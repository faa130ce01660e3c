/* An IPC namespace kept alive only by a bind mount of its nsfs file (as `unshare --ipc=FILE` and
 * `ip netns`-style tools do): its queues survive the exit of every process in it, setns through the
 * mount finds them, and once the mount is gone nothing can reach it any more. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY 0x5eee

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}

static void run_child(void (*body)(const char *), const char *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        body(arg);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

/* In a fresh IPC namespace: make a SysV and a POSIX queue, then bind the namespace to `file`. */
static void make_and_bind(const char *file) {
    say("unshare(CLONE_NEWIPC)", unshare(CLONE_NEWIPC));
    int id = msgget(KEY, IPC_CREAT | 0600);
    say("msgget(KEY, IPC_CREAT) >= 0", id < 0 ? -1 : 0);
    struct msgbuf_ { long mtype; char text[8]; } m = {7, "kept"};
    say("msgsnd", msgsnd(id, &m, 5, 0));
    struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 8};
    mqd_t q = mq_open("/plat-bind", O_CREAT | O_RDWR, 0600, &at);
    say("mq_open(O_CREAT)", q < 0 ? -1 : 0);
    if (q >= 0) {
        say("mq_send", mq_send(q, "posix", 6, 3));
        mq_close(q);
    }
    say("bind /proc/self/ns/ipc", mount("/proc/self/ns/ipc", file, NULL, MS_BIND, NULL));
}

/* Some other served process comes and goes (the platform reconsiders namespaces at process exits). */
static void bystander(const char *unused) {
    (void)unused;
    int id = msgget(IPC_PRIVATE, 0600);
    msgctl(id, IPC_RMID, NULL);
}

/* Through the bind mount: the queues and their messages are still there. */
static void enter_and_look(const char *file) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    say("open(bound ns file) >= 0", fd < 0 ? -1 : 0);
    say("setns(CLONE_NEWIPC)", setns(fd, CLONE_NEWIPC));
    int id = msgget(KEY, 0);
    say("msgget(KEY) >= 0", id < 0 ? -1 : 0);
    struct msgbuf_ { long mtype; char text[8]; } m = {0, ""};
    long n = msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT);
    say("msgrcv", n);
    if (n >= 0) printf("  type %ld text %s\n", m.mtype, m.text);
    mqd_t q = mq_open("/plat-bind", O_RDWR);
    say("mq_open(/plat-bind)", q < 0 ? -1 : 0);
    if (q >= 0) {
        char buf[8] = {0};
        unsigned prio = 0;
        say("mq_receive", mq_receive(q, buf, sizeof buf, &prio));
        printf("  prio %u text %s\n", prio, buf);
        mq_close(q);
    }
    say("mq_unlink", mq_unlink("/plat-bind"));
    say("msgctl(IPC_RMID)", msgctl(id, IPC_RMID, NULL));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("private mount namespace: %s\n", strerrorname_np(errno));
        return 1;
    }
    char dir[] = "/tmp/nsbind-XXXXXX";
    if (!mkdtemp(dir) || mount("none", dir, "tmpfs", 0, NULL) < 0) {
        printf("tmpfs: %s\n", strerrorname_np(errno));
        return 1;
    }
    char file[64];
    snprintf(file, sizeof file, "%s/ipc", dir);
    close(open(file, O_CREAT | O_WRONLY, 0600));

    run_child(make_and_bind, file);
    for (int i = 0; i < 3; i++) run_child(bystander, NULL);
    run_child(enter_and_look, file);

    say("umount(bound ns file)", umount(file));
    say("open(ns file after umount) is a plain file", open(file, O_RDONLY) < 0 ? -1 : 0);
    umount(dir);
    rmdir(dir);
    /* The initial namespace never saw those queues. */
    say("msgget(KEY) in the initial namespace", msgget(KEY, 0));
    return 0;
}
