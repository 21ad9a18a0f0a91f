/* What executor.c and host.c share (not part of the cffi interface in shim.h), and trampoline.c its marks. */
#ifndef PYOCI_INTERNAL_H
#define PYOCI_INTERNAL_H

/* argv[0] of a start through the trampoline: what tells it from a container that runs /proc/self/exe (the
 * trampoline itself while the container starts), which is refused in these words. */
#define TRAMPOLINE_MARK "pyoci-exec-trampoline"
#define TRAMPOLINE_REFUSAL "the runtime's exec trampoline, which runs no program of its own (CVE-2019-5736)"

/* execve(path) by way of the sealed trampoline in tramp_fd (see trampoline.c), so that nothing the container
 * names can resolve to the runtime's own binary; tramp_fd < 0 (the host): a plain execve. Returns only on
 * failure, with errno set. */
void exec_program(int tramp_fd, const char *path, char **argv, char **envp);

/* Runs a hook to its end; see pyoci_run_hook in shim.h. The executor passes its trampoline. */
int hook_run(const char *path, char **argv, char **envp, int stdin_fd, long long timeout, const char *dir, int tramp_fd,
             char *detail, int detail_size);

#endif
