/* Starting the executor (executor.c) for a plan: in the runtime's process, a child that at once becomes the
 * executor program, exec'd from a sealed memfd copy of it that the shim carries. Why a program of its own
 * and not a clone of the runtime: executor.c's head comment. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
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
    struct pyoci_plan_header h = { .magic = PYOCI_PLAN_MAGIC, .base = (unsigned long long)(uintptr_t)plan,
                                   .size = (unsigned long long)size, .nsteps = (unsigned long long)nsteps,
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

/* A child born in the v2 cgroup when the kernel can (5.7+); any refusal falls back to a plain clone and the
 * plan's join step, whose error then names the cgroup. */
static pid_t clone_child(const char *cgroup_v2, int *born_in_cgroup)
{
    int cgroup_fd = cgroup_v2 ? open(cgroup_v2, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    *born_in_cgroup = 0;
    if (cgroup_fd >= 0) {
        struct pyoci_clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
                                         .cgroup = (unsigned long long)cgroup_fd };
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        close(cgroup_fd);
        if (pid >= 0) {
            *born_in_cgroup = 1;
            return pid;
        }
    }
    return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

/* In the child, if the executor could not be exec'd: an ERROR for the runtime to show. */
static void __attribute__((noreturn)) child_failed(int sync_fd, const char *what, int err)
{
    struct pyoci_msg m = { .type = PYOCI_MSG_ERROR, .step = -1, .err = err, .len = (int)strlen(what) };
    struct iovec iov[2] = { { .iov_base = &m, .iov_len = sizeof m }, { .iov_base = (void *)what, .iov_len = strlen(what) } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    sendmsg(sync_fd, &mh, MSG_NOSIGNAL);
    _exit(127);
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
    int born;
    pid_t parent = getpid();
    pid_t pid = clone_child(cgroup_v2, &born);
    if (pid != 0) {
        int err = errno;
        close(exe);
        close(plan_fd);
        return pid < 0 ? -err : pid;
    }
    /* The child: a copy of the runtime for as long as it takes to exec the executor; it dies with it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent)
        _exit(1);
    /* Every fd the plan uses (the runtime opens its own close-on-exec) and the two we pass stay open; a
     * preserved fd the caller did not open is no error, as before. */
    for (int i = 0; i < ninherit; i++)
        if (fcntl(inherit[i], F_SETFD, 0) < 0 && errno != EBADF)
            child_failed(sync_fd, "start the executor: an fd of the plan", errno);
    if (fcntl(sync_fd, F_SETFD, 0) < 0 || fcntl(plan_fd, F_SETFD, 0) < 0)
        child_failed(sync_fd, "start the executor: its fds", errno);
    char plan_arg[16], sync_arg[16];
    snprintf(plan_arg, sizeof plan_arg, "%d", plan_fd);
    snprintf(sync_arg, sizeof sync_arg, "%d", sync_fd);
    char *argv[] = { EXECUTOR_MARK, plan_arg, sync_arg, born ? "1" : "0", NULL };
    char *envp[] = { NULL };
    syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
    child_failed(sync_fd, "start the executor: execveat", errno);
}
