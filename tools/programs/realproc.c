/* realproc: the seeded real-process driver of `mqsentry stress --real` and `mqsentry fuzz --real`.
 *
 * Linux counterpart: LTP's msgstress/mq stress programs, with exact accounting. gVisor counterpart:
 * none (gVisor owns its tasks; a supervisor serving real processes must survive thread exit, exec,
 * TID reuse and kills of parked callers).
 *
 * usage: realproc SEED OPS WORKERS BOUND      (the conductor; prints STAT/VIOLATION/HANG lines)
 *        realproc --worker LEDGERFD WIDX       (an exec'd worker image: internal)
 *
 * The conductor (pid 1 of a private PID namespace when it can make one, so that writes to
 * ns_last_pid can hand a dead thread's TID to a new thread) creates SysV and POSIX queues (root-owned,
 * 0600, small, so callers park often) and WORKERS worker processes. Every worker thread runs random
 * operations drawn from its own seeded generator: SysV send/receive (any type, exact, <= n,
 * MSG_EXCEPT; blocking and IPC_NOWAIT), IPC_STAT, POSIX send/receive (blocking, O_NONBLOCK, timed,
 * through an fd whose O_NONBLOCK other threads toggle with mq_setattr), mq_notify, thread creation
 * (sometimes forcing the TID of an exited thread), thread exit (the leader's too), fork, exec of the
 * driver itself (from whichever thread runs the operation), and, as root, a per-thread setresuid to
 * 65534 during which every access to the 0600 queues must fail with EACCES. The conductor meanwhile
 * sends signals to parked threads (one handler with SA_RESTART, one without), storms processes with
 * SIGSTOP/SIGCONT, SIGKILLs workers (preferring ones parked in a call) and replaces them, removes SysV
 * queues with IPC_RMID, unlinks POSIX queues, and changes msg_qbytes with IPC_SET.
 *
 * All state lives in a shared ledger (a memfd that survives exec). Every message carries a unique id;
 * at the end each successfully sent message must have been received exactly once, or be still
 * queued, or have been in a queue that was removed; a message may be missing only up to the number
 * of threads that died (kill or exec) inside a receive (Linux loses a message dequeued by a receiver
 * killed before it returns to user space). Each call's errno must be in the set Linux allows for it
 * in the situation (never 512..516). A run that makes no progress for BOUND seconds, or does not
 * finish within BOUND seconds after the stop, is a hang: the conductor prints each thread's state
 * and exits 3. Exit status: 0 clean, 1 violations, 2 setup failure, 3 hang.
 *
 * Debugging aids (environment): REALPROC_DEBUG=1 lists the missing message ids; REALPROC_NOKILL=1
 * turns kills and execs off (no loss is then allowed: the allowance is 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSYSV 3
#define NMQ 3
#define NQ (NSYSV + NMQ)
#define MAXGEN 1024
#define MAXMSG (1 << 20)
#define MAXSLOT 16384
#define MAXW 32
#define MAXTHREADS 4
#define MAXINCARNATION 40
#define MAXTID (1 << 22)
#define MQ_MAXMSG 4
#define NVIOL 64
#define NOBODY 65534

struct body { uint64_t id; int64_t mtype; uint32_t slot, gen; uint64_t check; };
struct smsg { long mtype; struct body b; };
#define SYSV_QBYTES ((int)(6 * sizeof(struct body)))
#define MQ_MSGSIZE ((long)sizeof(struct body))

enum { ST_NONE, ST_ATTEMPTED, ST_OK, ST_FAILED };
struct msgrec { _Atomic uint8_t state, recv, drained; uint8_t slot; uint16_t gen; };

enum { OP_IDLE, OP_SYSV_SEND, OP_SYSV_RECV, OP_MQ_SEND, OP_MQ_RECV, OP_OTHER, OP_EXITED };
static const char *OPNAME[] = {"idle", "msgsnd", "msgrcv", "mq_timedsend", "mq_timedreceive", "other", "exited"};

struct tslot {
    _Atomic int used;
    int pid, tid, widx, incarnation;
    _Atomic int alive, in_recv, op;
};

enum {
    C_OPS, C_SENT, C_RECV, C_EINTR, C_ETIMEDOUT, C_EAGAIN, C_ENOMSG, C_EIDRM, C_TCREATE, C_TEXIT, C_LEADER_EXIT,
    C_EXEC, C_EXEC_NONLEADER, C_EXEC_DROPPED, C_FORK, C_TIDFORCE, C_TIDREUSE, C_CRED, C_EACCES, C_KILL,
    C_KILL_PARKED, C_STOPSTORM, C_SIGNALS, C_RMID, C_UNLINK, C_IPCSET, C_IPCSTAT, C_NOTIFY_REG, C_NOTIFY_GOT,
    C_SETATTR, C_REOPEN, NCOUNT
};
static const char *CNAME[] = {
    "ops", "sent", "received", "eintr", "etimedout", "eagain", "enomsg", "eidrm", "thread_creates",
    "thread_exits", "leader_exits", "execs", "execs_nonleader", "execs_dropped", "forks", "tid_forced",
    "tid_reuses", "cred_drops", "eacces", "kills", "kills_parked", "stop_storms", "signals", "rmids",
    "unlinks", "ipc_sets", "ipc_stats", "notify_regs", "notify_got", "setattrs", "reopens"};

struct ledger {
    uint64_t seed;
    int nworkers, root, pidns, ledger_fd;
    long ops_target;
    char exe[512];
    _Atomic int stop;
    _Atomic uint64_t sysv[NSYSV]; /* gen << 32 | msqid */
    _Atomic uint32_t mqgen[NMQ];
    _Atomic uint8_t destroyed[NQ][MAXGEN];
    _Atomic uint64_t next_id;
    _Atomic int next_slot;
    _Atomic int incarnation[MAXW];
    _Atomic int wpid[MAXW];
    _Atomic uint64_t c[NCOUNT];
    _Atomic int nviol;
    char viol[NVIOL][240];
    _Atomic int ring[64];
    _Atomic unsigned ring_pos;
    _Atomic uint8_t exited_tid[MAXTID];
    struct tslot slots[MAXSLOT];
    struct msgrec msgs[MAXMSG];
};
static struct ledger *L;

