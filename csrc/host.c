/* Helpers the runtime calls in its own process, on the host: mounts it makes or takes down itself, files it
 * reads from a rootfs, the cgroup v2 device filter, seccomp compilation, hooks, and sockets in a container's
 * network namespace. Nothing here runs in a container. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"
#include "internal.h"

/* For the mounts a container without its own mount namespace left on the host. */
int pyoci_umount_lazy(const char *target)
{
    return umount2(target, MNT_DETACH) < 0 ? -errno : 0;
}

int pyoci_exchange(const char *a, const char *b)
{
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0 ? -errno : 0;
}

int pyoci_mount_from(int dir_fd, const char *source, const char *target, const char *fstype,
                     unsigned long flags, const char *data)
{
    /* The child's cwd is its own (no CLONE_FS): the caller's stays where it was. */
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        _exit(fchdir(dir_fd) < 0 || mount(source, target, fstype, flags, data) < 0 ? errno : 0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
}

int pyoci_open_in_root(const char *root, const char *path)
{
    int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return -errno;
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
    int err = errno;
    close(root_fd);
    return fd < 0 ? -err : fd;
}

int pyoci_run_hook(const char *path, char **argv, char **envp, int stdin_fd, long long timeout, const char *dir,
                   char *detail, int detail_size)
{
    return hook_run(path, argv, envp, stdin_fd, timeout, dir, detail, detail_size);
}

/* 1 if every entry of dir has a d_type, 0 if one is DT_UNKNOWN (overlay cannot work there), or -errno. */
int pyoci_supports_dtype(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int ok = 1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_UNKNOWN)
            ok = 0;
    closedir(d);
    return ok;
}

int pyoci_socket_in_netns(int netns_fd, int domain, int type, int protocol)
{
    /* setns(CLONE_NEWNET) moves this thread only: the others (and Python's) never see the other namespace */
    int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0)
        return -errno;
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        int err = errno;
        close(own);
        return -err;
    }
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    int err = errno;
    if (setns(own, CLONE_NEWNET) < 0)
        abort(); /* a thread stranded in a container's namespace must not go on */
    close(own);
    return fd < 0 ? -err : fd;
}

int pyoci_mount_tree(const char *src, int userns_fd, int tree_rec, int idmap_rec, int *stage)
{
    *stage = 0;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (tree_rec ? AT_RECURSIVE : 0));
    if (fd < 0 || userns_fd < 0)
        return fd < 0 ? -errno : fd;
    *stage = 1;
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)userns_fd };
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (idmap_rec ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int pyoci_device_filter_attach(const char *insns, int len, const char *cgroup_dir, char *log, int log_size)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (unsigned long)insns;
    attr.insn_cnt = (unsigned)len / sizeof(struct bpf_insn);
    attr.license = (unsigned long)"Apache-2.0";
    int prog = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    if (prog < 0) {
        /* Again with the verifier's log (not the first time: a log that overflows fails the load). */
        int err = errno;
        attr.log_buf = (unsigned long)log;
        attr.log_size = log_size;
        attr.log_level = 1;
        int again = log_size > 0 ? syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr) : -1;
        if (again >= 0) {
            close(again);
            log[0] = 0; /* loaded the second time: nothing to explain */
        }
        return -err;
    }
    int dir = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        int err = errno;
        close(prog);
        return -err;
    }
    memset(&attr, 0, sizeof attr);
    attr.target_fd = dir;
    attr.attach_bpf_fd = prog;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    int r = syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0 ? -errno : 0;
    close(dir);
    close(prog); /* the attachment holds its own reference; the cgroup's removal drops it */
    return r;
}

int pyoci_seccomp_compile(unsigned int default_action, const char **arches, int narches,
                          const struct pyoci_scmp_rule *rules, int nrules, int out_fd, int *failed)
{
    int r = 0;
    *failed = -1;
    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx)
        return -EINVAL;
    for (int i = 0; i < narches; i++) {
        uint32_t arch = seccomp_arch_resolve_name(arches[i]);
        if (arch == 0) {
            r = -EINVAL;
            goto out;
        }
        r = seccomp_arch_add(ctx, arch);
        if (r < 0 && r != -EEXIST)
            goto out;
        r = 0;
    }
    for (int i = 0; i < nrules; i++) {
        int nr = seccomp_syscall_resolve_name(rules[i].name);
        if (nr == __NR_SCMP_ERROR)
            continue;
        struct scmp_arg_cmp cmp[6];
        for (int a = 0; a < rules[i].nargs; a++) {
            cmp[a].arg = rules[i].args[a].index;
            cmp[a].op = (enum scmp_compare)rules[i].args[a].op;
            cmp[a].datum_a = rules[i].args[a].value;
            cmp[a].datum_b = rules[i].args[a].value_two;
        }
        r = seccomp_rule_add_array(ctx, rules[i].action, nr, (unsigned int)rules[i].nargs, cmp);
        if (r < 0) {
            *failed = i;
            goto out;
        }
    }
    r = seccomp_export_bpf(ctx, out_fd);
out:
    seccomp_release(ctx);
    return r;
}

int pyoci_seccomp_last_syscall(const char *arch, const char **names, int nnames, unsigned int *audit_arch)
{
    uint32_t token = arch ? seccomp_arch_resolve_name(arch) : seccomp_arch_native();
    if (token == 0)
        return -EINVAL;
    *audit_arch = token == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : token;
    int last = 0;
    for (int i = 0; i < nnames; i++) {
        int nr = seccomp_syscall_resolve_name_arch(token, names[i]);  /* < 0: not a syscall of this arch */
        if (nr > last)
            last = nr;
    }
    return last;
}
