/* An IPC namespace owned by a child user namespace (issue 10): unshare(CLONE_NEWUSER|CLONE_NEWIPC).
 * The namespace's root holds CAP_IPC_OWNER and CAP_SYS_ADMIN over the namespace's objects
 * (ns_capable(ns->user_ns)), but not CAP_SYS_RESOURCE (msgctl's msg_qbytes test is capable(), the
 * initial namespace's); the namespace's sysctls belong to its root (ipc_set_ownership). The outer
 * process writes the child's maps (uid 0 and 1000 as root; only its own uid otherwise), the steps
 * wait on pipes, never on time. */
#include "adv.h"
#include <sys/stat.h>

static void wr(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) printf("write %s: %s\n", path, ename(-1));
    if (fd >= 0) close(fd);
}

static int sysctl_write(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    int r = write(fd, text, strlen(text)) < 0 ? -1 : 0;
    close(fd);
    return r;
}

static long sysctl_read(const char *path) {
    char b[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    if (read(fd, b, sizeof b - 1) < 0) b[0] = 0;
    close(fd);
    return atol(b);
}

/* Root only: a namespace whose root is kernel uid/gid 1000 (maps "0 1000 1" and "1000 0 1"). Its
 * sysctls belong to uid 1000 (stat shows 0 inside), only that root may write them: the global root,
 * uid 1000 inside, may not (no DAC override for sysctls). */
static void foreign_root(void) {
    int go[2], up[2];
    if (pipe(go) < 0 || pipe(up) < 0) { perror("pipe"); exit(1); }
    pid_t p = fork();
    if (p == 0) {
        char c;
        if (unshare(CLONE_NEWUSER | CLONE_NEWIPC) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        if (write(up[1], "u", 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
        struct stat st;
        printf("inside euid %d\n", (int)geteuid());
        if (stat("/proc/sys/kernel/msgmnb", &st) == 0) printf("msgmnb owner %u:%u\n", st.st_uid, st.st_gid);
        printf("global root writes msgmnb: %s\n", ename(sysctl_write("/proc/sys/kernel/msgmnb", "4096\n")));
        if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0) {
            printf("setresuid 0: %s\n", ename(-1));
            _exit(0);
        }
        if (stat("/proc/sys/kernel/msgmnb", &st) == 0) printf("msgmnb owner %u:%u\n", st.st_uid, st.st_gid);
        printf("namespace root writes msgmnb: %s\n", ename(sysctl_write("/proc/sys/kernel/msgmnb", "4096\n")));
        printf("msgmnb now %ld\n", sysctl_read("/proc/sys/kernel/msgmnb"));
        _exit(0);
    }
    char c;
    if (read(up[0], &c, 1) != 1) { printf("child failed\n"); exit(1); }
    char path[64];
    const char *map = "0 1000 1\n1000 0 1\n";
    snprintf(path, sizeof path, "/proc/%d/uid_map", p);
    wr(path, map);
    snprintf(path, sizeof path, "/proc/%d/gid_map", p);
    wr(path, map);
    if (write(go[1], "g", 1) != 1) exit(1);
    waitchild(p);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int root = geteuid() == 0;
    if (root) foreign_root();
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int go[2], up[2];
    if (pipe(go) < 0 || pipe(up) < 0) { perror("pipe"); return 1; }
    pid_t p = fork();
    if (p == 0) {
        char c;
        if (unshare(CLONE_NEWUSER | CLONE_NEWIPC) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        if (write(up[1], "u", 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
        printf("ns root: euid %d\n", (int)geteuid());
        /* The namespace's sysctls are its root's (0644, owner = uid 0 of the owning namespace). */
        printf("msgmnb write: %s\n", ename(sysctl_write("/proc/sys/kernel/msgmnb", "8192\n")));
        printf("msgmnb now %ld\n", sysctl_read("/proc/sys/kernel/msgmnb"));
        int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        printf("msgget: %s\n", ename(id));
        struct msqid_ds ds;
        msgctl(id, IPC_STAT, &ds);
        ds.msg_qbytes = 100000; /* above msgmnb: capable(CAP_SYS_RESOURCE), never ns_capable */
        printf("IPC_SET raise qbytes: %s\n", ename(msgctl(id, IPC_SET, &ds)));
        if (!root) { printf("root only from here\n"); _exit(0); }
        /* A queue of uid 1000 of this namespace, 0600, holding one message. */
        pid_t g = fork();
        if (g == 0) {
            if (syscall(SYS_setresgid, 1000, 1000, 1000) < 0 || syscall(SYS_setresuid, 1000, 1000, 1000) < 0) {
                printf("setresuid: %s\n", ename(-1));
                _exit(1);
            }
            int q = msgget(0x1d0a, IPC_CREAT | 0600);
            struct amsg m = {1, "private"};
            printf("uid 1000 msgget+msgsnd: %s\n", ename(q < 0 ? q : msgsnd(q, &m, sizeof m.text, 0)));
            /* Without capabilities in the namespace, root's queue stays closed. */
            printf("uid 1000 msgrcv root's: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
            printf("uid 1000 IPC_RMID root's: %s\n", ename(msgctl(id, IPC_RMID, NULL)));
            struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 32};
            mqd_t mq = mq_open("/adv-ipcowner", O_CREAT | O_EXCL | O_RDWR, 0600, &a);
            printf("uid 1000 mq_open 0600: %s\n", ename(mq));
            _exit(0);
        }
        waitchild(g);
        int q = msgget(0x1d0a, 0);
        struct amsg m;
        printf("ns root msgrcv uid 1000's 0600: %s\n", ename(msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT)));
        msgctl(q, IPC_STAT, &ds);
        printf("owner uid %u mode %o\n", ds.msg_perm.uid, ds.msg_perm.mode & 0777);
        ds.msg_perm.mode = 0666;
        printf("ns root IPC_SET uid 1000's: %s\n", ename(msgctl(q, IPC_SET, &ds)));
        printf("ns root IPC_RMID uid 1000's: %s\n", ename(msgctl(q, IPC_RMID, NULL)));
        /* mqueue inodes: CAP_DAC_OVERRIDE and CAP_FOWNER in the caller's namespace, for an inode whose
         * ids are mapped there (capable_wrt_inode_uidgid); the sticky root allows the unlink. */
        printf("ns root mq_open uid 1000's 0600: %s\n", ename(mq_open("/adv-ipcowner", O_RDWR)));
        printf("ns root mq_unlink uid 1000's: %s\n", ename(mq_unlink("/adv-ipcowner")));
        _exit(0);
    }
    char c;
    if (read(up[0], &c, 1) != 1) { printf("child failed\n"); return 1; }
    char path[64], text[64];
    snprintf(path, sizeof path, "/proc/%d/setgroups", p);
    wr(path, "deny");
    if (root) snprintf(text, sizeof text, "0 0 1\n1000 1000 1\n");
    else snprintf(text, sizeof text, "0 %u 1\n", uid);
    snprintf(path, sizeof path, "/proc/%d/uid_map", p);
    wr(path, text);
    if (root) snprintf(text, sizeof text, "0 0 1\n1000 1000 1\n");
    else snprintf(text, sizeof text, "0 %u 1\n", gid);
    snprintf(path, sizeof path, "/proc/%d/gid_map", p);
    wr(path, text);
    if (write(go[1], "g", 1) != 1) return 1;
    waitchild(p);
    printf("outer msgmnb %ld\n", sysctl_read("/proc/sys/kernel/msgmnb"));
    return 0;
}