/* -- per process ---------------------------------------------------------------------------------- */
struct proc {
    int widx, incarnation, fork_child;
    _Atomic int nthreads;
    pthread_mutex_t mu; /* guards fd/fdgen (the reopen after an unlink) */
    mqd_t fd[NMQ][3];   /* blocking, O_NONBLOCK, toggled by mq_setattr */
    uint32_t fdgen[NMQ];
};
static struct proc P;

struct thr { uint64_t rng; int slot; long ops_left; };
static __thread struct thr *T;

static uint64_t rnd64(struct thr *t) {
    uint64_t x = t->rng;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static int rnd(struct thr *t, int n) { return (int)(rnd64(t) % (uint64_t)n); }
static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
    x ^= x >> 31; x *= 0xBF58476D1CE4E5B9ULL; x ^= x >> 29;
    return x ? x : 1;
}
static void count(int c) { atomic_fetch_add(&L->c[c], 1); }

static void violation(const char *fmt, ...) {
    /* Formatted first, published with one copy: a reporter SIGKILLed in between leaves at most a
     * torn text, which the conductor prints as such. */
    va_list ap;
    va_start(ap, fmt);
    char buf[200], line[sizeof L->viol[0]];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "pid %d tid %d: %s", getpid(), (int)gettid(), buf);
    int i = atomic_fetch_add(&L->nviol, 1);
    if (i < NVIOL) memcpy(L->viol[i], line, sizeof line);
}

/* errno e is one of the allowed list (terminated by 0) */
static int allowed(int e, ...) {
    va_list ap;
    va_start(ap, e);
    int ok = 0;
    for (int a; (a = va_arg(ap, int)) != 0;) if (a == e) ok = 1;
    va_end(ap);
    return ok;
}
static void tally(int e) {
    if (e == EINTR) count(C_EINTR);
    else if (e == ETIMEDOUT) count(C_ETIMEDOUT);
    else if (e == EAGAIN) count(C_EAGAIN);
    else if (e == ENOMSG) count(C_ENOMSG);
    else if (e == EIDRM) count(C_EIDRM);
    else if (e == EACCES) count(C_EACCES);
}
/* EINTR from a call Linux never sleeps in is tagged: under seccomp user notification a signal that
 * arrives before the supervisor received the notification fails the call with ERESTARTSYS (EINTR
 * after a handler without SA_RESTART), whatever the call. The tag lets the tool name that cause. */
#define NOSLEEP_TAG "[EINTR from a call that never sleeps]"
#define CHECK(call, e, ...) do { tally(e); if (!allowed(e, __VA_ARGS__, 0)) \
    violation("%s: unexpected errno %d (%s)%s", call, e, strerrorname_np(e) ? strerrorname_np(e) : "?", \
              (e) == EINTR ? " " NOSLEEP_TAG : ""); } while (0)

static void setop(int op) { atomic_store(&L->slots[T->slot].op, op); }

/* -- messages ----------------------------------------------------------------------------------- */
static uint64_t checksum(const struct body *b) { return mix(b->id, (uint64_t)b->mtype ^ ((uint64_t)b->slot << 40) ^ b->gen); }
static long new_id(int slot, uint32_t gen) {
    uint64_t id = atomic_fetch_add(&L->next_id, 1);
    if (id >= MAXMSG) return -1;
    L->msgs[id].slot = (uint8_t)slot;
    L->msgs[id].gen = (uint16_t)gen;
    atomic_store(&L->msgs[id].state, ST_ATTEMPTED);
    return (long)id;
}
/* A received (or drained) message: intact, sent, sent to this queue, and received once. */
static void got(const struct body *b, int slot, uint32_t gen, int drained) {
    if (b->check != checksum(b) || b->id == 0 || b->id >= MAXMSG) {
        violation("corrupt message id=%llu slot=%d", (unsigned long long)b->id, slot);
        return;
    }
    struct msgrec *m = &L->msgs[b->id];
    if ((int)b->slot != slot || b->gen != gen)
        violation("message %llu sent to queue %u/%u came out of queue %d/%u", (unsigned long long)b->id,
                  b->slot, b->gen, slot, gen);
    int st = atomic_load(&m->state);
    if (st == ST_NONE || st == ST_FAILED)
        violation("message %llu received but its send %s", (unsigned long long)b->id,
                  st == ST_NONE ? "never happened" : "failed");
    int before = drained ? atomic_fetch_add(&m->drained, 1) + atomic_load(&m->recv)
                         : atomic_fetch_add(&m->recv, 1) + atomic_load(&m->drained);
    if (before)
        violation("message %llu received twice (%s queue %u generation %u%s)", (unsigned long long)b->id,
                  b->slot < NSYSV ? "SysV" : "POSIX", b->slot, b->gen, drained ? ", the second time by the drain" : "");
    if (!drained) count(C_RECV);
}

/* -- POSIX descriptors ----------------------------------------------------------------------------- */
static void mq_name(int s, char *buf) { sprintf(buf, "/realproc%d", s); }

/* (Re)open slot s's three descriptors when its queue was replaced; old ones stay open (a thread may
 * be parked on them, and closing would let the number be reused under it). */
