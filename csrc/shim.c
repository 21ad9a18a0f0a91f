/* pyoci's executor: runs a plan that Python resolved, in a child process that never returns to Python.
 *
 * Why C: the child joins the container's cgroup and namespaces before execve; Python there would be
 * charged to the container's memory limit and is not safe to resume after a raw clone. Every step
 * either succeeds or reports its index, errno and a short detail on the sync socket, then exits. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/bpf.h>
#include <seccomp.h>

#include "shim.h"
#include "trampoline_elf.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static int sync_fd = -1;
static int root_fd = -1;
static char root_path[4096];
static char exec_path[4096];
static int cur_step = -1;
static int tramp_fd = -1;      /* sealed memfd holding the exec trampoline (see trampoline.c) */
static int seccomp_loaded;
static int born_in_cgroup;     /* clone3 started us in the v2 cgroup (CLONE_INTO_CGROUP) */
/* The parent's go-ahead after the mounts carries the state JSON for the in-container hooks:
 * "created" state, NUL, "running" state. */
static char hook_states[65536];
static size_t hook_states_len;

/* data and one file descriptor (SCM_RIGHTS) in one message. */
static int send_with_fd(int sock, const void *data, size_t len, int fd)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    int r;
    while ((r = (int)sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return r;
}

/* A sync message carrying a fd: sendmsg is the one call a notify filter may not catch. */
static void send_fd_msg(int type, int fd)
{
    struct pyoci_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.step = cur_step;
    if (send_with_fd(sync_fd, &m, sizeof m, fd) < 0)
        _exit(1);
}

static void send_msg(int type, int err, int pid, const char *fmt, ...)
{
    struct pyoci_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.step = cur_step;
    m.err = err;
    m.pid = pid;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m.detail, sizeof m.detail, fmt, ap);
        va_end(ap);
    }
    while (send(sync_fd, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* Reports the failing step and ends the process: a half-built container must never run. */
static void __attribute__((noreturn)) fail(int err, const char *fmt, ...)
{
    char detail[240] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    send_msg(PYOCI_MSG_ERROR, err, 0, "%s", detail);
    _exit(1);
}

static void wait_go(void)
{
    ssize_t n;
    do {
        n = read(sync_fd, hook_states, sizeof hook_states - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 1 || hook_states[0] != 0)
        _exit(1); /* the parent gave up: it reports the reason itself */
    if (n > 1) {
        hook_states_len = (size_t)n;
        hook_states[n] = '\0';
    }
}

static const char *hook_state(int which)
{
    if (hook_states_len == 0)
        return "";
    const char *s = hook_states + 1;
    if (which == 1)
        s += strlen(s) + 1;
    return s < hook_states + hook_states_len ? s : "";
}

static int open_path(int dirfd, const char *path, int flags, unsigned long long resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags | O_CLOEXEC;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Opens (creating if asked) a path inside the root, never following a symlink out of it. */
static int open_in_root(const char *path, int create, int as_file)
{
    const unsigned long long res = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd = open_path(root_fd, path, O_PATH, res);
    if (fd >= 0 || errno != ENOENT || !create)
        return fd;
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        int last = (*p == '\0');
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        int cfd = open_path(root_fd, buf, O_PATH, res);
        if (cfd < 0 && errno == ENOENT) {
            char *slash = strrchr(buf, '/');
            *slash = '\0';
            int pfd = open_path(root_fd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY, res);
            *slash = '/';
            if (pfd < 0)
                return -1;
            int r;
            if (last && as_file) {
                r = mknodat(pfd, slash + 1, S_IFREG | 0644, 0);
            } else {
                r = mkdirat(pfd, slash + 1, 0755);
            }
            close(pfd);
            if (r < 0 && errno != EEXIST)
                return -1;
            cfd = open_path(root_fd, buf, O_PATH, res);
        }
        if (cfd < 0)
            return -1;
        if (last)
            return cfd;
        close(cfd);
        *p = '/';
    }
}

/* The directory that will hold path's last component (made if missing), resolved inside the root. */
static int open_parent_in_root(const char *path, const char **name)
{
    const char *slash = strrchr(path, '/');
    char parent[4096];
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
    int pfd = open_in_root(parent[0] ? parent : "/", 1, 0);
    if (pfd < 0)
        fail(errno, "open parent");
    *name = slash + 1;
    return pfd;
}

static void fd_path(char *out, size_t size, int fd)
{
    snprintf(out, size, "/proc/self/fd/%d", fd);
}

/* Flags a remount must keep or the kernel refuses it (locked in a user namespace). */
static unsigned long locked_flags(const char *target)
{
    struct statvfs st;
    unsigned long f = 0;
    if (statvfs(target, &st) < 0)
        return 0;
    if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) f |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (st.f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

static int remount(const char *target, unsigned long flags)
{
    if (mount(NULL, target, NULL, flags, NULL) == 0)
        return 0;
    if (errno != EPERM)
        return -1;
    return mount(NULL, target, NULL, flags | locked_flags(target), NULL);
}

/* Where a destination resolved (symlinks followed inside the root): never the root itself, and inside /proc
 * only the very path the config named (which the runtime checked against runc's list); with exact, nowhere
 * but that path. */
static void check_destination(const char *fdpath, const char *dest, int exact)
{
    char real[4096];
    ssize_t n = readlink(fdpath, real, sizeof real - 1);
    if (n < 0)
        fail(errno, "resolve destination");
    real[n] = '\0';
    size_t rlen = strcmp(root_path, "/") == 0 ? 0 : strlen(root_path);
    if (strncmp(real, root_path, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
        fail(EXDEV, "destination resolves outside the rootfs (%s)", real);
    const char *rel = real[rlen] ? real + rlen : "/";
    if (strcmp(rel, dest) == 0)
        return;
    if (strcmp(rel, "/") == 0)
        fail(EINVAL, "destination resolves to the rootfs itself");
    if (strcmp(rel, "/proc") == 0 || strncmp(rel, "/proc/", 6) == 0)
        fail(EPERM, "destination resolves into /proc (%s)", rel);
    if (exact)
        fail(ELOOP, "must not go through a symlink (resolves to %s)", rel);
}

static void do_mount(const struct pyoci_step *s)
{
    char target[64];
    int fd = -1;
    const char *dst = s->s2;
    if (s->n4 != 1) {
        fd = open_in_root(s->s2, 1, (int)s->n1);
        if (fd < 0)
            fail(errno, "open destination");
        fd_path(target, sizeof target, fd);
        check_destination(target, s->s2, s->n4 == 2);
        dst = target;
    }
    const unsigned long kind = MS_BIND | MS_REMOUNT | MS_MOVE;
    if (s->fd >= 0) {
        int r = fd >= 0 ? (int)syscall(SYS_move_mount, s->fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                        : (int)syscall(SYS_move_mount, s->fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
        if (r < 0)
            fail(errno, "move_mount");
        close(s->fd);
    } else if (s->flags & MS_BIND) {
        if (mount(s->s1, dst, NULL, s->flags & (MS_BIND | MS_REC), NULL) < 0)
            fail(errno, "mount");
    } else if (s->s3 || (s->flags & kind)) {
        if (mount(s->s1, dst, s->s3, s->flags, s->s4) < 0)
            fail(errno, "mount");
    }
    if (fd >= 0) {
        /* The path now leads to the new mount; the old fd still points under it. */
        close(fd);
        fd = open_in_root(s->s2, 0, 0);
        if (fd < 0)
            fail(errno, "reopen destination");
        fd_path(target, sizeof target, fd);
        dst = target;
    }
    unsigned long extra = s->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if ((s->flags & MS_BIND) && extra && remount(dst, MS_BIND | MS_REMOUNT | extra) < 0)
        fail(errno, "remount bind");
    if (s->flags2 && mount(NULL, dst, NULL, s->flags2, NULL) < 0)
        fail(errno, "set propagation");
    if (s->n2 || s->n3) {
        struct mount_attr attr = { .attr_set = (unsigned long long)s->n2, .attr_clr = (unsigned long long)s->n3 };
        if (syscall(SYS_mount_setattr, fd >= 0 ? fd : AT_FDCWD, fd >= 0 ? "" : dst,
                    AT_RECURSIVE | (fd >= 0 ? AT_EMPTY_PATH : 0), &attr, sizeof attr) < 0)
            fail(errno, "mount_setattr");
    }
    if (fd >= 0)
        close(fd);
}

static void set_root(const char *path)
{
    if (root_fd >= 0)
        close(root_fd);
    root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        fail(errno, "open rootfs");
    snprintf(root_path, sizeof root_path, "%s", path);
}

static void do_pivot(int no_pivot)
{
    if (fchdir(root_fd) < 0)
        fail(errno, "chdir rootfs");
    if (no_pivot == 2) {
        /* the runtime's own mount namespace: chroot only, the host's mount table keeps its root */
        if (chroot(".") < 0)
            fail(errno, "chroot");
    } else if (no_pivot) {
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
            fail(errno, "move rootfs");
        if (chroot(".") < 0)
            fail(errno, "chroot");
    } else {
        int old_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (old_root < 0)
            fail(errno, "open old root");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            fail(errno, "pivot_root");
        /* The old root sits on top of the new one. Stand on it (not on the new root, which "." may still
         * name), make its tree slave so that nothing of ours reaches the host, and detach it. */
        if (fchdir(old_root) < 0)
            fail(errno, "chdir old root");
        close(old_root);
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
            fail(errno, "make old root slave");
        if (umount2(".", MNT_DETACH) < 0)
            fail(errno, "unmount old root");
    }
    if (chdir("/") < 0)
        fail(errno, "chdir /");
    close(root_fd);
    root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* A device node of ours at the path: whatever the image has there (a symlink to a host file, say) is replaced,
 * and the mode comes from mknod itself, so no chmod can follow a link out of the root. */
static void do_mknod(const struct pyoci_step *s)
{
    const char *name;
    int pfd = open_parent_in_root(s->s2, &name);
    mode_t old = umask(0);
    int r = mknodat(pfd, name, (mode_t)s->n1, (dev_t)s->n2);
    if (r < 0 && errno == EEXIST) {
        if (unlinkat(pfd, name, 0) < 0)
            fail(errno, "remove what the rootfs has there");
        r = mknodat(pfd, name, (mode_t)s->n1, (dev_t)s->n2);
    }
    umask(old);
    if (r < 0)
        fail(errno, "mknod");
    if (fchownat(pfd, name, (uid_t)s->n3, (gid_t)s->n4, AT_SYMLINK_NOFOLLOW) < 0)
        fail(errno, "chown");
    close(pfd);
}

/* Binds the container's /dev/null over a file, having checked it is the null device: an image could make it
 * a link to a file it wants to write through the masked path (CVE-2025-31133). The checked fd is what gets
 * bound, so the path cannot be swapped in between. */
static int mask_file(const char *path)
{
    int fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open /dev/null");
    struct stat st;
    if (fstat(fd, &st) < 0)
        fail(errno, "stat /dev/null");
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
        fail(EPERM, "/dev/null is not the null device");
    int tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0)
        fail(errno, "open_tree /dev/null");
    int r = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH);
    close(tree);
    close(fd);
    return r;
}

static void do_mask(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return;
        fail(errno, "stat");
    }
    int r;
    if (S_ISDIR(st.st_mode))
        r = mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k,mode=0555");
    else if (S_ISLNK(st.st_mode))
        return; /* masking a symlink would mount over whatever it points at */
    else
        r = mask_file(path);
    if (r < 0)
        fail(errno, "mount");
}

static void do_readonly(const char *path, int how)
{
    int must_exist = how & 1, in_place = how & 2;
    if (!in_place && mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT && !must_exist)
            return;
        fail(errno, "bind");
    }
    if (remount(path, MS_BIND | MS_REMOUNT | MS_RDONLY) < 0)
        fail(errno, "remount read-only");
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static void do_write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open");
    size_t len = strlen(data);
    if (write(fd, data, len) != (ssize_t)len)
        fail(errno, "write");
    close(fd);
}

/* Joining a cgroup by writing its pid to cgroup.procs makes the kernel take the cgroup threadgroup lock for
 * writing, which waits for an RCU grace period: 10-20 ms on this kind of machine, per create. A v1 hierarchy
 * lets a thread move just itself through `tasks` without that lock, and this process has one thread; v2
 * has no such file, so spawn starts us in the v2 cgroup instead and cgroup.procs is only the fallback. */
static void do_join_cgroup(const struct pyoci_step *s)
{
    char path[4096];
    if (s->n1 && born_in_cgroup)
        return;
    if (snprintf(path, sizeof path, "%s/%s", s->s1, s->n1 ? "cgroup.procs" : "tasks") >= (int)sizeof path)
        fail(ENAMETOOLONG, "cgroup path");
    do_write_file(path, "0");
}

/* A sealed, executable in-memory copy of the trampoline: what /proc/self/exe is when the container's
 * program path is resolved, instead of the host's python3. */
static int make_trampoline(void)
{
    int fd = memfd_create("pyoci-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel older than MFD_EXEC: memfds are executable anyway */
        fd = memfd_create("pyoci-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (write(fd, trampoline_elf, sizeof trampoline_elf) != (ssize_t)sizeof trampoline_elf ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int err = errno ? errno : EIO;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* execve(path) by way of the trampoline, so nothing the container names can resolve to our own binary.
 * Returns only on failure. A seccomp filter that refuses execveat leaves only the direct execve. */
static void exec_program(const char *path, char **argv, char **envp)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    char *args[argc + 2];
    args[0] = (char *)path;
    memcpy(args + 1, argv, (size_t)(argc + 1) * sizeof *argv);
    syscall(SYS_execveat, tramp_fd, "", args, envp, AT_EMPTY_PATH);
    if (seccomp_loaded && (errno == EPERM || errno == ENOSYS))
        execve(path, argv, envp);
}

/* process.cwd, resolved inside the container's root: no magic link (/proc/self/fd/N, CVE-2024-21626) and no
 * symlink can lead the process to a directory of the host. */
static void do_chdir(const char *path)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        fail(errno, "open /");
    int fd = open_path(root, path, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
        /* A seccomp profile older than openat2 refuses it (runtime-tools' and many images' do): chdir as
           runc does, then make sure the result is inside the root, which getcwd cannot name otherwise. */
        close(root);
        if (chdir(path) < 0)
            fail(errno, "chdir");
        char buf[4096];
        if (!getcwd(buf, sizeof buf) && errno == ENOENT)
            fail(ENOENT, "chdir: %s is outside the container", path);
        return;
    }
    if (fd < 0)
        fail(errno, "chdir");
    if (fchdir(fd) < 0)
        fail(errno, "chdir");
    close(fd);
    close(root);
}

static void do_hook(const struct pyoci_step *s)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        fail(errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        fail(errno, "fork");
    if (pid == 0) {
        dup2(p[0], 0);
        exec_program(s->s1, s->argv, s->envp);
        _exit(127);
    }
    close(p[0]);
    signal(SIGPIPE, SIG_IGN); /* a hook need not read its stdin */
    const char *state = hook_state((int)s->n2);
    write_all(p[1], state, strlen(state));
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0 && s->n1 > 0) {
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
        int r;
        do {
            r = poll(&pfd, 1, (int)(s->n1 * 1000));
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail(ETIMEDOUT, "timed out after %llds", s->n1);
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail(errno, "wait");
    if (pidfd >= 0)
        close(pidfd);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fail(0, "exit status %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        fail(0, "killed by signal %d", WTERMSIG(status));
}

/* runc's console protocol: one message on the socket with the pty master (SCM_RIGHTS) and its name. */
static void do_console(const struct pyoci_step *s)
{
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        fail(errno, "open /dev/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        fail(errno, "unlockpt");
    int ptn;
    if (ioctl(master, TIOCGPTN, &ptn) < 0)
        fail(errno, "ptsname");
    if (s->n1 > 0 && s->n2 > 0) {
        struct winsize ws = { .ws_row = (unsigned short)s->n1, .ws_col = (unsigned short)s->n2 };
        ioctl(master, TIOCSWINSZ, &ws);
    }
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0)
        fail(errno, "open pty peer");
    char name[64];
    int nlen = snprintf(name, sizeof name, "/dev/pts/%d", ptn);
    if (send_with_fd(s->fd, name, (size_t)nlen, master) < 0)
        fail(errno, "send to console socket");
    close(master);
    close(s->fd);
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        fail(errno, "set controlling terminal");
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            fail(errno, "dup2");
    if (slave > 2)
        close(slave);
}

/* A user namespace whose gid_map an unprivileged runtime wrote has setgroups denied. */
static int setgroups_denied(void)
{
    char buf[8] = "";
    int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n >= 4 && strncmp(buf, "deny", 4) == 0;
}

static void do_user(const struct pyoci_step *s)
{
    if (s->n3) {
        gid_t groups[256];
        int n = s->nlist > 256 ? 256 : s->nlist;
        for (int i = 0; i < n; i++)
            groups[i] = (gid_t)s->list[i];
        if (setgroups((size_t)n, groups) < 0) {
            int err = errno;
            /* Nothing to set and not allowed to: keep the groups the runtime came with, as runc does. */
            if (err == EPERM && setgroups_denied()) {
                if (n > 0)
                    fail(err, "setgroups: denied in this user namespace (mapped without newgidmap)");
            } else {
                fail(err, "setgroups");
            }
        }
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        fail(errno, "keep capabilities");
    if (setresgid((gid_t)s->n2, (gid_t)s->n2, (gid_t)s->n2) < 0)
        fail(errno, "setgid");
    if (setresuid((uid_t)s->n1, (uid_t)s->n1, (uid_t)s->n1) < 0)
        fail(errno, "setuid");
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

static void do_drop_bounding(unsigned long long keep)
{
    for (int cap = 0; cap <= 63; cap++) {
        if (keep & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)  /* past the kernel's last capability: so is every higher one */
                break;
            fail(errno, "drop bounding capability %d", cap);
        }
    }
}

static void do_caps(const struct pyoci_step *s)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        data[i].effective = (unsigned int)(s->list[0] >> (32 * i));
        data[i].permitted = (unsigned int)(s->list[1] >> (32 * i));
        data[i].inheritable = (unsigned int)(s->list[2] >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        fail(errno, "capset");
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int cap = 0; cap <= 63; cap++)
        if ((s->list[3] & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            fail(errno, "raise ambient capability %d", cap);
}

static const char *env_path(char **envp)
{
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            return *e + 5;
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Resolved at create time, like runc, so a missing binary fails `create` with a clear message. */
static void do_find_exec(const char *arg0, char **envp)
{
    if (strchr(arg0, '/')) {
        if (!executable(arg0))
            fail(errno ? errno : EACCES, "exec: \"%s\": %s", arg0, strerror(errno ? errno : EACCES));
        snprintf(exec_path, sizeof exec_path, "%s", arg0);
        return;
    }
    const char *p = env_path(envp);
    while (*p) {
        const char *end = strchrnul(p, ':');
        int len = (int)(end - p);
        snprintf(exec_path, sizeof exec_path, "%.*s%s%s", len, p, len ? "/" : "", arg0);
        if (executable(exec_path))
            return;
        p = *end ? end + 1 : end;
    }
    fail(ENOENT, "exec: \"%s\": executable file not found in $PATH", arg0);
}

static void do_wait_fifo(int fd)
{
    char c;
    ssize_t n;
    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(1);
}

static void run_step(const struct pyoci_step *s)
{
    switch (s->op) {
    case PYOCI_OP_SYNC:
        send_msg((int)s->n1, 0, 0, NULL);
        if (s->n2)
            wait_go();
        break;
    case PYOCI_OP_SETNS:
        if (setns(s->fd, (int)s->n1) < 0)
            fail(errno, "setns");
        close(s->fd);
        break;
    case PYOCI_OP_UNSHARE:
        if (unshare((int)s->flags) < 0)
            fail(errno, "unshare");
        break;
    case PYOCI_OP_FORK: {
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT, NULL, NULL, NULL, NULL);
        if (pid < 0)
            fail(errno, "fork");
        if (pid > 0) {
            send_msg(PYOCI_MSG_PID, 0, pid, NULL);
            _exit(0);
        }
        /* The container's init outlives `create`, but not a `create` that dies before it is ready. */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        break;
    }
    case PYOCI_OP_KEYRING:
        /* A kernel without keyrings (ENOSYS) has nothing to isolate. */
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, s->s1) < 0 && errno != ENOSYS)
            fail(errno, "join session keyring");
        break;
    case PYOCI_OP_SECCOMP: {
        /* struct sock_filter is 8 bytes: the plan carries one per 64-bit list entry. */
        struct sock_fprog prog = { .len = (unsigned short)s->nlist, .filter = (struct sock_filter *)s->list };
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)s->n1, &prog);
        if (r < 0)
            fail(errno, "load seccomp filter");
        seccomp_loaded = 1;
        if (s->n1 & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
            send_fd_msg(PYOCI_MSG_SECCOMP_FD, (int)r);
            close((int)r);
            wait_go();
        }
        break;
    }
    case PYOCI_OP_DUMPABLE:
        if (prctl(PR_SET_DUMPABLE, (int)s->n1, 0, 0, 0) < 0)
            fail(errno, "prctl dumpable");
        break;
    case PYOCI_OP_PDEATHSIG:
        prctl(PR_SET_PDEATHSIG, (int)s->n1, 0, 0, 0);
        break;
    case PYOCI_OP_WRITE_FILE:
        do_write_file(s->s1, s->s2);
        break;
    case PYOCI_OP_SETSID:
        if (setsid() < 0)
            fail(errno, "setsid");
        break;
    case PYOCI_OP_MOUNT:
        do_mount(s);
        break;
    case PYOCI_OP_SET_ROOT:
        set_root(s->s1);
        break;
    case PYOCI_OP_MKNOD:
        do_mknod(s);
        break;
    case PYOCI_OP_SYMLINK: {
        const char *name;
        int pfd = open_parent_in_root(s->s2, &name);
        if (s->n1 && unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
            fail(errno, "remove");
        if (symlinkat(s->s1, pfd, name) < 0 && errno != EEXIST)
            fail(errno, "symlink");
        close(pfd);
        break;
    }
    case PYOCI_OP_PIVOT:
        do_pivot((int)s->n1);
        break;
    case PYOCI_OP_MASK:
        do_mask(s->s1);
        break;
    case PYOCI_OP_READONLY:
        do_readonly(s->s1, (int)s->n1);
        break;
    case PYOCI_OP_HOSTNAME:
        if (sethostname(s->s1, strlen(s->s1)) < 0)
            fail(errno, "sethostname");
        break;
    case PYOCI_OP_DOMAINNAME:
        if (setdomainname(s->s1, strlen(s->s1)) < 0)
            fail(errno, "setdomainname");
        break;
    case PYOCI_OP_HOOK:
        do_hook(s);
        break;
    case PYOCI_OP_CONSOLE:
        do_console(s);
        break;
    case PYOCI_OP_RLIMIT: {
        struct rlimit rl = { .rlim_cur = (rlim_t)s->n2, .rlim_max = (rlim_t)s->n3 };
        if (setrlimit((int)s->n1, &rl) < 0)
            fail(errno, "setrlimit");
        break;
    }
    case PYOCI_OP_PERSONALITY:
        if (personality((unsigned long)s->n1) < 0)
            fail(errno, "personality");
        break;
    case PYOCI_OP_DROP_BOUNDING:
        do_drop_bounding((unsigned long long)s->n1);
        break;
    case PYOCI_OP_USER:
        do_user(s);
        break;
    case PYOCI_OP_CAPS:
        do_caps(s);
        break;
    case PYOCI_OP_NO_NEW_PRIVS:
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            fail(errno, "prctl");
        break;
    case PYOCI_OP_CHDIR:
        do_chdir(s->s1);
        break;
    case PYOCI_OP_UMASK:
        umask((mode_t)s->n1);
        break;
    case PYOCI_OP_CLOSE_FROM:
        if (syscall(SYS_close_range, (unsigned int)s->n1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
            fail(errno, "close_range");
        break;
    case PYOCI_OP_FIND_EXEC:
        do_find_exec(s->s1, s->envp);
        break;
    case PYOCI_OP_WAIT_FIFO:
        do_wait_fifo(s->fd);
        break;
    case PYOCI_OP_EXEC:
        exec_program(exec_path, s->argv, s->envp);
        fail(errno, "exec: \"%s\": %s", exec_path, strerror(errno));
    case PYOCI_OP_JOIN_CGROUP:
        do_join_cgroup(s);
        break;
    case PYOCI_OP_SET_ROOT_PROPAGATION:
        if (mount(NULL, "/", NULL, s->flags, NULL) < 0)
            fail(errno, "set propagation of /");
        break;
    default:
        fail(EINVAL, "unknown step %d", s->op);
    }
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
static pid_t clone_child(const char *cgroup_v2)
{
    int cgroup_fd = cgroup_v2 ? open(cgroup_v2, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (cgroup_fd >= 0) {
        struct pyoci_clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
                                         .cgroup = (unsigned long long)cgroup_fd };
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        close(cgroup_fd);
        if (pid >= 0) {
            born_in_cgroup = pid == 0;
            return pid;
        }
    }
    return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

int pyoci_spawn(const struct pyoci_step *steps, int nsteps, int fd, const char *cgroup_v2)
{
    tramp_fd = make_trampoline();
    if (tramp_fd < 0)
        return -errno;
    pid_t pid = clone_child(cgroup_v2);
    if (pid != 0) {
        int err = errno;
        close(tramp_fd);
        return pid < 0 ? -err : pid;
    }
    sync_fd = fd;
    /* Not dumpable until execve: nothing in the container may open our /proc/<pid>/exe. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int i = 0; i < NSIG; i++)
        signal(i, SIG_DFL);
    for (cur_step = 0; cur_step < nsteps; cur_step++)
        run_step(&steps[cur_step]);
    _exit(0);
}

/* For the mounts a container without its own mount namespace left on the host. */
int pyoci_umount_lazy(const char *target)
{
    return umount2(target, MNT_DETACH) < 0 ? -errno : 0;
}

int pyoci_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)
{
    return mount(source, target, fstype, flags, data) < 0 ? -errno : 0;
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

int pyoci_idmapped_tree(const char *src, int userns_fd, int tree_rec, int idmap_rec, int *stage)
{
    *stage = 0;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (tree_rec ? AT_RECURSIVE : 0));
    if (fd < 0)
        return -errno;
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
