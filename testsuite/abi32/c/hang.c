/* hang: a msgrcv that Linux would sleep in forever (an empty queue, no other process, no timeout).
 * Under `mqsentry emulate` the call is refused and the emulation stops (exit status 124). */
#include <stdio.h>
#include <sys/msg.h>

int main(void) {
    struct { long mtype; char text[8]; } m;
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("msgget ok %d\n", id >= 0);
    fflush(stdout);
    msgrcv(id, &m, sizeof m.text, 0, 0);
    puts("never printed");
    return 0;
}
