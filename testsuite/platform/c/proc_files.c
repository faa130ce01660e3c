/* The IPC files of /proc as a program sees them: /proc/sys/kernel/msg{max,mnb,mni,_next_id}, the files
 * of /proc/sys/fs/mqueue and /proc/sysvipc/msg show and change the program's own IPC namespace, with Linux's formats,
 * permission checks and write validation (proc_dointvec_minmax). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

static void show(const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) { printf("read %s: %s\n", path, strerrorname_np(errno)); return; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    ssize_t again = read(fd, buf + (n > 0 ? n : 0), 8); /* EOF after the first read */
    close(fd);
    buf[strcspn(buf, "\n")] = 0;
    printf("%s = %s (%zd, then %zd)\n", path, buf, n, again);
}

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) { printf("open %s for write: %s\n", path, strerrorname_np(errno)); return; }
    ssize_t n = write(fd, text, strlen(text));
    if (n < 0) printf("write %s <- '%s': %s\n", path, text, strerrorname_np(errno));
    else printf("write %s <- '%s': %zd\n", path, text, n);
    close(fd);
}

/* /proc/sysvipc/msg without the time columns; pids shown relative to us. */
static void sysvipc(void) {
    FILE *f = fopen("/proc/sysvipc/msg", "r");
    if (!f) { printf("sysvipc: %s\n", strerrorname_np(errno)); return; }
    char line[512];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) { printf("header: %s", line); first = 0; continue; }
        long key, id, perms, cbytes, qnum, lspid, lrpid, uid, gid, cuid, cgid;
        if (sscanf(line, "%ld %ld %lo %ld %ld %ld %ld %ld %ld %ld %ld", &key, &id, &perms, &cbytes, &qnum, &lspid,
                   &lrpid, &uid, &gid, &cuid, &cgid) == 11)
            printf("queue key=%ld id=%ld perms=%lo cbytes=%ld qnum=%ld lspid=%s lrpid=%s uid=%ld gid=%ld\n", key, id,
                   perms, cbytes, qnum, lspid == getpid() ? "me" : lspid ? "other" : "0",
                   lrpid == getpid() ? "me" : lrpid ? "other" : "0", uid, gid);
    }
    fclose(f);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *files[] = {"/proc/sys/kernel/msgmax", "/proc/sys/kernel/msgmnb", "/proc/sys/kernel/msgmni",
                           "/proc/sys/kernel/msg_next_id", "/proc/sys/fs/mqueue/msg_max",
                           "/proc/sys/fs/mqueue/msgsize_max", "/proc/sys/fs/mqueue/msg_default",
                           "/proc/sys/fs/mqueue/msgsize_default", "/proc/sys/fs/mqueue/queues_max",
                           "/proc/sysvipc/msg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        struct stat st;
        if (stat(files[i], &st) < 0) printf("stat %s: %s\n", files[i], strerrorname_np(errno));
        else printf("stat %s: mode=%o uid=%d gid=%d size=%ld\n", files[i], st.st_mode, st.st_uid, st.st_gid,
                    (long)st.st_size);
        if (i < 9) show(files[i]);
        printf("access %s: R=%d W=%d X=%d\n", files[i], access(files[i], R_OK), access(files[i], W_OK),
               access(files[i], X_OK));
    }

    /* msg_next_id: the next msgget takes it, and the file reads -1 again. */
    put("/proc/sys/kernel/msg_next_id", "777");
    show("/proc/sys/kernel/msg_next_id");
    int id = msgget(1234, IPC_CREAT | 0640);
    printf("msgget after msg_next_id=777: %d\n", id);
    show("/proc/sys/kernel/msg_next_id");
    struct { long t; char x[8]; } m = {1, "hello"};
    msgsnd(id, &m, 5, 0);
    sysvipc();

    /* msgmni: the limit on the number of queues. */
    put("/proc/sys/kernel/msgmni", "1");
    say("msgget with msgmni=1", msgget(IPC_PRIVATE, 0600));
    put("/proc/sys/kernel/msgmni", "32000");

    /* msgmax and msgmnb: the limits msgsnd applies. */
    put("/proc/sys/kernel/msgmax", "4");
    say("msgsnd 5 bytes with msgmax=4", msgsnd(id, &m, 5, IPC_NOWAIT));
    put("/proc/sys/kernel/msgmax", "8192");

    /* fs.mqueue: msg_max bounds mq_maxmsg; the defaults shape a queue opened without attributes. */
    struct mq_attr at = {.mq_maxmsg = 40, .mq_msgsize = 16};
    mq_unlink("/plat-proc");
    say("mq_open maxmsg=40 with msg_max=10", mq_open("/plat-proc", O_CREAT | O_RDWR, 0600, &at) < 0 ? -1 : 0);
    put("/proc/sys/fs/mqueue/msg_max", "40");
    mqd_t q = mq_open("/plat-proc", O_CREAT | O_RDWR, 0600, &at);
    printf("mq_open maxmsg=40 with msg_max=40: %d\n", q >= 0);
    mq_close(q);
    mq_unlink("/plat-proc");
    put("/proc/sys/fs/mqueue/msg_default", "7");
    put("/proc/sys/fs/mqueue/msgsize_default", "100");
    q = mq_open("/plat-proc", O_CREAT | O_RDWR, 0600, NULL);
    mq_getattr(q, &at);
    printf("default queue: maxmsg=%ld msgsize=%ld\n", at.mq_maxmsg, at.mq_msgsize);
    mq_close(q);
    mq_unlink("/plat-proc");
    put("/proc/sys/fs/mqueue/queues_max", "0");
    say("mq_open with queues_max=0 (root)", mq_open("/plat-proc", O_CREAT | O_RDWR, 0600, NULL) < 0 ? -1 : 0);
    mq_unlink("/plat-proc");

    /* Validation. */
    put("/proc/sys/kernel/msgmnb", "abc");
    put("/proc/sys/kernel/msgmnb", "-1");
    put("/proc/sys/kernel/msgmnb", "5 6");
    show("/proc/sys/kernel/msgmnb");
    put("/proc/sys/kernel/msgmnb", "  0x40 \n");
    show("/proc/sys/kernel/msgmnb");
    put("/proc/sys/kernel/msgmnb", "12x");
    put("/proc/sys/kernel/msgmnb", "2147483648");
    put("/proc/sys/kernel/msgmnb", "");
    put("/proc/sys/kernel/msgmni", "32769");
    put("/proc/sys/kernel/msg_next_id", "-1");
    put("/proc/sys/fs/mqueue/msg_max", "0");
    put("/proc/sys/fs/mqueue/msgsize_max", "127");
    put("/proc/sys/fs/mqueue/queues_max", "-5");
    show("/proc/sys/fs/mqueue/queues_max");
    put("/proc/sysvipc/msg", "x");

    /* A child sees the same namespace; an unprivileged one may read but not write. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(1000) < 0 || setuid(1000) < 0) _exit(1);
        show("/proc/sys/kernel/msgmnb");
        put("/proc/sys/kernel/msgmnb", "100");
        put("/proc/sys/kernel/msg_next_id", "5");
        put("/proc/sysvipc/msg", "x");
        printf("access as uid 1000: msgmnb W=%d sysvipc W=%d\n", access("/proc/sys/kernel/msgmnb", W_OK),
               access("/proc/sysvipc/msg", W_OK));
        sysvipc();
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    msgctl(id, IPC_RMID, NULL);
    sysvipc();
    return 0;
}
