/* The new mount API for mqueue: fsopen("mqueue") (natively an fs context; under the sentry ENOSYS, what
 * a kernel without fsopen says, so that mount tools fall back to mount(2)); other types are the host's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    const char *types[] = {"mqueue", "tmpfs", "nosuchfs"};
    for (int i = 0; i < 3; i++) {
        long fd = syscall(SYS_fsopen, types[i], 0);
        printf("fsopen %s: %s\n", types[i], fd >= 0 ? "fd" : strerrorname_np(errno));
        if (fd >= 0)
            close((int)fd);
    }
    return 0;
}
