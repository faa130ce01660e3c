/* Ids as Linux translates them across user and pid namespaces (issues 9 and 10):
 * - msgctl IPC_STAT uids/gids through from_kuid_munged (65534 when unmapped), IPC_SET's through
 *   make_kuid (EINVAL when unmapped, after the owner check), before and after the child writes its
 *   uid_map/gid_map;
 * - msg_lspid/msg_lrpid through pid_vnr: 0 for a pid outside the caller's pid namespace, the pid
 *   namespace's own numbers inside it, the outer numbers outside;
 * - mq_notify SIGEV_SIGNAL's si_uid in the registering task's user namespace.
 * Every step waits for a state (a pipe byte, a child's exit), never for a time. */
#include "adv.h"
#include <signal.h>
#include <sys/stat.h>

static void wr(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) { printf("write %s: %s\n", path, ename(-1)); }
    if (fd >= 0) close(fd);
}

/* Map uid/gid ``first`` of the caller's (new) namespace to the ids it had outside. */
static void map_as(unsigned first, uid_t uid, gid_t gid) {
    char b[64];
    wr("/proc/self/setgroups", "deny");
    snprintf(b, sizeof b, "%u %u 1\n", first, uid);
    wr("/proc/self/uid_map", b);
    snprintf(b, sizeof b, "%u %u 1\n", first, gid);
    wr("/proc/self/gid_map", b);
}
static void map_self(uid_t uid, gid_t gid) { map_as(0, uid, gid); }

static void show(const char *who, int id) {
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) < 0) { printf("%s IPC_STAT: %s\n", who, ename(-1)); return; }
    printf("%s: uid=%u gid=%u cuid=%u cgid=%u mode=%o\n", who, ds.msg_perm.uid, ds.msg_perm.gid,
           ds.msg_perm.cuid, ds.msg_perm.cgid, ds.msg_perm.mode & 0777);
}

static int set(int id, uid_t uid, gid_t gid, int mode) {
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) < 0) return -1;
    ds.msg_perm.uid = uid;
    ds.msg_perm.gid = gid;
    ds.msg_perm.mode = mode;
    return msgctl(id, IPC_SET, &ds);
}

/* IPC_SET without reading the queue first (a caller without read permission); msg_qbytes 0. */
static int set_blind(int id, uid_t uid, gid_t gid, int mode) {
    struct msqid_ds ds;
    memset(&ds, 0, sizeof ds);
    ds.msg_perm.uid = uid;
    ds.msg_perm.gid = gid;
    ds.msg_perm.mode = mode;
    return msgctl(id, IPC_SET, &ds);
}

static void pids(const char *who, int id, pid_t snd, pid_t rcv) {
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) < 0) { printf("%s IPC_STAT: %s\n", who, ename(-1)); return; }
    printf("%s: lspid %s lrpid %s\n", who,
           snd < 0 ? "not checked" : ds.msg_lspid == snd ? "as expected" : ds.msg_lspid == 0 ? "0" : "OTHER",
           ds.msg_lrpid == rcv ? "as expected" : ds.msg_lrpid == 0 ? "0" : "OTHER");
}

static void user_namespace_ids(void) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int id = make_sysv();
    pid_t me = getpid();
    pid_t p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        show("unmapped", id);
        pids("unmapped", id, me, 0);
        printf("IPC_SET as stat says, unmapped: %s\n", ename(set(id, 65534, 65534, 0600)));
        map_self(uid, gid);
        show("mapped", id);
        printf("IPC_SET 0/0 0640: %s\n", ename(set(id, 0, 0, 0640)));
        printf("IPC_SET uid 1: %s\n", ename(set(id, 1, 0, 0640)));
        printf("IPC_SET gid 1: %s\n", ename(set(id, 0, 1, 0640)));
        printf("IPC_SET uid -1: %s\n", ename(set(id, (uid_t)-1, 0, 0640)));
        show("mapped after", id);
        _exit(0);
    }
    waitchild(p);
    show("outside", id);
    printf("outside owner is me: %s\n", ({ struct msqid_ds d; msgctl(id, IPC_STAT, &d);
           d.msg_perm.uid == uid && d.msg_perm.gid == gid ? "yes" : "no"; }));
    /* A non-owner in a child namespace: EPERM comes before make_kuid's EINVAL. */
    p = fork();
    if (p == 0) {
        drop_to_nobody();
        if (geteuid() == uid) _exit(0); /* unprivileged: nobody is the owner; covered above */
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        printf("non-owner IPC_SET unmapped uid: %s\n", ename(set_blind(id, 12345, 12345, 0600)));
        _exit(0);
    }
    waitchild(p);
    msgctl(id, IPC_RMID, NULL);
}

