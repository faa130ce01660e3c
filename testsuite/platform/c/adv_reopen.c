/* Issue 9 item 5: reopening a queue fd through /proc/self/fd checks the queue's mode and owner, and
 * closing the reopened copy leaves the original working. Root only (the sentry needs FUSE). */
#include "adv.h"
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) { printf("root only\n"); return 0; }
    const char *name = "/adv-reopen";
    make_posix(name, 0644);
    pid_t p = fork();
    if (p == 0) {
        drop_to_nobody();
        mqd_t q = mq_open(name, O_RDONLY);
        printf("open O_RDONLY: %s\n", ename(q));
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", (int)q);
        printf("reopen O_RDWR: %s\n", ename(open(path, O_RDWR)));
        printf("reopen O_WRONLY: %s\n", ename(open(path, O_WRONLY)));
        int r = open(path, O_RDONLY);
        printf("reopen O_RDONLY: %s\n", ename(r));
        struct mq_attr a;
        a.mq_curmsgs = -1;
        const char *e = ename(mq_getattr(r, &a));
        printf("getattr on the copy: %s curmsgs=%ld\n", e, a.mq_curmsgs);
        printf("send on the copy: %s\n", ename(mq_send(r, "x", 1, 0)));
        close(r);
        printf("getattr after closing the copy: %s\n", ename(mq_getattr(q, &a)));
        char buf[64];
        printf("receive: %s\n", ename(mq_receive(q, buf, sizeof buf, NULL)));
        _exit(0);
    }
    waitchild(p);
    mqd_t q = mq_open(name, O_RDWR);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", (int)q);
    int w = open(path, O_WRONLY | O_NONBLOCK);
    printf("owner reopen O_WRONLY: %s\n", ename(w));
    printf("owner send on the copy: %s\n", ename(mq_send(w, "again", 5, 0)));
    printf("owner receive on the copy: %s\n", ename(mq_receive(w, (char[64]){0}, 64, NULL)));
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("curmsgs=%ld\n", a.mq_curmsgs);
    mq_unlink(name);
    return 0;
}
