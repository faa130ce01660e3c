/* Issue 10 item 3: a program whose mount namespace already has an mqueue mount (argv[1], as /dev/mqueue
 * usually is) sees its IPC namespace's queues there: mq_open's queues as files, files as queues. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ename(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    char path[256];
    struct mq_attr attr = {.mq_maxmsg = 3, .mq_msgsize = 16};
    mqd_t q = mq_open("/cover-a", O_CREAT | O_RDWR, 0600, &attr);
    printf("mq_open: %s\n", ename(q));
    mq_send(q, "abc", 3, 0);
    snprintf(path, sizeof path, "%s/cover-a", argv[1]);
    struct stat s;
    if (stat(path, &s) == 0)
        printf("stat: mode=%o size=%ld\n", s.st_mode, (long)s.st_size);
    else
        printf("stat: %s\n", ename(-1));
    char buf[128] = {0};
    int fd = open(path, O_RDONLY);
    printf("read: %zd %s", read(fd, buf, sizeof buf - 1), buf);
    close(fd);
    snprintf(path, sizeof path, "%s/cover-b", argv[1]);
    fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0640);
    printf("create cover-b: %s\n", ename(fd));
    struct mq_attr got;
    mqd_t b = mq_open("/cover-b", O_RDONLY);
    printf("mq_open cover-b: %s\n", ename(b));
    if (b >= 0 && mq_getattr(b, &got) == 0)
        printf("cover-b: maxmsg=%ld msgsize=%ld\n", got.mq_maxmsg, got.mq_msgsize);
    DIR *d = opendir(argv[1]);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, "cover-", 6) == 0;
    printf("listed: %d\n", n);
    if (d)
        closedir(d);
    printf("unlink cover-b, mq_unlink cover-a: %s\n", ename(unlink(path) | mq_unlink("/cover-a")));
    return 0;
}
