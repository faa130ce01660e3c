/* Two mq_open calls: the program prints the descriptors it got, which `mqsentry run --trace` must
 * show as the calls' results (the target's fds, not the sentry's internal ones). */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>

int main(void) {
    mq_unlink("/plat-trace");
    mqd_t a = mq_open("/plat-trace", O_CREAT | O_RDWR, 0600, NULL);
    mqd_t b = mq_open("/plat-trace", O_RDONLY);
    printf("fds %d %d\n", (int)a, (int)b);
    mq_unlink("/plat-trace");
    return 0;
}
