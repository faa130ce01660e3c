/* Issue 9 item 2: files the program makes itself (named like the sentry's, on a detached tmpfs of
 * its own mount namespace) are not mqueue descriptors: EBADF. */
#include "adv.h"
#include <sys/mount.h>
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *name = "/adv-forged";
    make_posix(name, 0600);
    mqd_t real = mq_open(name, O_RDWR);
    pid_t p = fork();
    if (p == 0) {
        drop_to_nobody();
        int fds[64], n = 0;
        int ns = unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0;
        char dir[] = "/tmp/adv-forged-XXXXXX";
        if (ns && mkdtemp(dir) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("none", dir, "tmpfs", 0, NULL) == 0) {
            for (int i = 0; i < 24; i++) {
                char path[128];
                snprintf(path, sizeof path, "%s/d%d", dir, i);
                int fd = open(path, O_CREAT | O_RDWR, 0666);
                if (fd >= 0) fds[n++] = fd;
            }
            umount2(dir, MNT_DETACH);
        }
        int pp[2];
        if (pipe(pp) == 0) { fds[n++] = pp[0]; fds[n++] = pp[1]; }
        int bad = 0;
        char buf[64];
        struct timespec ts = {0, 0};
        for (int i = 0; i < n; i++) {
            if (mq_timedreceive(fds[i], buf, sizeof buf, NULL, &ts) >= 0 || errno != EBADF) bad++;
            if (mq_timedsend(fds[i], "x", 1, 0, &ts) >= 0 || errno != EBADF) bad++;
            struct mq_attr a;
            if (mq_getattr(fds[i], &a) >= 0 || errno != EBADF) bad++;
        }
        printf("forged fds refused: %s\n", bad ? "NO" : "yes");
        _exit(0);
    }
    waitchild(p);
    char buf[64];
    printf("owner receive: %s\n", ename(mq_receive(real, buf, sizeof buf, NULL)));
    mq_unlink(name);
    return 0;
}