static void refresh(int s) {
    uint32_t g = atomic_load(&L->mqgen[s]);
    if (P.fd[s][0] != (mqd_t)-1 && P.fdgen[s] == g) return;
    pthread_mutex_lock(&P.mu);
    if (P.fd[s][0] == (mqd_t)-1 || P.fdgen[s] != g) {
        char name[32];
        mq_name(s, name);
        mqd_t f[3];
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            f[i] = mq_open(name, O_RDWR | O_CLOEXEC | (i == 1 ? O_NONBLOCK : 0));
            if (f[i] == (mqd_t)-1) {
                if (errno != ENOENT) CHECK("mq_open", errno, ENOENT);
                ok = 0;
                for (int j = 0; j < i; j++) mq_close(f[j]);
            }
        }
        if (ok && atomic_load(&L->mqgen[s]) == g) { /* the name did not move while we opened it */
            for (int i = 0; i < 3; i++) P.fd[s][i] = f[i];
            P.fdgen[s] = g;
            count(C_REOPEN);
        } else if (ok) {
            for (int i = 0; i < 3; i++) mq_close(f[i]);
        }
    }
    pthread_mutex_unlock(&P.mu);
}
static int pick_fd(int s, int kind, mqd_t *fd, uint32_t *gen) {
    refresh(s);
    pthread_mutex_lock(&P.mu);
    *fd = P.fd[s][kind];
    *gen = P.fdgen[s];
    pthread_mutex_unlock(&P.mu);
    return *fd != (mqd_t)-1;
}

/* -- operations ------------------------------------------------------------------------------------ */
static void op_sysv_send(struct thr *t) {
    int s = rnd(t, NSYSV);
    uint64_t v = atomic_load(&L->sysv[s]);
    int q = (int)(uint32_t)v;
    uint32_t gen = (uint32_t)(v >> 32);
    long id = new_id(s, gen);
    if (id < 0) return;
    struct smsg m = {.mtype = 1 + rnd(t, 4)};
    m.b = (struct body){.id = (uint64_t)id, .mtype = m.mtype, .slot = (uint32_t)s, .gen = gen};
    m.b.check = checksum(&m.b);
    int nowait = rnd(t, 3) == 0;
    setop(OP_SYSV_SEND);
    int r = msgsnd(q, &m, sizeof m.b, nowait ? IPC_NOWAIT : 0);
    int e = errno;
    setop(OP_OTHER);
    atomic_store(&L->msgs[id].state, r == 0 ? ST_OK : ST_FAILED);
    if (r == 0) count(C_SENT);
    else if (nowait) CHECK("msgsnd(IPC_NOWAIT)", e, EAGAIN, EIDRM, EINVAL);
    else CHECK("msgsnd", e, EINTR, EIDRM, EINVAL);
}

static void op_sysv_recv(struct thr *t) {
    int s = rnd(t, NSYSV);
    uint64_t v = atomic_load(&L->sysv[s]);
    int q = (int)(uint32_t)v;
    uint32_t gen = (uint32_t)(v >> 32);
    int mode = rnd(t, 4), flags = rnd(t, 3) == 0 ? IPC_NOWAIT : 0;
    long typ = 0, n = 1 + rnd(t, 4);
    if (mode == 1) typ = n;
    else if (mode == 2) typ = -n;
    else if (mode == 3) { typ = n; flags |= MSG_EXCEPT; }
    struct smsg m;
    struct tslot *sl = &L->slots[t->slot];
    atomic_store(&sl->in_recv, 1);
    setop(OP_SYSV_RECV);
    ssize_t r = msgrcv(q, &m, sizeof m.b, typ, flags);
    int e = errno;
    setop(OP_OTHER);
    if (r >= 0) {
        if (r != (ssize_t)sizeof m.b) violation("msgrcv returned %zd bytes", r);
        got(&m.b, s, gen, 0);
        if (m.mtype != m.b.mtype) violation("msgrcv: mtype %ld, body says %lld", m.mtype, (long long)m.b.mtype);
        int match = mode == 0 || (mode == 1 && m.mtype == n) || (mode == 2 && m.mtype <= n) ||
                    (mode == 3 && m.mtype != n);
        if (!match) violation("msgrcv(mode %d, n %ld) got type %ld", mode, n, m.mtype);
    } else if (flags & IPC_NOWAIT) {
        CHECK("msgrcv(IPC_NOWAIT)", e, ENOMSG, EIDRM, EINVAL);
    } else {
        CHECK("msgrcv", e, EINTR, EIDRM, EINVAL);
    }
    atomic_store(&sl->in_recv, 0);
}

static void op_ipc_stat(struct thr *t) {
    struct msqid_ds ds;
    int s = rnd(t, NSYSV);
    int q = (int)(uint32_t)atomic_load(&L->sysv[s]);
    count(C_IPCSTAT);
    if (msgctl(q, IPC_STAT, &ds) < 0) CHECK("msgctl(IPC_STAT)", errno, EINVAL, EIDRM);
    else if (ds.msg_qnum > 64 || ds.msg_cbytes > ds.msg_qbytes + 4096)
        violation("IPC_STAT: qnum %lu cbytes %lu qbytes %lu", ds.msg_qnum, ds.msg_cbytes, ds.msg_qbytes);
}

static struct timespec deadline(struct thr *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (1 + rnd(t, 20)) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return ts;
}

