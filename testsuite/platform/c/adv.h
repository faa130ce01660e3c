/* Shared bits of the adversarial programs (issue 9): print an errno by name, drop to nobody. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct amsg { long mtype; char text[32]; };

__attribute__((unused)) static const char *ename(int r) {
    if (r >= 0) return "ok";
    switch (errno) {
    case EACCES: return "EACCES"; case EPERM: return "EPERM"; case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN"; case ENOMSG: return "ENOMSG"; case EINVAL: return "EINVAL";
    case EINTR: return "EINTR"; case ENOENT: return "ENOENT"; case EIDRM: return "EIDRM";
    case ENXIO: return "ENXIO"; case ETIMEDOUT: return "ETIMEDOUT";
    }
    static char b[32];
    snprintf(b, sizeof b, "errno%d", errno);
    return b;
}

/* Root-owned 0600 queues (or the caller's own when not root), each holding one message. */
__attribute__((unused)) static int make_sysv(void) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct amsg m = {1, "secret"};
    if (id < 0 || msgsnd(id, &m, sizeof m.text, 0) < 0) { perror("setup"); exit(1); }
    return id;
}
__attribute__((unused)) static void make_posix(const char *name, int mode) {
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mq_unlink(name);
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, mode, &a);
    if (q < 0 || mq_send(q, "secret", 7, 0) < 0) { perror("setup mq"); exit(1); }
    mq_close(q);
}
/* Raw syscalls: they change only the calling thread's credentials (glibc's wrappers change all). */
__attribute__((unused)) static void drop_to_nobody(void) {
    if (geteuid() != 0) return;
    syscall(SYS_setgroups, 0, NULL);
    syscall(SYS_setresgid, 65534, 65534, 65534);
    syscall(SYS_setresuid, 65534, 65534, 65534);
}
__attribute__((unused)) static int waitchild(pid_t p) { int st; waitpid(p, &st, 0); return st; }
