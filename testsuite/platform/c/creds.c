/* Credentials come from the host: a root process creates queues with mode 0600, a child drops to
 * uid/gid 65534 with setresgid/setresuid (the platform observes those calls and re-reads
 * /proc/<tid>/status) and is refused; a queue with mode 0666 lets it in; IPC_SET by a non-owner is
 * EPERM; after a SysV key is made group-writable by chown the child's group matters. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = ok\n", what);
    fflush(stdout);
}
struct m { long mtype; char t[8]; };

int main(void) {
    umask(0);
    int priv = msgget(0x7001, IPC_CREAT | 0600);
    int open_ = msgget(0x7002, IPC_CREAT | 0666);
    mq_unlink("/plat-creds-priv");
    mq_unlink("/plat-creds-open");
    struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 8};
    mqd_t qp = mq_open("/plat-creds-priv", O_CREAT | O_RDWR, 0600, &at);
    mqd_t qo = mq_open("/plat-creds-open", O_CREAT | O_RDWR, 0666, &at);
    printf("created %d %d %d %d\n", priv >= 0, open_ >= 0, qp >= 0, qo >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        setgroups(0, NULL);
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) { perror("setres"); _exit(1); }
        say("msgget priv", msgget(0x7001, 0));
        say("msgget priv mode 0400", msgget(0x7001, 0400));
        say("msgget open", msgget(0x7002, 0));
        struct m s = {1, "hi"};
        say("msgsnd open", msgsnd(open_, &s, 3, 0));
        say("msgsnd priv", msgsnd(priv, &s, 3, IPC_NOWAIT));
        struct msqid_ds ds;
        say("IPC_STAT priv", msgctl(priv, IPC_STAT, &ds));
        say("IPC_STAT open", msgctl(open_, IPC_STAT, &ds));
        say("IPC_SET open (not owner)", msgctl(open_, IPC_SET, &ds));
        say("IPC_RMID open (not owner)", msgctl(open_, IPC_RMID, NULL));
        say("mq_open priv", mq_open("/plat-creds-priv", O_RDWR));
        say("mq_open open", mq_open("/plat-creds-open", O_RDWR));
        say("mq_unlink open (root's, sticky dir)", mq_unlink("/plat-creds-open"));
        mqd_t mine = mq_open("/plat-creds-mine", O_CREAT | O_RDWR, 0600, &at);
        say("mq_open create as nobody", mine);
        say("mq_unlink mine", mq_unlink("/plat-creds-mine"));
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    say("rmid priv", msgctl(priv, IPC_RMID, NULL));
    say("rmid open", msgctl(open_, IPC_RMID, NULL));
    mq_unlink("/plat-creds-priv");
    mq_unlink("/plat-creds-open");
    return 0;
}