static void op_mq_send(struct thr *t) {
    int s = rnd(t, NMQ), kind = rnd(t, 3), timed = rnd(t, 2);
    mqd_t fd;
    uint32_t gen;
    if (!pick_fd(s, kind, &fd, &gen)) return;
    long id = new_id(NSYSV + s, gen);
    if (id < 0) return;
    struct body b = {.id = (uint64_t)id, .mtype = rnd(t, 4), .slot = (uint32_t)(NSYSV + s), .gen = gen};
    b.check = checksum(&b);
    struct timespec ts = deadline(t);
    setop(OP_MQ_SEND);
    int r = timed ? mq_timedsend(fd, (const char *)&b, sizeof b, (unsigned)b.mtype, &ts)
                  : mq_send(fd, (const char *)&b, sizeof b, (unsigned)b.mtype);
    int e = errno;
    setop(OP_OTHER);
    atomic_store(&L->msgs[id].state, r == 0 ? ST_OK : ST_FAILED);
    if (r == 0) count(C_SENT);
    else if (kind == 1) CHECK("mq_timedsend(O_NONBLOCK)", e, EAGAIN);
    else if (kind == 2) CHECK("mq_timedsend(toggled)", e, EAGAIN, EINTR, ETIMEDOUT);
    else if (timed) CHECK("mq_timedsend(deadline)", e, EINTR, ETIMEDOUT);
    else CHECK("mq_timedsend", e, EINTR);
}

static void op_mq_recv(struct thr *t) {
    int s = rnd(t, NMQ), kind = rnd(t, 3), timed = rnd(t, 2);
    mqd_t fd;
    uint32_t gen;
    if (!pick_fd(s, kind, &fd, &gen)) return;
    struct body b;
    unsigned prio;
    struct timespec ts = deadline(t);
    struct tslot *sl = &L->slots[t->slot];
    atomic_store(&sl->in_recv, 1);
    setop(OP_MQ_RECV);
    ssize_t r = timed ? mq_timedreceive(fd, (char *)&b, sizeof b, &prio, &ts) : mq_receive(fd, (char *)&b, sizeof b, &prio);
    int e = errno;
    setop(OP_OTHER);
    if (r >= 0) {
        if (r != (ssize_t)sizeof b) violation("mq_timedreceive returned %zd bytes", r);
        got(&b, NSYSV + s, gen, 0);
        if ((long long)prio != b.mtype) violation("mq_timedreceive: priority %u, sent with %lld", prio, (long long)b.mtype);
    } else if (kind == 1) CHECK("mq_timedreceive(O_NONBLOCK)", e, EAGAIN);
    else if (kind == 2) CHECK("mq_timedreceive(toggled)", e, EAGAIN, EINTR, ETIMEDOUT);
    else if (timed) CHECK("mq_timedreceive(deadline)", e, EINTR, ETIMEDOUT);
    else CHECK("mq_timedreceive", e, EINTR);
    atomic_store(&sl->in_recv, 0);
}

static void op_notify(struct thr *t) {
    int s = rnd(t, NMQ);
    mqd_t fd;
    uint32_t gen;
    if (!pick_fd(s, 0, &fd, &gen)) return;
    if (rnd(t, 2)) {
        struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGURG};
        if (mq_notify(fd, &ev) == 0) count(C_NOTIFY_REG);
        else CHECK("mq_notify", errno, EBUSY);
    } else if (mq_notify(fd, NULL) < 0) {
        CHECK("mq_notify(NULL)", errno, 0);
    }
}

static void op_setattr(struct thr *t) {
    int s = rnd(t, NMQ);
    mqd_t fd;
    uint32_t gen;
    if (!pick_fd(s, 2, &fd, &gen)) return;
    struct mq_attr a = {.mq_flags = rnd(t, 2) ? O_NONBLOCK : 0}, old;
    count(C_SETATTR);
    if (mq_setattr(fd, &a, &old) < 0) CHECK("mq_setattr", errno, 0);
    else if (old.mq_maxmsg != MQ_MAXMSG || old.mq_msgsize != MQ_MSGSIZE || old.mq_curmsgs > MQ_MAXMSG)
        violation("mq_getattr: maxmsg %ld msgsize %ld curmsgs %ld", old.mq_maxmsg, old.mq_msgsize, old.mq_curmsgs);
}

/* Every access to the 0600 queues fails while this thread's effective uid is 65534. */
static void dropped_checks(const char *where) {
    struct smsg m = {.mtype = 1};
    struct msqid_ds ds;
    int q = (int)(uint32_t)atomic_load(&L->sysv[0]);
    if (msgsnd(q, &m, sizeof m.b, IPC_NOWAIT) == 0) violation("msgsnd as uid 65534 on a 0600 queue succeeded (%s)", where);
    else CHECK("msgsnd as 65534", errno, EACCES, EIDRM, EINVAL);
    if (msgrcv(q, &m, sizeof m.b, 0, IPC_NOWAIT) >= 0) violation("msgrcv as uid 65534 on a 0600 queue succeeded (%s)", where);
    else CHECK("msgrcv as 65534", errno, EACCES, EIDRM, EINVAL);
    if (msgctl(q, IPC_STAT, &ds) == 0) violation("IPC_STAT as uid 65534 on a 0600 queue succeeded (%s)", where);
    else CHECK("IPC_STAT as 65534", errno, EACCES, EIDRM, EINVAL);
    char name[32];
    mq_name(0, name);
    mqd_t fd = mq_open(name, O_RDONLY);
    if (fd != (mqd_t)-1) { violation("mq_open as uid 65534 of a 0600 queue succeeded (%s)", where); mq_close(fd); }
    else CHECK("mq_open as 65534", errno, EACCES, ENOENT);
}
static void exec_self(struct thr *t, int from_dropped);
static void dropped_checks(const char *where);

static void op_cred(struct thr *t) {
    if (!L->root) return;
    count(C_CRED);
    if (syscall(SYS_setresuid, -1, NOBODY, -1) != 0) { CHECK("setresuid(-1, 65534, -1)", errno, 0); return; }
    dropped_checks(gettid() == getpid() ? "leader after setresuid" : "thread after setresuid");
    if (rnd(t, 8) == 0 && !getenv("REALPROC_NOKILL") && atomic_load(&L->incarnation[P.widx]) < MAXINCARNATION && !P.fork_child)
        exec_self(t, 1);  /* the new image starts with this thread's credentials */
    while (syscall(SYS_setresuid, -1, 0, -1) != 0) { /* must not stay 65534: retry after the report */
        CHECK("setresuid(-1, 0, -1)", errno, 0);
        if (errno != EINTR) break;
    }
}

