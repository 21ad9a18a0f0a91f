/* Running a program to its end for a hook, the one way both sides do it: the runtime on the host (prestart,
 * createRuntime, poststart, poststop, through pyoci_run_hook) and the executor inside the container
 * (createContainer, startContainer). One runner, so a hook that fails reads the same wherever it ran. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* In the hook's process: the caller's signal dispositions and mask are not the hook's (Python ignores
 * SIGPIPE, the executor may block signals). */
static void default_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 1; i < NSIG; i++)
        signal(i, SIG_DFL);
}

static int wait_child(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

int hook_run(const char *path, char **argv, char **envp, int stdin_fd, long long timeout, const char *dir,
             char *detail, int detail_size)
{
    int report[2];  /* the child writes the errno of a failed execve here; a successful one closes it */
    detail[0] = '\0';
    if (pipe2(report, O_CLOEXEC) < 0)
        return -errno;
    lseek(stdin_fd, 0, SEEK_SET);  /* hooks share the state's file offset: each reads it from the start */
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(report[0]);
        close(report[1]);
        return -err;
    }
    if (pid == 0) {
        default_signals();
        /* The hook's directory; one gone since (a bundle removed before delete) leaves it where the runtime is. */
        int unused = dir ? chdir(dir) : 0;
        (void)unused;
        if (dup2(stdin_fd, 0) == 0)
            execve(path, argv, envp);
        int err = errno;
        unused = (int)write(report[1], &err, sizeof err);
        _exit(127);
    }
    close(report[1]);
    int err = 0;
    ssize_t n;
    do {
        n = read(report[0], &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    int status;
    if (n == (ssize_t)sizeof err) {
        wait_child(pid, &status);
        return -err;
    }
    int pidfd = timeout > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pidfd >= 0) {
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
        int r;
        do {
            r = poll(&pfd, 1, (int)(timeout * 1000));
        } while (r < 0 && errno == EINTR);
        close(pidfd);
        if (r == 0) {
            kill(pid, SIGKILL);
            wait_child(pid, &status);
            snprintf(detail, (size_t)detail_size, "timed out after %llds", timeout);
            return 1;
        }
    }
    int r = wait_child(pid, &status);
    if (r < 0)
        return r;
    if (WIFSIGNALED(status)) {
        snprintf(detail, (size_t)detail_size, "killed by signal %d", WTERMSIG(status));
        return 1;
    }
    if (WEXITSTATUS(status) != 0) {
        snprintf(detail, (size_t)detail_size, "exit status %d", WEXITSTATUS(status));
        return 1;
    }
    return 0;
}
