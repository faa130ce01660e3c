/* mqprobe: exercises SysV and POSIX message queues through glibc and raw syscalls, printing only
 * what Linux defines (no ids, times or pids), so that one word size prints the same on every
 * architecture: natively, under `mqsentry run` and under `mqsentry emulate`. Where an
 * architecture lacks ipc(2) (arm), the old-layout and msgrcv checks go through the direct calls,
 * which take the same arguments there (sys_old_msgctl), and print the same lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <asm/posix_types.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EINTR: return "EINTR";
    case E2BIG: return "E2BIG"; case EBADF: return "EBADF"; case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST"; case EINVAL: return "EINVAL"; case ENOSYS: return "ENOSYS";
    case ENOMSG: return "ENOMSG"; case EIDRM: return "EIDRM"; case EMSGSIZE: return "EMSGSIZE";
    case ETIMEDOUT: return "ETIMEDOUT"; case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "E?";
    }
}
#define SHOW(label, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%-28s %ld %s\n", label, r_ < 0 ? -1L : r_, r_ < 0 ? ename(errno) : "OK"); } while (0)

struct kludge { void *msgp; long msgtyp; };
/* The kernel's old (pre-IPC_64) ipc_perm and msqid_ds, in the kernel's own types. */
struct old_perm { int key; __kernel_uid_t uid; __kernel_gid_t gid; __kernel_uid_t cuid;
                  __kernel_gid_t cgid; __kernel_mode_t mode; unsigned short seq; };
struct old_msqid { struct old_perm perm; void *first, *last; long stime, rtime, ctime;
                   unsigned long lcbytes, lqbytes; unsigned short cbytes, qnum, qbytes;
                   __kernel_ipc_pid_t lspid, lrpid; };
struct kts64 { int64_t sec; int64_t nsec; };

#ifndef SYS_mq_timedsend_time64
#define SYS_mq_timedsend_time64 SYS_mq_timedsend     /* 64-bit: the plain call takes 64-bit time */
#define SYS_mq_timedreceive_time64 SYS_mq_timedreceive
#endif

static struct { long mtype; char text[64]; } m;

static long raw_old_stat(int id, struct old_msqid *o) {
#ifdef SYS_ipc
    return syscall(SYS_ipc, 14 /* MSGCTL */, id, IPC_STAT, 0, o, 0);
#elif defined(__arm__) || defined(__mips__)
    return syscall(SYS_msgctl, id, IPC_STAT, o);   /* sys_old_msgctl: no IPC_64 -> old layout */
#else
    (void)id; (void)o; errno = ENOSYS; return -2;
#endif
}

static long raw_rcv_v0(int id, void *buf, size_t sz, long typ, int flg) {
#ifdef SYS_ipc
    struct kludge k = { buf, typ };
    return syscall(SYS_ipc, 12 /* MSGRCV, version 0 */, id, sz, flg, &k, 0);
#else
    return syscall(SYS_msgrcv, id, buf, sz, typ, flg);
#endif
}

static long raw_rcv_v1(int id, void *buf, size_t sz, long typ, int flg) {
#ifdef SYS_ipc
    return syscall(SYS_ipc, 12 | (1 << 16), id, sz, flg, buf, typ);
#else
    return syscall(SYS_msgrcv, id, buf, sz, typ, flg);
#endif
}

static long raw_snd(int id, const void *buf, size_t sz, int flg) {
#ifdef SYS_ipc
    return syscall(SYS_ipc, 11 /* MSGSND */, id, sz, flg, buf, 0);
#else
    return syscall(SYS_msgsnd, id, buf, sz, flg);
#endif
}