/* -- threads, exec, fork ---------------------------------------------------------------------------- */
static int register_slot(void) {
    int i = atomic_fetch_add(&L->next_slot, 1);
    if (i >= MAXSLOT) { atomic_store(&L->stop, 1); i = MAXSLOT - 1; } /* out of slots: wind down */
    struct tslot *sl = &L->slots[i];
    sl->pid = getpid();
    sl->tid = (int)gettid();
    sl->widx = P.widx;
    sl->incarnation = P.incarnation;
    atomic_store(&sl->op, OP_OTHER);
    atomic_store(&sl->alive, 1);
    atomic_store(&sl->used, 1);
    if (sl->tid < MAXTID && sl->tid != sl->pid && atomic_load(&L->exited_tid[sl->tid])) count(C_TIDREUSE);
    return i;
}
static void mark_exited(int tid) {
    if (tid <= 0 || tid >= MAXTID) return;
    atomic_store(&L->exited_tid[tid], 1);
    unsigned p = atomic_fetch_add(&L->ring_pos, 1);
    atomic_store(&L->ring[p % 64], tid);
}

static void thread_loop(struct thr *t);
static void *thread_main(void *arg) {
    struct thr *t = arg;
    T = t;
    t->slot = register_slot();
    thread_loop(t);
    return NULL;
}

static void op_spawn(struct thr *t) {
    if (atomic_load(&P.nthreads) >= MAXTHREADS) return;
    struct thr *n = calloc(1, sizeof *n);
    n->rng = mix(rnd64(t), 7);
    n->ops_left = t->ops_left;
    if (L->pidns && rnd(t, 2)) { /* hand an exited thread's TID to the new thread (as root in our own pid ns) */
        int tid = atomic_load(&L->ring[rnd(t, 64)]);
        int fd = tid > 1 ? open("/proc/sys/kernel/ns_last_pid", O_WRONLY) : -1;
        if (fd >= 0) {
            char b[16];
            int len = snprintf(b, sizeof b, "%d", tid - 1);
            if (write(fd, b, len) == len) count(C_TIDFORCE);
            close(fd);
        }
    }
    atomic_fetch_add(&P.nthreads, 1);
    pthread_t th;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 256 << 10);
    if (pthread_create(&th, &a, thread_main, n) != 0) { atomic_fetch_sub(&P.nthreads, 1); free(n); }
    else count(C_TCREATE);
    pthread_attr_destroy(&a);
}

/* This thread ends; the process ends with its last thread. */
static void thread_end(struct thr *t, int counted) {
    struct tslot *sl = &L->slots[t->slot];
    atomic_store(&sl->in_recv, 0);
    atomic_store(&sl->op, OP_EXITED);
    atomic_store(&sl->alive, 0);
    if (counted) { count(C_TEXIT); if (sl->tid == sl->pid) count(C_LEADER_EXIT); }
    if (atomic_fetch_sub(&P.nthreads, 1) == 1) exit(0);
    if (sl->tid != sl->pid) mark_exited(sl->tid);
    pthread_exit(NULL);
}

static void exec_self(struct thr *t, int from_dropped) {
    char fdb[16], wb[16];
    snprintf(fdb, sizeof fdb, "%d", L->ledger_fd);
    snprintf(wb, sizeof wb, "%d", P.widx);
    count(C_EXEC);
    if ((int)gettid() != getpid()) count(C_EXEC_NONLEADER);
    if (from_dropped) count(C_EXEC_DROPPED);
    (void)t;
    execl(L->exe, L->exe, "--worker", fdb, wb, (char *)NULL);
    CHECK("execve", errno, 0);
}

static void op_fork(struct thr *t) {
    if (P.fork_child) return;
    uint64_t seed = rnd64(t);
    /* Under P.mu: fork copies the descriptor table before the memory, so a descriptor another thread
     * opened in between would be named in the child's P.fd without existing there. */
    pthread_mutex_lock(&P.mu);
    pid_t p = fork();
    int e = errno;
    if (p != 0) pthread_mutex_unlock(&P.mu);
    if (p < 0) { CHECK("fork", e, EAGAIN); return; }
    if (p > 0) { count(C_FORK); return; }
    /* the child: one thread (this one), a short life of its own */
    P.fork_child = 1;
    atomic_store(&P.nthreads, 1);
    pthread_mutex_init(&P.mu, NULL);
    struct thr *n = calloc(1, sizeof *n);
    n->rng = mix(seed, 11);
    n->ops_left = 10 + rnd(n, 40);
    T = n;
    n->slot = register_slot();
    thread_loop(n);
    exit(0);
}

static void thread_loop(struct thr *t) {
    while (!atomic_load(&L->stop) && (t->ops_left < 0 || t->ops_left-- > 0)) {
        atomic_fetch_add(&L->c[C_OPS], 1);
        int w = rnd(t, 1000);
        if (w < 190) op_sysv_send(t);
        else if (w < 380) op_sysv_recv(t);
        else if (w < 550) op_mq_send(t);
        else if (w < 720) op_mq_recv(t);
        else if (w < 750) op_ipc_stat(t);
        else if (w < 790) op_notify(t);
        else if (w < 830) op_setattr(t);
        else if (w < 890) op_spawn(t);
        else if (w < 930) { if (atomic_load(&P.nthreads) > 1) thread_end(t, 1); }
        else if (w < 945) op_fork(t);
        else if (w < 990) op_cred(t);
        else if (w < 996 && !getenv("REALPROC_NOKILL") && !P.fork_child && atomic_load(&L->incarnation[P.widx]) < MAXINCARNATION) exec_self(t, 0);
    }
    thread_end(t, 0);
}

