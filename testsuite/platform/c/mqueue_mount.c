/* Issue 10 item 3: a program that mounts the mqueue filesystem sees its IPC namespace's queues there,
 * with Linux's mount checks, stat, open (O_CREAT makes a queue with the default attributes), read (the
 * QSIZE line), poll, unlink (the sticky root), chmod/chown, readdir and the same queues mq_open sees.
 * Runs as root (natively in private IPC and mount namespaces); the child part drops to uid 65534 and
 * then makes a user namespace of its own. Prints nothing that differs by design (st_dev, statfs). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static char d1[64], d2[64], d3[64], d4[64], d5[64], file[128], link_[128];

static const char *at(const char *dir, const char *name) {
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void st(const char *label, const char *path) {
    struct stat s;
    if (stat(path, &s) < 0) {
        printf("stat %s: %s\n", label, ename(-1));
        return;
    }
    printf("stat %s: mode=%o nlink=%lu uid=%u gid=%u size=%ld blksize=%ld blocks=%ld\n", label, s.st_mode,
           (unsigned long)s.st_nlink, s.st_uid, s.st_gid, (long)s.st_size, (long)s.st_blksize, (long)s.st_blocks);
}

/* Whether a syscall number (the first field of /proc/<pid>/syscall) is one poll(2) may be made with. */
static int is_poll(long nr) {
#ifdef SYS_poll
    if (nr == SYS_poll)
        return 1;
#endif
#ifdef SYS_ppoll
    if (nr == SYS_ppoll)
        return 1;
#endif
#ifdef SYS_ppoll_time64
    if (nr == SYS_ppoll_time64)
        return 1;
#endif
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void ls(const char *label, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        printf("ls %s: %s\n", label, ename(-1));
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("ls %s:", label);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void mnt(const char *label, const char *src, const char *dir, const char *type, unsigned long flags,
                const void *data) {
    printf("mount %s: %s\n", label, ename(mount(src, dir, type, flags, data)));
}

static void readq(const char *label, const char *path) {
    char buf[128] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("read %s: open %s\n", label, ename(-1));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    ssize_t again = read(fd, buf + (n > 0 ? n : 0), 8);
    close(fd);
    buf[strcspn(buf, "\n")] = 0;
    printf("read %s: [%s] (%zd, then %zd)\n", label, buf, n, again);
}

/* The part of a process without privileges: uid 65534, then root of a user namespace of its own. */
static void unprivileged(void) {
    if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
        printf("drop: %s\n", ename(-1));
        return;
    }
    mnt("as nobody", "none", d5, "mqueue", 0, NULL);
    printf("open ro (0644, root's): %s\n", ename(open(at(d1, "u"), O_RDONLY)));
    printf("open wr (0644, root's): %s\n", ename(open(at(d1, "u"), O_WRONLY)));
    printf("unlink root's in the sticky root: %s\n", ename(unlink(at(d1, "u"))));
    printf("chmod root's: %s\n", ename(chmod(at(d1, "u"), 0666)));
    int fd = creat(at(d1, "mine"), 0600);
    printf("creat mine: %s\n", ename(fd));
    close(fd);
    st("mine", at(d1, "mine"));
    printf("mq_open mine: %s\n", ename(mq_open("/mine", O_RDWR)));
    printf("chown mine to root: %s\n", ename(chown(at(d1, "mine"), 0, 0)));
    printf("unlink mine: %s\n", ename(unlink(at(d1, "mine"))));
    prctl(PR_SET_DUMPABLE, 1); /* /proc/self/uid_map stays ours to write after the uid change */
    if (unshare(CLONE_NEWUSER) < 0) {
        printf("unshare user: %s\n", ename(-1));
        return;
    }
    int f = open("/proc/self/setgroups", O_WRONLY);
    if (f >= 0 && (write(f, "deny", 4) < 0 || close(f) < 0))
        printf("setgroups deny failed\n");
    f = open("/proc/self/uid_map", O_WRONLY);
    if (f < 0 || write(f, "0 65534 1", 9) < 0)
        printf("uid_map failed\n");
    close(f);
    f = open("/proc/self/gid_map", O_WRONLY);
    if (f < 0 || write(f, "0 65534 1", 9) < 0)
        printf("gid_map failed\n");
    close(f);
    mnt("userns root, host mount ns", "none", d5, "mqueue", 0, NULL);
    if (unshare(CLONE_NEWNS) < 0) {
        printf("unshare mnt: %s\n", ename(-1));
        return;
    }
    mnt("userns root, own mount ns, host ipc ns", "none", d5, "mqueue", 0, NULL);
    if (unshare(CLONE_NEWIPC) < 0) {
        printf("unshare ipc: %s\n", ename(-1));
        return;
    }
    mnt("userns root, own mount and ipc ns", "none", d5, "mqueue", 0, NULL);
    ls("userns mount", d5);
    /* Not shown: the root's owner (Linux: the namespace creator's fsuid/fsgid; the sentry, which
     * meets the namespace after its creation, says 0:0; see DESIGN.md). */
    fd = creat(at(d5, "inner"), 0640);
    printf("creat inner: %s\n", ename(fd));
    close(fd);
    st("inner", at(d5, "inner"));
    struct mq_attr a;
    mqd_t q = mq_open("/inner", O_RDWR);
    printf("mq_open inner: %s\n", ename(q));
    if (q >= 0 && mq_getattr(q, &a) == 0)
        printf("inner attr: maxmsg=%ld msgsize=%ld\n", a.mq_maxmsg, a.mq_msgsize);
    printf("mq_open u (other namespace): %s\n", ename(mq_open("/u", O_RDONLY)));
    ls("userns mount", d5);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("root only\n");
        return 0;
    }
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("private mount namespace: %s\n", ename(-1));
        return 1;
    }
    char *dirs[] = {d1, d2, d3, d4, d5};
    for (int i = 0; i < 5; i++) {
        strcpy(dirs[i], "/tmp/mqmount-XXXXXX");
        if (!mkdtemp(dirs[i]) || chmod(dirs[i], 0777) < 0) {
            printf("mkdtemp: %s\n", ename(-1));
            return 1;
        }
    }
    snprintf(file, sizeof file, "%s/plain", d4);
    close(creat(file, 0644));
    snprintf(link_, sizeof link_, "%s-link", d2);
    if (symlink(d2, link_) < 0)
        printf("symlink: %s\n", ename(-1));

    /* Linux's checks, in order. */
    mnt("missing dir", "none", "/nonexistent-mqmount/x", "mqueue", 0, NULL);
    mnt("empty path", "none", "", "mqueue", 0, NULL);
    mnt("onto a file", "none", file, "mqueue", 0, NULL);
    mnt("through a file", "none", at(file, "x"), "mqueue", 0, NULL);
    mnt("bad target pointer", "none", (const char *)8, "mqueue", 0, NULL);
    mnt("bad data pointer", "none", d1, "mqueue", 0, (const void *)8);
    mnt("bad source pointer", (const char *)8, d1, "mqueue", 0, NULL);
    mnt("bad type pointer", "none", d1, (const char *)8, 0, NULL);
    mnt("MS_NOUSER", "none", d1, "mqueue", MS_NOUSER, NULL);
    mnt("MS_NOUSER, missing dir", "none", "/nonexistent-mqmount/x", "mqueue", MS_NOUSER, NULL);
    mnt("unknown option", "none", d1, "mqueue", 0, "bogus");
    mnt("nosuid as data", "none", d1, "mqueue", 0, "nosuid");
    mnt("second source", "none", d1, "mqueue", 0, "source=x");
    mnt("flag source", NULL, d1, "mqueue", 0, "source");
    mnt("common options", NULL, d1, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, "source=mq,rw,sync,async,=x,,");
    mnt("again on the same root", "none", d1, "mqueue", 0, NULL);
    mnt("magic flags, through a symlink", "none", link_, "mqueue", 0xC0ED0000, NULL);
    if (chdir(d4) < 0)
        printf("chdir: %s\n", ename(-1));
    char rel[80];
    snprintf(rel, sizeof rel, "../%s", strrchr(d3, '/') + 1);
    mnt("relative, read-only", "none", rel, "mqueue", MS_RDONLY, NULL);
    if (chdir("/") < 0)
        printf("chdir: %s\n", ename(-1));

    /* The same queues as mq_open, with Linux's attributes. */
    umask(022);
    struct mq_attr attr = {.mq_maxmsg = 5, .mq_msgsize = 64};
    mqd_t a = mq_open("/a", O_CREAT | O_RDWR, 0640, &attr);
    printf("mq_open a: %s\n", ename(a));
    mq_send(a, "hello", 5, 3);
    st("root", d1);
    st("a", at(d1, "a"));
    st("a via the second mount", at(d2, "a"));
    readq("a", at(d1, "a"));
    int fd = open(at(d1, "a"), O_RDWR);
    printf("write a queue file: %s\n", ename(write(fd, "x", 1)));
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
    int ready = poll(&pfd, 1, 0);
    printf("poll a: %d revents=%#x\n", ready, pfd.revents);
    close(fd);

    int c = creat(at(d1, "b"), 0666);
    printf("creat b: %s\n", ename(c));
    st("b (umask 022)", at(d1, "b"));
    mqd_t b = mq_open("/b", O_RDWR);
    struct mq_attr ba;
    if (b >= 0 && mq_getattr(b, &ba) == 0)
        printf("b attr: maxmsg=%ld msgsize=%ld curmsgs=%ld\n", ba.mq_maxmsg, ba.mq_msgsize, ba.mq_curmsgs);
    printf("mq_send on the creat fd: %s\n", ename(mq_send(c, "via-fd", 6, 1)));
    char msg[8192];
    unsigned prio = 0;
    ssize_t got = mq_receive(b, msg, sizeof msg, &prio);
    printf("mq_receive b: %zd prio=%u\n", got, prio);
    printf("open b O_CREAT|O_EXCL: %s\n", ename(open(at(d1, "b"), O_CREAT | O_EXCL | O_RDWR, 0600)));
    printf("open b O_CREAT: %s\n", ename(open(at(d1, "b"), O_CREAT | O_RDONLY, 0600) >= 0 ? 0 : -1));
    printf("open missing: %s\n", ename(open(at(d1, "missing"), O_RDONLY)));
    printf("creat on the read-only mount: %s\n", ename(creat(at(d3, "r"), 0600)));
    printf("unlink on the read-only mount: %s\n", ename(unlink(at(d3, "b"))));
    printf("open ro on the read-only mount: %s\n", ename(open(at(d3, "b"), O_RDONLY) >= 0 ? 0 : -1));
    printf("mkdir: %s\n", ename(mkdir(at(d1, "dir"), 0700)));
    printf("mknod: %s\n", ename(mknod(at(d1, "node"), S_IFREG | 0600, 0)));
    printf("rename: %s\n", ename(rename(at(d1, "b"), at(d1, "c"))));
    printf("link: %s\n", ename(link(at(d1, "b"), at(d1, "c"))));
    printf("symlink: %s\n", ename(symlink("b", at(d1, "s"))));
    printf("rmdir a queue: %s\n", ename(rmdir(at(d1, "b"))));
    printf("name too long: %s\n", ename(open(at(d1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), O_RDONLY)));
    ls("d1", d1);
    ls("d2", d2);

    printf("chmod a: %s\n", ename(chmod(at(d1, "a"), 0604)));
    printf("chown a: %s\n", ename(chown(at(d1, "a"), 65534, 65534)));
    st("a", at(d1, "a"));
    printf("chmod root: %s\n", ename(chmod(d1, 0755)));
    st("root via the second mount", d2);
    printf("chmod root back: %s\n", ename(chmod(d1, 01777)));

    /* A waiting poll that the message wakes: the child sends once the parent sleeps in poll (the
     * state, read from /proc/<ppid>/syscall), and stays until the parent has woken up; the parent
     * also watches the child's pidfd, so a failed send ends the wait instead of hanging. */
    fd = open(at(d1, "b"), O_RDONLY);
    int hold[2];
    if (pipe(hold) < 0)
        printf("pipe: %s\n", ename(-1));
    pid_t parent = getpid();
    pid_t p = fork();
    if (p == 0) {
        close(hold[1]);
        char path[64], line[64];
        snprintf(path, sizeof path, "/proc/%d/syscall", (int)parent);
        for (;;) {
            FILE *f = fopen(path, "r");
            int in_poll = f && fgets(line, sizeof line, f) && is_poll(atol(line));
            if (f)
                fclose(f);
            if (in_poll)
                break;
            sched_yield();
        }
        if (mq_send(b, "late", 4, 0) != 0)
            _exit(1);
        char c;
        _exit(read(hold[0], &c, 1) < 0 ? 1 : 0);
    }
    close(hold[0]);
    struct pollfd both[2] = {{.fd = fd, .events = POLLIN}, {.fd = (int)syscall(SYS_pidfd_open, p, 0), .events = POLLIN}};
    ready = poll(both, 2, -1);
    printf("poll b until a message: %d revents=%#x child gone=%d\n", ready, both[0].revents, !!both[1].revents);
    close(hold[1]);
    waitpid(p, NULL, 0);
    close(both[1].fd);
    close(fd);

    /* mqueue_flush_file: any close of a file of the queue by the registered process drops its
     * notification (here a file opened in the mount, the registration made through mq_open's fd). */
    mqd_t nq = mq_open("/notif", O_CREAT | O_RDWR, 0600, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_NONE};
    printf("mq_notify: %s\n", ename(mq_notify(nq, &ev)));
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            close(open(at(d1, "notif"), O_RDONLY));
        pid_t c2 = fork();
        if (c2 == 0) {
            printf("another process's mq_notify %s: %s\n", round ? "after the owner's close" : "while registered",
                   ename(mq_notify(nq, &ev)));
            _exit(0);
        }
        waitpid(c2, NULL, 0);
    }
    mq_unlink("/notif");

    printf("unlink a: %s\n", ename(unlink(at(d1, "a"))));
    printf("mq_open a after unlink: %s\n", ename(mq_open("/a", O_RDONLY)));
    printf("mq_unlink b: %s\n", ename(mq_unlink("/b")));
    st("b after mq_unlink", at(d1, "b"));
    close(creat(at(d1, "u"), 0644));
    st("root with u", d1);

    p = fork();
    if (p == 0) {
        unprivileged();
        _exit(0);
    }
    waitpid(p, NULL, 0);
    ls("d1 after the child", d1);

    /* A new IPC namespace: a new mount shows its (empty) filesystem; the old mounts keep theirs. */
    if (unshare(CLONE_NEWIPC) < 0)
        printf("unshare ipc: %s\n", ename(-1));
    mnt("new ipc ns", "none", d4, "mqueue", 0, NULL);
    ls("new ns mount", d4);
    close(creat(at(d4, "n"), 0600));
    printf("mq_open n: %s\n", ename(mq_open("/n", O_RDONLY)));
    printf("mq_open u from the new ns: %s\n", ename(mq_open("/u", O_RDONLY)));
    ls("d1 (old ns)", d1);
    printf("stat n in the old ns's mount: %s\n", ename(stat(at(d1, "n"), &(struct stat){0})));
    mnt("old ns's mount root in the new ns", "none", d1, "mqueue", 0, NULL);
    ls("d1 now", d1);

    /* A chrooted caller: its paths resolve in its root ("/.." stays there). */
    if (mkdir(at(d5, "sub"), 0755) < 0)
        printf("mkdir sub: %s\n", ename(-1));
    p = fork();
    if (p == 0) {
        if (chroot(d5) < 0 || chdir("/") < 0) {
            printf("chroot: %s\n", ename(-1));
            _exit(0);
        }
        mnt("chrooted", "none", "/sub", "mqueue", 0, NULL);
        ls("chrooted /sub", "/sub");
        mnt("chrooted, through /..", "none", "/../../sub", "mqueue", 0, NULL);
        mnt("chrooted, outside", "none", d1, "mqueue", 0, NULL);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    ls("sub seen from outside", at(d5, "sub"));
    return 0;
}