static void sysv(void) {
    printf("== sysv (long is %zu bytes)\n", sizeof(long));
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("%-28s %s\n", "msgget", id >= 0 ? "OK" : ename(errno));
    SHOW("msgget ENOENT", msgget(0x5eed, 0));
    SHOW("msgget create key", msgget(0x5eed, IPC_CREAT | 0640) >= 0);
    SHOW("msgget excl", msgget(0x5eed, IPC_CREAT | IPC_EXCL | 0640));
    for (long t = 1; t <= 3; t++) {
        m.mtype = t; snprintf(m.text, sizeof m.text, "type %ld", t);
        SHOW("msgsnd", msgsnd(id, &m, strlen(m.text) + 1, IPC_NOWAIT));
    }
    m.mtype = 0; SHOW("msgsnd mtype 0", msgsnd(id, &m, 4, IPC_NOWAIT));
    m.mtype = 5; SHOW("msgsnd negative size", msgsnd(id, &m, (size_t)-1, IPC_NOWAIT));
    m.mtype = 7; SHOW("raw ipc msgsnd", raw_snd(id, &m, 5, IPC_NOWAIT));
    struct msqid_ds ds; SHOW("msgctl IPC_STAT", msgctl(id, IPC_STAT, &ds));
    printf("  qnum %lu cbytes %lu qbytes %lu mode %o uid-ok %d lspid-ok %d stime-set %d\n",
           (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qbytes,
           ds.msg_perm.mode & 0777, ds.msg_perm.uid == getuid(), ds.msg_lspid == getpid(), ds.msg_stime != 0);
    struct old_msqid o; memset(&o, 0xa5, sizeof o);
    SHOW("old layout IPC_STAT", raw_old_stat(id, &o));
    if (o.perm.key != (int)0xa5a5a5a5) printf("  old: qnum %u cbytes %u qbytes %u mode %o uid-ok %d lspid-ok %d first %p\n",
           o.qnum, o.cbytes, o.qbytes, o.perm.mode & 0777, o.perm.uid == (__kernel_uid_t)getuid(),
           o.lspid == (__kernel_ipc_pid_t)getpid(), o.first);
    SHOW("msgrcv E2BIG", msgrcv(id, &m, 2, 0, IPC_NOWAIT));
    SHOW("msgrcv NOERROR", msgrcv(id, &m, 2, 0, IPC_NOWAIT | MSG_NOERROR));
    printf("  got type %ld\n", m.mtype);
    SHOW("msgrcv type 3", msgrcv(id, &m, sizeof m.text, 3, IPC_NOWAIT));
    printf("  got type %ld '%s'\n", m.mtype, m.text);
    SHOW("ipc v0 msgrcv -7", raw_rcv_v0(id, &m, sizeof m.text, -7, IPC_NOWAIT));
    printf("  got type %ld\n", m.mtype);
    SHOW("ipc v1 msgrcv except 7", raw_rcv_v1(id, &m, sizeof m.text, 7, IPC_NOWAIT | MSG_EXCEPT));
    printf("  got type %ld\n", m.mtype);
    SHOW("ipc v1 msgrcv empty", raw_rcv_v1(id, &m, sizeof m.text, 0, IPC_NOWAIT));
    SHOW("msgrcv ENOMSG", msgrcv(id, &m, sizeof m.text, 9, IPC_NOWAIT));
    ds.msg_perm.mode = 0604; ds.msg_qbytes = 4000;
    SHOW("msgctl IPC_SET", msgctl(id, IPC_SET, &ds));
    SHOW("msgctl IPC_STAT", msgctl(id, IPC_STAT, &ds));
    printf("  qnum %lu qbytes %lu mode %o\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.msg_qbytes,
           ds.msg_perm.mode & 0777);
    struct msginfo mi; SHOW("msgctl IPC_INFO >= 0", msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) >= 0);
    printf("  msgmax %d msgmnb %d msgmni %d msgseg %d\n", mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgseg);
    SHOW("msgctl bad cmd", msgctl(id, 77, &ds));
#ifdef SYS_ipc
    SHOW("ipc unknown call", syscall(SYS_ipc, 99, 0, 0, 0, 0, 0));
#else
    printf("%-28s %ld %s\n", "ipc unknown call", -1L, "ENOSYS");
#endif
    SHOW("msgctl IPC_RMID", msgctl(id, IPC_RMID, NULL));
    SHOW("msgsnd after RMID", msgsnd(id, &m, 4, IPC_NOWAIT));
    SHOW("msgctl RMID key", msgctl(msgget(0x5eed, 0), IPC_RMID, NULL));
}