/* -- worker start ----------------------------------------------------------------------------------- */
static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (sig == SIGURG && si->si_code == SI_MESGQ) atomic_fetch_add(&L->c[C_NOTIFY_GOT], 1);
}
static void handlers(void) {
    struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);   /* restartable (and mq_notify's signal) */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGWINCH, &sa, NULL); /* interrupts: EINTR */
    signal(SIGCHLD, SIG_IGN);       /* forked children reap themselves */
}

static void worker_main(int widx) {
    P.widx = widx;
    P.incarnation = atomic_fetch_add(&L->incarnation[widx], 1);
    P.fork_child = 0;
    atomic_store(&P.nthreads, 1);
    pthread_mutex_init(&P.mu, NULL);
    for (int s = 0; s < NMQ; s++) { for (int i = 0; i < 3; i++) P.fd[s][i] = (mqd_t)-1; P.fdgen[s] = 0; }
    handlers();
    struct thr *t = calloc(1, sizeof *t);
    t->rng = mix(mix(L->seed, (uint64_t)widx), (uint64_t)P.incarnation + 1);
    t->ops_left = -1;
    T = t;
    t->slot = register_slot();
    /* the threads of the image before an exec are gone: their TIDs are free now */
    int me = getpid(), n = atomic_load(&L->next_slot);
    for (int i = 0; i < n && i < MAXSLOT; i++) {
        struct tslot *sl = &L->slots[i];
        if (i != t->slot && atomic_load(&sl->used) && sl->pid == me && atomic_load(&sl->alive) &&
            sl->incarnation < P.incarnation && sl->widx == widx) {
            atomic_store(&sl->alive, 0);
            atomic_store(&sl->op, OP_EXITED);
            if (sl->tid != me) mark_exited(sl->tid);
        }
    }
    if (L->root && geteuid() != 0) { /* exec'd by a thread that had dropped to 65534 */
        dropped_checks("new image after an exec by a thread at euid 65534");
        while (syscall(SYS_setresuid, -1, 0, -1) != 0) {
            CHECK("setresuid back after exec", errno, 0);
            if (errno != EINTR) break;
        }
    }
    int extra = rnd(t, MAXTHREADS);
    for (int i = 0; i < extra; i++) op_spawn(t);
    thread_loop(t);
}

/* -- the conductor ---------------------------------------------------------------------------------- */
static int make_sysv(void) {
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct msqid_ds ds;
    if (q < 0 || msgctl(q, IPC_STAT, &ds) < 0) { perror("msgget"); exit(2); }
    ds.msg_qbytes = SYSV_QBYTES;
    if (msgctl(q, IPC_SET, &ds) < 0) { perror("IPC_SET"); exit(2); }
    return q;
}
static void make_mq(int s) {
    char name[32];
    mq_name(s, name);
    struct mq_attr a = {.mq_maxmsg = MQ_MAXMSG, .mq_msgsize = MQ_MSGSIZE};
    mqd_t fd = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    if (fd == (mqd_t)-1) { perror("mq_open(O_CREAT)"); exit(2); }
    mq_close(fd);
}

static pid_t spawn_worker(int widx) {
    pid_t p = fork();
    if (p < 0) { perror("fork"); exit(2); }
    if (p == 0) { worker_main(widx); exit(0); }
    atomic_store(&L->wpid[widx], p);
    return p;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
static void pause_us(struct thr *t, int max_us) {
    struct timespec ts = {0, (long)rnd(t, max_us) * 1000L};
    nanosleep(&ts, NULL);
}
static int worker_parked(int widx) {
    int pid = atomic_load(&L->wpid[widx]), n = atomic_load(&L->next_slot);
    for (int i = n - 1; i >= 0 && i >= n - 2000; i--) {
        struct tslot *sl = &L->slots[i];
        int op = atomic_load(&sl->op);
        if (atomic_load(&sl->used) && sl->pid == pid && atomic_load(&sl->alive) && op >= OP_SYSV_SEND && op <= OP_MQ_RECV)
            return 1;
    }
    return 0;
}
static int random_live_slot(struct thr *t) {
    int n = atomic_load(&L->next_slot);
    if (n > MAXSLOT) n = MAXSLOT;
    for (int tries = 0; tries < 16 && n > 0; tries++) {
        int lo = n > 200 ? n - 200 : 0, i = lo + rnd(t, n - lo);
        if (atomic_load(&L->slots[i].used) && atomic_load(&L->slots[i].alive)) return i;
    }
    return -1;
}

static void reap_nohang(void) {
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        for (int w = 0; w < L->nworkers; w++)
            if (atomic_load(&L->wpid[w]) == p) {
                if (!atomic_load(&L->stop)) spawn_worker(w); /* a worker whose threads all exited */
                else atomic_store(&L->wpid[w], 0);
            }
    }
}