static void pid_namespace_ids(void) {
    int id = make_sysv();   /* lspid: this process */
    pid_t me = getpid();
    int ready[2];
    if (pipe(ready) < 0) { perror("pipe"); exit(1); }
    pid_t p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0) { printf("unshare pid: %s\n", ename(-1)); _exit(0); }
        pid_t g = fork();
        if (g == 0) {
            printf("grandchild is pid %d\n", getpid());
            pids("inner, outer sender", id, 0, 0);
            struct amsg m = {2, "inner"};
            msgsnd(id, &m, sizeof m.text, 0);
            pids("inner, own send", id, 1, 0);
            msgrcv(id, &m, sizeof m.text, 2, IPC_NOWAIT);
            pids("inner, own receive", id, 1, 1);
            _exit(0);
        }
        waitchild(g);
        /* The grandchild is g in this process's (outer) namespace. */
        pids("outer, inner sender", id, g, g);
        _exit(0);
    }
    waitchild(p);
    struct amsg m;
    msgrcv(id, &m, sizeof m.text, 1, IPC_NOWAIT);
    pids("outer, own receive", id, -1, me);
    close(ready[0]);
    close(ready[1]);
    msgctl(id, IPC_RMID, NULL);
}

static void notify_uid(int map) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    const char *name = "/adv-idmap";
    make_posix(name, 0600);
    mqd_t q = mq_open(name, O_RDWR);
    struct amsg m;
    mq_receive(q, (char *)&m, 32, NULL); /* empty: the next send notifies */
    int ready[2];
    if (pipe(ready) < 0) { perror("pipe"); exit(1); }
    pid_t me = getpid();
    pid_t p = fork();
    if (p == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigprocmask(SIG_BLOCK, &set, NULL);
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        if (map) map_self(uid, gid);
        struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
        printf("mq_notify (%s): %s\n", map ? "mapped" : "unmapped", ename(mq_notify(q, &ev)));
        if (write(ready[1], "r", 1) != 1) _exit(1);
        siginfo_t si;
        if (sigwaitinfo(&set, &si) < 0) { printf("sigwaitinfo: %s\n", ename(-1)); _exit(0); }
        printf("si_code %s si_uid %u si_pid %s\n", si.si_code == SI_MESGQ ? "SI_MESGQ" : "OTHER", si.si_uid,
               si.si_pid == me ? "the sender" : si.si_pid == 0 ? "0" : "OTHER");
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1) { printf("child failed\n"); }
    mq_send(q, "x", 1, 0);
    waitchild(p);
    close(ready[0]);
    close(ready[1]);
    mq_close(q);
    mq_unlink(name);
}

/* /proc/sysvipc/msg shows ids in the opener's user namespace (seq_user_ns); fstat of an mq
 * descriptor shows the inode's owner as the caller's namespace sees it. */
static void proc_row_ids(const char *who) {
    FILE *f = fopen("/proc/sysvipc/msg", "r");
    if (!f) { printf("%s /proc/sysvipc/msg: %s\n", who, ename(-1)); return; }
    char line[512];
    int rows = 0;
    if (!fgets(line, sizeof line, f)) line[0] = 0; /* the header */
    while (fgets(line, sizeof line, f)) {
        long v[14];
        if (sscanf(line, "%ld %ld %lo %ld %ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7], &v[8], &v[9], &v[10]) == 11)
            printf("%s row: uid=%ld gid=%ld cuid=%ld cgid=%ld\n", who, v[7], v[8], v[9], v[10]);
        rows++;
    }
    printf("%s rows: %d\n", who, rows);
    fclose(f);
}

static void fstat_ids(const char *who, mqd_t q) {
    struct stat st;
    if (fstat(q, &st) < 0) { printf("%s fstat: %s\n", who, ename(-1)); return; }
    printf("%s fstat: uid=%u gid=%u mode=%o\n", who, st.st_uid, st.st_gid, st.st_mode & 07777);
}

static void proc_and_fstat(void) {
    /* Root only: an unprivileged sentry cannot mount FUSE, so its programs see the host's /proc
     * files and mq descriptors that are not mqueue inodes (a limitation of that mode, not of ids). */
    if (geteuid() != 0) { printf("proc and fstat: root only\n"); return; }
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int id = make_sysv();
    const char *name = "/adv-idmap-stat";
    make_posix(name, 0640);
    mqd_t q = mq_open(name, O_RDONLY);
    proc_row_ids("outer");
    fstat_ids("outer", q);
    pid_t p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        proc_row_ids("unmapped");
        fstat_ids("unmapped", q);
        map_as(7, uid, gid);
        proc_row_ids("mapped");
        fstat_ids("mapped", q);
        _exit(0);
    }
    waitchild(p);
    mq_close(q);
    mq_unlink(name);
    msgctl(id, IPC_RMID, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    proc_and_fstat();
    user_namespace_ids();
    pid_namespace_ids();
    notify_uid(0);
    notify_uid(1);
    return 0;
}
