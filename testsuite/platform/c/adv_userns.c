/* Issue 9 item 1: capabilities held in a child user namespace grant nothing over the IPC objects of
 * an ancestor's IPC namespace (ns_capable against the namespace's owner). */
#include "adv.h"
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int id = make_sysv();
    const char *name = "/adv-userns";
    make_posix(name, 0600);
    msgctl(id, IPC_STAT, &(struct msqid_ds){0});
    int was_root = geteuid() == 0;
    pid_t p = fork();
    if (p == 0) {
        drop_to_nobody();
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", ename(-1)); _exit(0); }
        struct amsg m;
        struct msqid_ds ds;
        printf("msgrcv: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
        printf("IPC_STAT: %s\n", ename(msgctl(id, IPC_STAT, &ds)));
        /* Unprivileged, the caller owns the queue: IPC_SET passes the owner check and then fails in
         * make_kuid (EINVAL), since the owner's uid is unmapped in the new namespace. As root, the
         * dropped child is not the owner: EPERM. */
        ds.msg_perm.mode = 0666;
        printf("IPC_SET (%s): %s\n", was_root ? "not owner" : "owner", ename(msgctl(id, IPC_SET, &ds)));
        printf("IPC_RMID: %s\n", ename(msgctl(id, IPC_RMID, NULL)));
        printf("mq_open: %s\n", ename(mq_open(name, O_RDONLY)));
        printf("mq_unlink: %s\n", ename(mq_unlink(name)));
        _exit(0);
    }
    waitchild(p);
    struct amsg m;
    printf("owner msgrcv: %s\n", ename(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
    printf("owner mq_unlink: %s\n", ename(mq_unlink(name)));
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
