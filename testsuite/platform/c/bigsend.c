/* One big SysV message sent and received through the sentry; then the program waits on stdin, so
 * that the test can read the sentry's peak memory while the program is still served
 * (test_memory.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t size = strtoul(argv[1], NULL, 0);
    long *m = malloc(sizeof(long) + size), *r = malloc(sizeof(long) + size);
    if (!m || !r) return 2;
    m[0] = 1;
    for (size_t i = 0; i < size; i++) ((char *)(m + 1))[i] = (char)(i * 7);
    int id = msgget(IPC_PRIVATE, 0600);
    if (id < 0 || msgsnd(id, m, size, 0) < 0) { perror("msgsnd"); return 1; }
    ssize_t n = msgrcv(id, r, size, 0, 0);
    if (n != (ssize_t)size || memcmp(m + 1, r + 1, size) != 0) { printf("mismatch %zd\n", n); return 1; }
    msgctl(id, IPC_RMID, NULL);
    printf("done %zd\n", n);
    fflush(stdout);
    char c;
    (void)!read(0, &c, 1);
    return 0;
}
