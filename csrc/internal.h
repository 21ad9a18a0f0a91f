/* What executor.c, spawn.c and host.c share (not part of the cffi interface in shim.h). */
#ifndef PYOCI_INTERNAL_H
#define PYOCI_INTERNAL_H

/* Runs a hook to its end; see pyoci_run_hook in shim.h. The executor's run where they are (dir NULL). */
int hook_run(const char *path, char **argv, char **envp, int stdin_fd, long long timeout, const char *dir,
             char *detail, int detail_size);

/* argv[0] of the executor as spawn.c starts it: what tells it from a container whose program is
 * /proc/self/exe (this very copy while the container starts: executor.c), which is refused in these words. */
#define EXECUTOR_MARK "pyoci-executor"
#define EXECUTOR_REFUSAL "the runtime's executor, which runs no program of its own (CVE-2019-5736)"

/* How spawn.c hands a plan to the executor program: a memfd holding this header, nrelocs offsets and then
 * the plan's size bytes (shim.py's layout: the step array, then everything the steps point to). Each offset
 * names a pointer in the plan, which holds the offset in the plan of what it points to; the executor adds
 * the address where the plan landed in its own memory. */
#define PYOCI_PLAN_MAGIC 0x6e616c7069636f79ULL /* "yocipln" */
struct pyoci_plan_header {
    unsigned long long magic;
    unsigned long long size;
    unsigned long long nsteps;
    unsigned long long nrelocs;
};

#endif