static void chaos(struct thr *t, int *rmids, int *unlinks) {
    int w = rnd(t, 1000);
    if (w < 550) { /* a signal to one live thread: restartable or interrupting */
        int i = random_live_slot(t);
        if (i >= 0) {
            syscall(SYS_tgkill, L->slots[i].pid, L->slots[i].tid, rnd(t, 2) ? SIGURG : SIGWINCH);
            count(C_SIGNALS);
        }
    } else if (w < 700) { /* SIGSTOP/SIGCONT storm on one worker */
        int pid = atomic_load(&L->wpid[rnd(t, L->nworkers)]);
        if (pid > 0) {
            int k = 1 + rnd(t, 8);
            for (int j = 0; j < k; j++) {
                kill(pid, SIGSTOP);
                if (rnd(t, 2)) pause_us(t, 300);
                kill(pid, SIGCONT);
            }
            count(C_STOPSTORM);
        }
    } else if (w < 760 && !getenv("REALPROC_NOKILL")) { /* kill a worker, preferably one parked in a call, and replace it */
        int widx = rnd(t, L->nworkers);
        for (int j = 0; j < L->nworkers && !worker_parked(widx); j++) widx = (widx + 1) % L->nworkers;
        int pid = atomic_load(&L->wpid[widx]);
        if (pid > 0) {
            int parked = worker_parked(widx);
            kill(pid, SIGKILL);
            int st;
            waitpid(pid, &st, __WALL);
            count(C_KILL);
            if (parked) count(C_KILL_PARKED);
            spawn_worker(widx);
        }
    } else if (w < 790 && *rmids < MAXGEN - 2) { /* replace a SysV queue: IPC_RMID destroys what it holds */
        int s = rnd(t, NSYSV);
        uint64_t old = atomic_load(&L->sysv[s]);
        int q = make_sysv();
        uint32_t gen = (uint32_t)(old >> 32) + 1;
        atomic_store(&L->sysv[s], ((uint64_t)gen << 32) | (uint32_t)q);
        if (msgctl((int)(uint32_t)old, IPC_RMID, NULL) < 0) violation("IPC_RMID: errno %d", errno);
        atomic_store(&L->destroyed[s][old >> 32], 1);
        count(C_RMID);
        (*rmids)++;
    } else if (w < 810 && *unlinks < 40) { /* replace a POSIX queue: the old one lives while descriptors do */
        int s = rnd(t, NMQ);
        char name[32];
        mq_name(s, name);
        uint32_t g = atomic_load(&L->mqgen[s]);
        if (mq_unlink(name) < 0) violation("mq_unlink: errno %d", errno);
        atomic_store(&L->destroyed[NSYSV + s][g], 1);
        atomic_store(&L->mqgen[s], g + 1);
        make_mq(s);
        count(C_UNLINK);
        (*unlinks)++;
    } else if (w < 840) { /* msg_qbytes between 2 and 8 messages */
        int s = rnd(t, NSYSV);
        int q = (int)(uint32_t)atomic_load(&L->sysv[s]);
        struct msqid_ds ds;
        if (msgctl(q, IPC_STAT, &ds) == 0) {
            ds.msg_qbytes = (2 + rnd(t, 7)) * sizeof(struct body);
            if (msgctl(q, IPC_SET, &ds) < 0) violation("IPC_SET: errno %d", errno);
            else count(C_IPCSET);
        } else {
            violation("conductor IPC_STAT: errno %d", errno);
        }
    }
    if (rnd(t, 4) == 0) pause_us(t, 1500);
}

static void diagnose(const char *why) {
    printf("HANG %s\n", why);
    int n = atomic_load(&L->next_slot);
    if (n > MAXSLOT) n = MAXSLOT;
    for (int i = 0; i < n; i++) {
        struct tslot *sl = &L->slots[i];
        if (!atomic_load(&sl->used) || !atomic_load(&sl->alive)) continue;
        char path[64], stat[512] = "", wchan[64] = "";
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", sl->pid, sl->tid);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* gone (killed or exec'd away) */
        if (!fgets(stat, sizeof stat, f)) stat[0] = 0;
        fclose(f);
        snprintf(path, sizeof path, "/proc/%d/task/%d/wchan", sl->pid, sl->tid);
        if ((f = fopen(path, "r"))) { if (!fgets(wchan, sizeof wchan, f)) wchan[0] = 0; fclose(f); }
        char *state = strrchr(stat, ')');
        printf("HANG thread pid=%d tid=%d worker=%d op=%s in_recv=%d state=%.1s wchan=%s\n", sl->pid, sl->tid,
               sl->widx, OPNAME[atomic_load(&sl->op)], atomic_load(&sl->in_recv), state ? state + 2 : "?",
               wchan);
    }
    fflush(stdout);
}