static void posix(void) {
    printf("== posix\n");
    struct mq_attr a = { .mq_maxmsg = 4, .mq_msgsize = 32 };
    mq_unlink("/mqprobe");
    mqd_t q = mq_open("/mqprobe", O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    printf("%-28s %s\n", "mq_open", q >= 0 ? "OK" : ename(errno));
    SHOW("mq_open EEXIST", mq_open("/mqprobe", O_CREAT | O_EXCL | O_RDWR, 0600, &a));
    SHOW("mq_open ENOENT", mq_open("/mqprobe-none", O_RDONLY));
    struct mq_attr bad = { .mq_maxmsg = -1, .mq_msgsize = 32 };
    SHOW("mq_open bad attr", mq_open("/mqprobe2", O_CREAT | O_RDWR, 0600, &bad));
    SHOW("mq_send p1", mq_send(q, "one", 4, 1));
    SHOW("mq_send p9", mq_send(q, "nine", 5, 9));
    SHOW("mq_send p5", mq_send(q, "five", 5, 5));
    SHOW("mq_send EMSGSIZE", mq_send(q, "x", 64, 1));
    SHOW("mq_send bad prio", mq_send(q, "x", 1, 40000));
    struct timespec past = { 1, 0 }, badns = { 1, 1000000000 };
    SHOW("mq_timedsend bad nsec", mq_timedsend(q, "x", 1, 1, &badns));
    struct mq_attr got;
    SHOW("mq_getattr", mq_getattr(q, &got));
    printf("  flags %lx maxmsg %ld msgsize %ld curmsgs %ld\n", (long)(got.mq_flags & O_NONBLOCK ? 1 : 0),
           got.mq_maxmsg, got.mq_msgsize, got.mq_curmsgs);
    char buf[64]; unsigned prio = 0;
    SHOW("mq_receive small buf", mq_receive(q, buf, 8, &prio));
    SHOW("mq_receive", mq_receive(q, buf, sizeof buf, &prio)); printf("  '%s' prio %u\n", buf, prio);
    SHOW("mq_timedreceive", mq_timedreceive(q, buf, sizeof buf, &prio, &past)); printf("  '%s' prio %u\n", buf, prio);
    struct kts64 t64 = { 1, 0 }, t64bad = { 1, -1 };
    SHOW("time64 receive", syscall(SYS_mq_timedreceive_time64, q, buf, sizeof buf, &prio, &t64));
    printf("  '%s' prio %u\n", buf, prio);
    SHOW("time64 receive ETIMEDOUT", syscall(SYS_mq_timedreceive_time64, q, buf, sizeof buf, &prio, &t64));
    SHOW("time64 receive bad nsec", syscall(SYS_mq_timedreceive_time64, q, buf, sizeof buf, &prio, &t64bad));
    SHOW("time64 send", syscall(SYS_mq_timedsend_time64, q, "t64", 4, 3, &t64));
    SHOW("mq_timedreceive ETIMEDOUT", (mq_receive(q, buf, sizeof buf, &prio),
                                       mq_timedreceive(q, buf, sizeof buf, &prio, &past)));
    struct mq_attr nb = { .mq_flags = O_NONBLOCK }, old;
    SHOW("mq_setattr nonblock", mq_setattr(q, &nb, &old));
    printf("  old nonblock %d\n", (old.mq_flags & O_NONBLOCK) != 0);
    SHOW("mq_receive EAGAIN", mq_receive(q, buf, sizeof buf, &prio));
    SHOW("mq_getattr", mq_getattr(q, &got));
    printf("  nonblock %d\n", (got.mq_flags & O_NONBLOCK) != 0);
    struct mq_attr junk = { .mq_flags = 0x12345 };
    SHOW("mq_setattr bad flags", syscall(SYS_mq_getsetattr, q, &junk, NULL));
    struct sigevent ev = { .sigev_notify = SIGEV_NONE };
    SHOW("mq_notify none", mq_notify(q, &ev));
    SHOW("mq_notify EBUSY", mq_notify(q, &ev) == 0 ? 0 : -1);
    SHOW("mq_notify remove", mq_notify(q, NULL));
    ev.sigev_notify = 77; SHOW("mq_notify bad notify", mq_notify(q, &ev));
    SHOW("mq_send bad fd", mq_send((mqd_t)999, "x", 1, 1));
    SHOW("mq_close", mq_close(q));
    SHOW("mq_unlink", mq_unlink("/mqprobe"));
    SHOW("mq_unlink ENOENT", mq_unlink("/mqprobe"));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sysv();
    posix();
    printf("== done\n");
    return 0;
}
