/* Starting the executor (executor.c) for a plan: in the runtime's process, a child that at once becomes the
 * executor program, exec'd from a sealed memfd copy of it that the shim carries. Why a program of its own
 * and not a clone of the runtime: executor.c's head comment. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "internal.h"
#include "executor_elf.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static int write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* The executor program in an executable memfd that nothing can change: no write, no resize, no new seal. */
static int executor_memfd(void)
{
    int fd = memfd_create("pyoci-executor", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel older than MFD_EXEC: memfds are executable anyway */
        fd = memfd_create("pyoci-executor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (write_all(fd, executor_elf, sizeof executor_elf) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int err = errno ? errno : EIO;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int plan_memfd(const char *plan, long long size, int nsteps, const unsigned long long *relocs, int nrelocs)
{
    int fd = memfd_create("pyoci-plan", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    struct pyoci_plan_header h = { .magic = PYOCI_PLAN_MAGIC, .size = (unsigned long long)size,
                                   .nsteps = (unsigned long long)nsteps,
                                   .nrelocs = (unsigned long long)nrelocs };
    if (write_all(fd, &h, sizeof h) < 0 || write_all(fd, relocs, (size_t)nrelocs * sizeof *relocs) < 0 ||
        write_all(fd, plan, (size_t)size) < 0) {
        int err = errno ? errno : EIO;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* struct clone_args of clone3(2), kernel ABI (glibc 2.36 has no declaration of its own). */
struct pyoci_clone_args {
    unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* What the child needs to exec the executor; all of it is set before the clone. */
struct child_args {
    const int *inherit;
    int ninherit, sync_fd, plan_fd, exe, born;
    pid_t parent;
};

/* Room for the child until it execs. It runs in the runtime's memory (CLONE_VM) while the runtime waits
 * (CLONE_VFORK), so it gets a stack of its own: a frame of the waiting parent, as musl's posix_spawn does. */
#define CHILD_STACK 16384

#if defined(__x86_64__)
/* clone3 that runs fn(arg) in the child. The syscall returns twice, the second time on a stack the compiler
 * knows nothing of (no frame to return through), so the child's side stays in asm up to the call of fn,
 * which never returns (exit is the guard). In the parent: the pid, or -errno. */
static long clone3_run(struct pyoci_clone_args *args, int (*fn)(void *), void *arg)
{
    register int (*r12)(void *) __asm__("r12") = fn;
    register void *r13 __asm__("r13") = arg;
    long ret;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov %[exit], %%eax\n\t"
                     "syscall\n\t"
                     "1:"
                     : "=a"(ret)
                     : "0"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(r12), "r"(r13),
                       [exit] "i"(SYS_exit_group)
                     : "rcx", "r11", "memory");
    return ret;
}
#endif

/* In the child, if the executor could not be exec'd: an ERROR for the runtime to show. */
static void __attribute__((noreturn)) child_failed(int sync_fd, const char *what, int err)
{
    struct pyoci_msg m = { .type = PYOCI_MSG_ERROR, .step = -1, .err = err, .len = (int)strlen(what) };
    struct iovec iov[2] = { { .iov_base = &m, .iov_len = sizeof m }, { .iov_base = (void *)what, .iov_len = strlen(what) } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    sendmsg(sync_fd, &mh, MSG_NOSIGNAL);
    _exit(127);
}

/* n in decimal: the child shares the runtime's memory, so it calls nothing that may take a lock (snprintf). */
static void decimal(char *out, int n)
{
    char digits[12];
    int len = 0;
    do
        digits[len++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    while (len > 0)
        *out++ = digits[--len];
    *out = 0;
}

/* The child: the runtime's memory and a copy of its fds, for as long as it takes to exec the executor; it dies
 * with the runtime. Its writes land in the runtime's memory, so it writes its own stack only, and it leaves the
 * memory's dumpable flag alone (a library's caller would lose its own): until execve the child is exactly as
 * reachable as the runtime is, and the executor makes itself non-dumpable first thing. */
static int exec_executor(void *arg)
{
    const struct child_args *c = arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != c->parent)
        _exit(1);
    /* Every fd the plan uses (the runtime opens its own close-on-exec) and the two we pass stay open; a
     * preserved fd the caller did not open is no error, as before. */
    for (int i = 0; i < c->ninherit; i++)
        if (fcntl(c->inherit[i], F_SETFD, 0) < 0 && errno != EBADF)
            child_failed(c->sync_fd, "start the executor: an fd of the plan", errno);
    if (fcntl(c->sync_fd, F_SETFD, 0) < 0 || fcntl(c->plan_fd, F_SETFD, 0) < 0)
        child_failed(c->sync_fd, "start the executor: its fds", errno);
    char plan_arg[16], sync_arg[16];
    decimal(plan_arg, c->plan_fd);
    decimal(sync_arg, c->sync_fd);
    char *argv[] = { EXECUTOR_MARK, plan_arg, sync_arg, c->born ? "1" : "0", NULL };
    char *envp[] = { NULL };
    syscall(SYS_execveat, c->exe, "", argv, envp, AT_EMPTY_PATH);
    child_failed(c->sync_fd, "start the executor: execveat", errno);
}

/* The child, born in the v2 cgroup when the kernel can (5.7+); any refusal falls back to glibc's clone, outside
 * it, and the plan's join step, whose error then names the cgroup. Not a fork: a copy of the runtime's page tables, and
 * then a copy-on-write fault for each page the runtime writes after it, cost a create ~2 ms of CPU. Every
 * signal stays blocked until the executor resets them: a handler of the runtime's run in the child would
 * write the runtime's memory. */
static pid_t clone_child(const char *cgroup_v2, struct child_args *c, char *stack)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = -1;
    int cgroup_fd = cgroup_v2 ? open(cgroup_v2, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    c->born = cgroup_fd >= 0;
    if (c->born) {
        struct pyoci_clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
                                         .cgroup = (unsigned long long)cgroup_fd };
#if defined(__x86_64__)
        args.flags |= CLONE_VM | CLONE_VFORK;
        args.stack = (unsigned long long)(uintptr_t)stack;
        args.stack_size = CHILD_STACK;
        pid = clone3_run(&args, exec_executor, c);
#else /* no stack switch written for this arch: a fork, whose child returns through syscall() on its copy */
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0)
            exec_executor(c);
#endif
        close(cgroup_fd);
    }
    if (pid < 0) {
        c->born = 0;
        pid = clone(exec_executor, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return (pid_t)pid;
}

int pyoci_spawn(const char *plan, long long plan_size, int nsteps, const unsigned long long *relocs, int nrelocs,
                const int *inherit, int ninherit, int sync_fd, const char *cgroup_v2)
{
    int exe = executor_memfd();
    if (exe < 0)
        return -errno;
    int plan_fd = plan_memfd(plan, plan_size, nsteps, relocs, nrelocs);
    if (plan_fd < 0) {
        int err = errno;
        close(exe);
        return -err;
    }
    struct child_args c = { .inherit = inherit, .ninherit = ninherit, .sync_fd = sync_fd, .plan_fd = plan_fd,
                            .exe = exe, .parent = getpid() };
    char stack[CHILD_STACK] __attribute__((aligned(16)));
    pid_t pid = clone_child(cgroup_v2, &c, stack);
    int err = errno;
    close(exe);
    close(plan_fd);
    return pid < 0 ? -err : pid;
}