static int conduct(double bound) {
    struct thr ct = {.rng = mix(L->seed, 0xC0)};
    T = &ct;
    for (int s = 0; s < NSYSV; s++) atomic_store(&L->sysv[s], (uint32_t)make_sysv());
    for (int s = 0; s < NMQ; s++) { char name[32]; mq_name(s, name); mq_unlink(name); make_mq(s); }
    atomic_store(&L->next_id, 1);
    for (int w = 0; w < L->nworkers; w++) spawn_worker(w);
    int rmids = 0, unlinks = 0;
    uint64_t last_ops = 0;
    double last_progress = now();
    int hung = 0;
    /* The run ends on a state: the operation budget spent *and* at least ops/20 rounds of chaos done
     * (on a loaded machine the workers may otherwise spend the budget before the conductor runs). */
    long rounds = 0;
    while (!atomic_load(&L->stop)) {
        chaos(&ct, &rmids, &unlinks);
        if (++rounds >= L->ops_target / 20 && atomic_load(&L->c[C_OPS]) >= (uint64_t)L->ops_target)
            atomic_store(&L->stop, 1);
        reap_nohang();
        uint64_t ops = atomic_load(&L->c[C_OPS]);
        if (ops != last_ops) { last_ops = ops; last_progress = now(); }
        else if (now() - last_progress > bound) { diagnose("no operation completed for the bound"); hung = 1; break; }
        if (atomic_load(&L->next_id) >= MAXMSG - 1) atomic_store(&L->stop, 1);
    }
    atomic_store(&L->stop, 1);
    /* the stop: wake every parked call until every process is gone */
    double start = now();
    int st;
    for (;;) {
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {}
        if (p < 0 && errno == ECHILD) break;
        if (!hung && now() - start > bound) { diagnose("processes still running after the stop"); hung = 1; }
        if (hung) { /* kill what is left */
            int n = atomic_load(&L->next_slot);
            for (int i = 0; i < n && i < MAXSLOT; i++)
                if (atomic_load(&L->slots[i].alive)) kill(L->slots[i].pid, SIGKILL);
            for (int w = 0; w < L->nworkers; w++) if (L->wpid[w] > 0) kill(L->wpid[w], SIGKILL);
        }
        for (int w = 0; w < L->nworkers; w++) if (L->wpid[w] > 0) kill(L->wpid[w], SIGCONT);
        int n = atomic_load(&L->next_slot);
        for (int i = 0; i < n && i < MAXSLOT; i++) {
            struct tslot *sl = &L->slots[i];
            if (atomic_load(&sl->used) && atomic_load(&sl->alive)) {
                kill(sl->pid, SIGCONT);
                syscall(SYS_tgkill, sl->pid, sl->tid, SIGWINCH);
            }
        }
        struct timespec ts = {0, 2000000L};
        nanosleep(&ts, NULL);
    }
    /* drain what is still queued */
    long queued = 0;
    for (int s = 0; s < NSYSV; s++) {
        uint64_t v = atomic_load(&L->sysv[s]);
        struct smsg m;
        while (msgrcv((int)(uint32_t)v, &m, sizeof m.b, 0, IPC_NOWAIT) >= 0) { got(&m.b, s, (uint32_t)(v >> 32), 1); queued++; }
        if (errno != ENOMSG) violation("drain msgrcv: errno %d", errno);
        msgctl((int)(uint32_t)v, IPC_RMID, NULL);
    }
    for (int s = 0; s < NMQ; s++) {
        char name[32];
        mq_name(s, name);
        mqd_t fd = mq_open(name, O_RDONLY | O_NONBLOCK);
        struct body b;
        while (fd != (mqd_t)-1 && mq_receive(fd, (char *)&b, sizeof b, NULL) >= 0) {
            got(&b, NSYSV + s, atomic_load(&L->mqgen[s]), 1);
            queued++;
        }
        if (fd == (mqd_t)-1 || errno != EAGAIN) violation("drain mq: errno %d", errno);
        mq_unlink(name);
    }
    /* accounting */
    long destroyed = 0, missing = 0, allowance = 0, sent_ok = 0;
    uint64_t last = atomic_load(&L->next_id);
    if (last > MAXMSG) last = MAXMSG;
    for (uint64_t id = 1; id < last; id++) {
        struct msgrec *m = &L->msgs[id];
        if (m->state != ST_OK) continue;
        sent_ok++;
        if (m->recv || m->drained) continue;
        if (atomic_load(&L->destroyed[m->slot][m->gen])) destroyed++;
        else {
            missing++;
            if (getenv("REALPROC_DEBUG"))
                printf("MISSING id=%llu slot=%d gen=%d\n", (unsigned long long)id, m->slot, m->gen);
        }
    }
    int n = atomic_load(&L->next_slot);
    for (int i = 0; i < n && i < MAXSLOT; i++) allowance += atomic_load(&L->slots[i].in_recv);
    if (missing > allowance)
        violation("%ld message(s) lost: sent, never received, not queued, queue not removed "
                  "(only %ld thread(s) died inside a receive)", missing, allowance);
    printf("STAT seed=%llu workers=%d ops_target=%ld pidns=%d root=%d", (unsigned long long)L->seed, L->nworkers,
           L->ops_target, L->pidns, L->root);
    for (int c = 0; c < NCOUNT; c++) printf(" %s=%llu", CNAME[c], (unsigned long long)atomic_load(&L->c[c]));
    printf(" sent_ok=%ld queued_at_end=%ld destroyed=%ld missing=%ld loss_allowance=%ld threads=%d hang=%d "
           "violations=%d\n", sent_ok, queued, destroyed, missing, allowance, n, hung, atomic_load(&L->nviol));
    int nv = atomic_load(&L->nviol);
    for (int i = 0; i < nv && i < NVIOL; i++)
        printf("VIOLATION %s\n", L->viol[i][0] ? L->viol[i] : "(its reporter was killed while publishing it)");
    fflush(stdout);
    return hung ? 3 : nv ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--worker") == 0) {
        int fd = atoi(argv[2]);
        L = mmap(NULL, sizeof *L, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (L == MAP_FAILED) return 2;
        worker_main(atoi(argv[3]));
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: %s SEED OPS WORKERS BOUND\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = memfd_create("realproc-ledger", 0);
    if (fd < 0 || ftruncate(fd, sizeof *L) < 0) { perror("memfd"); return 2; }
    L = mmap(NULL, sizeof *L, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (L == MAP_FAILED) { perror("mmap"); return 2; }
    L->ledger_fd = fd;
    L->seed = strtoull(argv[1], NULL, 0);
    L->ops_target = atol(argv[2]);
    L->nworkers = atoi(argv[3]);
    double bound = atof(argv[4]);
    if (L->nworkers < 1 || L->nworkers > MAXW || L->ops_target < 1 || bound <= 0) {
        fprintf(stderr, "realproc: bad arguments\n");
        return 2;
    }
    if (!realpath("/proc/self/exe", L->exe)) { perror("realpath"); return 2; }
    L->root = geteuid() == 0;
    /* Our own PID namespace (as root): we become its init and may pick TIDs through ns_last_pid. */
    if (L->root && unshare(CLONE_NEWPID) == 0) {
        L->pidns = 1;
        pid_t c = fork();
        if (c < 0) { perror("fork"); return 2; }
        if (c > 0) {
            int st;
            while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    } else {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    return conduct(bound);
}
