/* pyoci's executor: runs a plan that Python resolved; the only code that runs inside the container before
 * its program.
 *
 * Why C: the child joins the container's cgroup and namespaces before execve; Python there would be
 * charged to the container's memory limit and is not safe to resume after a raw clone. Every step either
 * succeeds or reports its index, errno and detail on the sync socket (shim.h draws the protocol) and exits.
 * Decisions are the plan's: what to do is in the steps, never rediscovered here.
 *
 * Why a program of its own (static, no library mapped), which spawn.c starts from a sealed memfd in a child
 * of the runtime before any step: a clone of the runtime would be the host's pyoci binary, CPython linked
 * in, with its libraries mapped and the caller's fds open. A process of the container given CAP_SYS_PTRACE
 * may open /proc/<pid>/exe, map_files and fd of any process in its pid namespace, dumpable or not, and
 * re-open what it got for writing once we are gone (CVE-2019-5736). This program's exe and only mapping is
 * the sealed copy, so that is all such a process can reach; /proc/self/exe, for the container's program and
 * its hooks, is that copy too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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
#include <termios.h>
#include <unistd.h>

#include "shim.h"
#include "internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
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
static const struct pyoci_step *first_step, *cur_step;
static int born_in_cgroup;     /* spawn's clone3 started us in the v2 cgroup (CLONE_INTO_CGROUP) */
static int chdir_pending;      /* the first chdir attempt was denied: the second, as the user, is due */
/* The stdin of the hooks run here: the "created" and "running" states, sealed memfds from the runtime's
 * go-ahead after MOUNTED. */
static int state_fds[2] = { -1, -1 };

/* A message and up to two fds (SCM_RIGHTS); sendmsg is the one call a notify filter may not catch. */
static int send_parts(int sock, const void *head, size_t head_len, const void *body, size_t body_len, int fd)
{
    struct iovec iov[2] = { { .iov_base = (void *)head, .iov_len = head_len },
                            { .iov_base = (void *)body, .iov_len = body_len } };
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = body_len ? 2 : 1 };
    if (fd >= 0) {
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    int r;
    while ((r = (int)sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return r;
}

/* A message and its detail text, however long (the heap holds what the stack cannot). An ERROR or WARNING
 * names its step first. */
static void send_message(int type, int err, int pid, int fd, const char *fmt, va_list ap)
{
    char stack[1024] = "";
    char *text = stack;
    int len = 0;
    if (type == PYOCI_MSG_ERROR || type == PYOCI_MSG_WARNING) {
        const char *what = cur_step && cur_step->what ? cur_step->what : "container init";
        int at = snprintf(stack, sizeof stack, "%s%s", what, fmt ? ": " : "");
        at = at >= (int)sizeof stack ? (int)sizeof stack - 1 : at;
        va_list again;
        va_copy(again, ap);
        len = fmt ? vsnprintf(stack + at, sizeof stack - (size_t)at, fmt, ap) : 0;
        len = (len < 0 ? 0 : len) + at;
        if (len >= (int)sizeof stack) {
            text = malloc((size_t)len + 1);
            if (text) {
                memcpy(text, stack, (size_t)at);
                vsnprintf(text + at, (size_t)(len - at) + 1, fmt, again);
            } else {
                text = stack, len = (int)sizeof stack - 1;
            }
        }
        va_end(again);
    }
    struct pyoci_msg m = { .type = type, .step = cur_step ? (int)(cur_step - first_step) : -1, .err = err,
                           .pid = pid, .len = len };
    if (send_parts(sync_fd, &m, sizeof m, text, (size_t)len, fd) < 0 && type != PYOCI_MSG_ERROR)
        _exit(1);  /* the runtime is gone: nobody would ever let this container run */
    if (text != stack)
        free(text);
}

static void send_msg(int type, int pid, int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_message(type, 0, pid, fd, fmt, ap);
    va_end(ap);
}

static void warn(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_message(PYOCI_MSG_WARNING, err, 0, -1, fmt, ap);
    va_end(ap);
}

/* Reports the failing step and ends the process: a half-built container must never run. */
static void __attribute__((noreturn)) fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_message(PYOCI_MSG_ERROR, err, 0, -1, fmt, ap);
    va_end(ap);
    _exit(1);
}

/* The runtime's go-ahead: one zero byte, and the hooks' states after MOUNTED. */
static void wait_go(void)
{
    char go = 1;
    struct iovec iov = { .iov_base = &go, .iov_len = 1 };
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    ssize_t n;
    do {
        n = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || go != 0)
        _exit(1); /* the runtime gave up: it reports the reason itself */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
            memcpy(state_fds, CMSG_DATA(c), 2 * sizeof(int));
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
            int r = last && as_file ? mknodat(pfd, slash + 1, S_IFREG | 0644, 0) : mkdirat(pfd, slash + 1, 0755);
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

/* Where a target resolved (symlinks followed inside the root): never the root itself, and inside /proc only
 * the very path the config named (which the runtime checked against runc's list); with exact, nowhere but
 * that path. */
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

static void do_mount(const struct pyoci_mount *m)
{
    char target[64];
    int fd = -1;
    const char *dst = m->target;
    unsigned long flags = (unsigned long)m->flags;
    if (m->where != PYOCI_HOST_PATH) {
        fd = open_in_root(m->target, 1, m->as_file);
        if (fd < 0)
            fail(errno, "open destination");
        fd_path(target, sizeof target, fd);
        check_destination(target, m->target, m->where == PYOCI_IN_ROOT_EXACT);
        dst = target;
    }
    const unsigned long kind = MS_BIND | MS_REMOUNT | MS_MOVE;
    /* MS_BIND without a source or a tree: a bind remount of the mount at the target (its per-mount flags). */
    int rebind = (flags & MS_BIND) && !m->source && m->tree_fd < 0;
    if (rebind) {
        if (remount(dst, flags | MS_REMOUNT) < 0)
            fail(errno, "remount");
    } else if (m->tree_fd >= 0) {
        int r = fd >= 0 ? (int)syscall(SYS_move_mount, m->tree_fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                        : (int)syscall(SYS_move_mount, m->tree_fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
        if (r < 0)
            fail(errno, "move_mount");
        close(m->tree_fd);
    } else if (flags & MS_BIND) {
        if (mount(m->source, dst, NULL, flags & (MS_BIND | MS_REC), NULL) < 0)
            fail(errno, "mount");
    } else if (m->fstype || (flags & kind)) {
        if (mount(m->source, dst, m->fstype, flags, m->data) < 0)
            fail(errno, "mount");
    }
    if (fd >= 0) {
        /* The path now leads to the new mount; the old fd still points under it. */
        close(fd);
        fd = open_in_root(m->target, 0, 0);
        if (fd < 0)
            fail(errno, "reopen destination");
        fd_path(target, sizeof target, fd);
        dst = target;
    }
    unsigned long extra = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if ((flags & MS_BIND) && !rebind && extra && remount(dst, MS_BIND | MS_REMOUNT | extra) < 0)
        fail(errno, "remount bind");
    if (m->propagation && mount(NULL, dst, NULL, (unsigned long)m->propagation, NULL) < 0)
        fail(errno, "set propagation");
    if (m->attr_set || m->attr_clr) {
        struct mount_attr attr = { .attr_set = (unsigned long long)m->attr_set,
                                   .attr_clr = (unsigned long long)m->attr_clr };
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

/* mountinfo's octal escapes (\040 for a space...) undone in place. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* Whether a mount at path is the root, inside it, or one the root sits on (which the move takes along). */
static int holds_root(const char *path)
{
    size_t n = strlen(path), r = strlen(root_path);
    if (strcmp(path, "/") == 0 || strcmp(path, root_path) == 0)
        return 1;
    if (n < r && strncmp(root_path, path, n) == 0 && root_path[n] == '/')
        return 1;
    return r < n && strncmp(path, root_path, r) == 0 && path[r] == '/';
}

/* --no-pivot moves the root onto "/" and chroots, which leaves the runtime's whole mount tree in the
 * container's mount namespace: out of reach of paths, but the kernel counts a procfs or sysfs there as fully
 * visible and lets a user namespace made in the container mount a new one (runc's msMoveRoot). So every
 * mount the root does not need is made a slave (nothing of this propagates to the host) and detached, the
 * deepest first; one the kernel will not detach (locked in a user namespace) is covered with an empty tmpfs. */
static void detach_outside_root(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        fail(errno, "read /proc/self/mountinfo");
    char **points = NULL, *line = NULL;
    size_t n = 0, cap = 0, len = 0;
    while (getline(&line, &len, f) > 0) {
        char *point = NULL;
        if (sscanf(line, "%*s %*s %*s %*s %ms", &point) != 1)
            continue;
        unescape(point);
        if (n == cap && !(points = realloc(points, (cap = cap ? 2 * cap : 256) * sizeof *points)))
            fail(ENOMEM, "read /proc/self/mountinfo");
        points[n++] = point;
    }
    free(line);
    fclose(f);
    while (n-- > 0) {
        const char *p = points[n];
        if (!holds_root(p)) {
            if (mount(NULL, p, NULL, MS_SLAVE | MS_REC, NULL) < 0 && errno != ENOENT && errno != EINVAL)
                fail(errno, "make %s a slave", p);
            if (umount2(p, MNT_DETACH) < 0) {
                if (errno != EINVAL && errno != EPERM) {
                    if (errno != ENOENT)
                        fail(errno, "detach %s", p);
                } else if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k") < 0) {
                    fail(errno, "cover %s", p);
                }
            }
        }
        free(points[n]);
    }
    free(points);
}

static void do_pivot(int how)
{
    if (fchdir(root_fd) < 0)
        fail(errno, "chdir rootfs");
    if (how == PYOCI_CHROOT) {
        if (chroot(".") < 0)
            fail(errno, "chroot");
    } else if (how == PYOCI_MOVE_CHROOT) {
        detach_outside_root();
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
    set_root("/");  /* mounts made after the pivot (a read-only /dev's remount) resolve in the new root */
}

/* A device node of ours at the path: whatever the image has there (a symlink to a host file, say) is replaced,
 * never written through. */
static void do_mknod(const struct pyoci_mknod *d)
{
    const char *name;
    int pfd = open_parent_in_root(d->path, &name);
    mode_t old = umask(0);
    int r = mknodat(pfd, name, (mode_t)d->mode, (dev_t)d->dev);
    if (r < 0 && errno == EEXIST) {
        if (unlinkat(pfd, name, 0) < 0)
            fail(errno, "remove what the rootfs has there");
        r = mknodat(pfd, name, (mode_t)d->mode, (dev_t)d->dev);
    }
    umask(old);
    if (r < 0)
        fail(errno, "mknod");
    if (fchownat(pfd, name, (uid_t)d->uid, (gid_t)d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        fail(errno, "chown");
    close(pfd);
}

static void do_symlink(const struct pyoci_symlink *l)
{
    const char *name;
    int pfd = open_parent_in_root(l->path, &name);
    if (l->replace && unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
        fail(errno, "remove");
    if (symlinkat(l->target, pfd, name) < 0 && errno != EEXIST)
        fail(errno, "symlink");
    close(pfd);
}

/* Binds the container's /dev/null over the file target_fd is, having checked it is the null device: an image
 * could make it a link to a file it wants to write through the masked path (CVE-2025-31133). The checked fd
 * is what gets bound, so the path cannot be swapped in between. */
static int mask_file(int target_fd)
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
    int r = (int)syscall(SYS_move_mount, tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    close(tree);
    close(fd);
    return r;
}

/* An empty read-only tmpfs over the directory target_fd is (the new mount API: no path, no /proc needed). */
static int mask_dir(int target_fd)
{
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0)
        return -1;
    int m = -1;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "0k", 0) == 0 &&
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0555", 0) == 0 &&
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
    int err = errno;
    close(fs);
    if (m < 0) {
        errno = err;
        return -1;
    }
    int r = (int)syscall(SYS_move_mount, m, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    err = errno;
    close(m);
    errno = err;
    return r;
}

/* What the path names, resolved inside the root (an image's symlink is followed there, as runc does, so a
 * link's target is what gets hidden, never skipped), is masked; a path that does not exist has nothing to
 * hide. */
static void do_mask(const char *path)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        fail(errno, "open /");
    struct stat st, root_st;
    if (fstat(root, &root_st) < 0)
        fail(errno, "stat /");
    int fd = open_path(root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    int err = errno;
    close(root);
    if (fd < 0 && err == ENOENT)
        return;
    if (fd < 0)
        fail(err, "open");
    if (fstat(fd, &st) < 0)
        fail(errno, "stat");
    if (st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino)
        fail(EINVAL, "resolves to the rootfs itself");
    if ((S_ISDIR(st.st_mode) ? mask_dir(fd) : mask_file(fd)) < 0)
        fail(errno, "mount");
    close(fd);
}

static void do_readonly(const struct pyoci_readonly *ro)
{
    if (!ro->in_place && mount(ro->path, ro->path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT && !ro->must_exist)
            return;
        fail(errno, "bind");
    }
    if (remount(ro->path, MS_BIND | MS_REMOUNT | MS_RDONLY) < 0)
        fail(errno, "remount read-only");
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
static void do_join_cgroup(const struct pyoci_join_cgroup *cg)
{
    char path[4096];
    if (cg->v2 && born_in_cgroup)
        return;
    if (snprintf(path, sizeof path, "%s/%s", cg->path, cg->v2 ? "cgroup.procs" : "tasks") >= (int)sizeof path)
        fail(ENAMETOOLONG, "cgroup path");
    do_write_file(path, "0");
}

/* process.cwd, resolved inside the container's root: no magic link (/proc/self/fd/N, CVE-2024-21626) and no
 * symlink can lead the process to a directory of the host. */
static void do_chdir(const struct pyoci_chdir *c)
{
    if (c->attempt == 2 && !chdir_pending)
        return;
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        fail(errno, "open /");
    int fd = open_path(root, c->path, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    close(root);
    int r = fd < 0 ? -1 : fchdir(fd);
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (r < 0 && c->attempt == 1 && (err == EACCES || err == EPERM)) {
        chdir_pending = 1;
        return;
    }
    if (r < 0)
        fail(err, "chdir");
    chdir_pending = 0;
}

static void do_hook(const struct pyoci_hook *h)
{
    char detail[256];
    int r = hook_run(h->path, h->argv, h->envp, state_fds[h->state], h->timeout, NULL, detail, sizeof detail);
    if (r < 0)
        fail(-r, NULL);
    if (r > 0)
        fail(0, "%s", detail);
}

/* runc's console protocol: one message on the socket with the pty master (SCM_RIGHTS) and its name. */
static void do_console(const struct pyoci_console *c)
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
    if (c->rows > 0 && c->cols > 0) {
        struct winsize ws = { .ws_row = (unsigned short)c->rows, .ws_col = (unsigned short)c->cols };
        ioctl(master, TIOCSWINSZ, &ws);
    }
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0)
        fail(errno, "open pty peer");
    char name[64];
    int nlen = snprintf(name, sizeof name, "/dev/pts/%d", ptn);
    if (send_parts(c->socket_fd, name, (size_t)nlen, NULL, 0, master) < 0)
        fail(errno, "send to console socket");
    close(master);
    close(c->socket_fd);
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        fail(errno, "set controlling terminal");
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            fail(errno, "dup2");
    if (slave > 2)
        close(slave);
}

static void do_user(const struct pyoci_user *u)
{
    if (u->setgroups) {
        gid_t groups[u->groups.n > 0 ? u->groups.n : 1];
        for (int i = 0; i < u->groups.n; i++)
            groups[i] = (gid_t)u->groups.v[i];
        if (setgroups((size_t)u->groups.n, groups) < 0)
            fail(errno, "setgroups");
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        fail(errno, "keep capabilities");
    if (setresgid((gid_t)u->gid, (gid_t)u->gid, (gid_t)u->gid) < 0)
        fail(errno, "setgid");
    if (setresuid((uid_t)u->uid, (uid_t)u->uid, (uid_t)u->uid) < 0)
        fail(errno, "setuid");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        fail(errno, "keep capabilities");
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

static void do_caps(const struct pyoci_caps *c)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        data[i].effective = (unsigned int)((unsigned long long)c->effective >> (32 * i));
        data[i].permitted = (unsigned int)((unsigned long long)c->permitted >> (32 * i));
        data[i].inheritable = (unsigned int)((unsigned long long)c->inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        fail(errno, "capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        fail(errno, "clear ambient capabilities");
    for (int cap = 0; cap <= 63; cap++)
        if (((unsigned long long)c->ambient & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            fail(errno, "raise ambient capability %d", cap);
}

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Resolved at create time, like runc, so a missing binary fails `create` with a clear message. */
static void do_find_exec(const struct pyoci_find_exec *f)
{
    if (strchr(f->name, '/')) {
        if (!executable(f->name))
            fail(errno ? errno : EACCES, "exec: \"%s\"", f->name);
        snprintf(exec_path, sizeof exec_path, "%s", f->name);
        return;
    }
    const char *p = f->search_path;
    while (*p) {
        const char *end = strchrnul(p, ':');
        int len = (int)(end - p);
        snprintf(exec_path, sizeof exec_path, "%.*s%s%s", len, p, len ? "/" : "", f->name);
        if (executable(exec_path))
            return;
        p = *end ? end + 1 : end;
    }
    fail(0, "exec: \"%s\": executable file not found in $PATH", f->name);  /* runc's words, whole */
}

/* Parked until `start` connects to the listening socket in the container's state dir; from then on that
 * connection is the sync socket (create, which held the old one, is gone). */
static void do_wait_start(int listen_fd)
{
    for (;;) {
        int conn;
        do {
            conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        } while (conn < 0 && errno == EINTR);
        if (conn < 0)
            _exit(1);
        char go = 1;
        ssize_t n;
        do {
            n = recv(conn, &go, 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n == 1 && go == 0) {
            close(listen_fd);
            close(sync_fd);
            sync_fd = conn;
            return;
        }
        close(conn);  /* not a start: wait on */
    }
}

/* A failed execve is the process's own failure, as with runc's init: one line in words on its stderr and
 * status 1; the runtime, which reads us until the sync socket closes, has started it. */
static void do_exec(const struct pyoci_exec *e)
{
    execve(exec_path, e->argv, e->envp);
    dprintf(2, "pyoci: exec %s: %s\n", exec_path, strerror(errno));
    _exit(1);
}

static void do_seccomp(const struct pyoci_seccomp *f)
{
    /* struct sock_filter is 8 bytes: the plan carries one per 64-bit entry. */
    struct sock_fprog prog = { .len = (unsigned short)f->program.n, .filter = (struct sock_filter *)f->program.v };
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)f->flags, &prog);
    if (r < 0)
        fail(errno, "load seccomp filter");
    if (f->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
        send_msg(PYOCI_MSG_SECCOMP_FD, 0, (int)r, NULL);
        close((int)r);
        wait_go();
    }
}

static void do_fork(const struct pyoci_fork *f)
{
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT, NULL, NULL, NULL, NULL);
    if (pid < 0)
        fail(errno, "fork");
    if (pid > 0) {
        send_msg(PYOCI_MSG_PID, pid, -1, NULL);
        _exit(0);
    }
    if (prctl(PR_SET_PDEATHSIG, (int)f->death_signal, 0, 0, 0) < 0)
        fail(errno, "set the death signal");
}

static void close_range_or_fail(unsigned int first, unsigned int last)
{
    if (first <= last && syscall(SYS_close_range, first, last, 0) < 0)
        fail(errno, "close_range");
}

static void do_close_fds(const struct pyoci_close_fds *c)
{
    unsigned int next = 3;  /* the lowest fd not yet dealt with */
    int i = 0, own = 0;  /* own: the sync socket is dealt with */
    while (i < c->keep.n || !own) {
        unsigned long long k = (own || (i < c->keep.n && c->keep.v[i] < (unsigned long long)sync_fd))
                                   ? c->keep.v[i++] : (own = 1, (unsigned long long)sync_fd);
        if (k < next)
            continue;
        close_range_or_fail(next, (unsigned int)k - 1);
        next = (unsigned int)k + 1;
    }
    close_range_or_fail(next, ~0U);
}

/* struct sched_attr of sched_setattr(2), SCHED_ATTR_SIZE_VER1 (glibc 2.36 declares none). */
struct pyoci_sched_attr {
    unsigned int size, policy;
    unsigned long long flags;
    int nice;
    unsigned int priority;
    unsigned long long runtime, deadline, period;
    unsigned int util_min, util_max;
};

/* The kernel's errors, with what to change: sched_setattr says EPERM or EINVAL for half a dozen reasons. */
static void do_scheduler(const struct pyoci_scheduler *s)
{
    struct pyoci_sched_attr attr = {
        .size = sizeof attr, .policy = (unsigned int)s->policy, .flags = (unsigned long long)s->flags,
        .nice = (int)s->nice, .priority = (unsigned int)s->priority, .runtime = (unsigned long long)s->runtime,
        .deadline = (unsigned long long)s->deadline, .period = (unsigned long long)s->period };
    if (syscall(SYS_sched_setattr, 0, &attr, 0) == 0)
        return;
    int err = errno;
    if (err == EOPNOTSUPP && (s->flags & 0x60))
        fail(err, "sched_setattr: this kernel has no utilization clamping (CONFIG_UCLAMP_TASK)");
    if (err == EPERM && (s->policy == 1 || s->policy == 2))
        fail(err, "sched_setattr: a realtime policy needs CAP_SYS_NICE in the host's user namespace and realtime "
             "time in the container's cpu cgroup (linux.resources.cpu.realtimeRuntime, where cpu.rt_runtime_us "
             "exists)");
    if (err == EPERM && s->policy == 6)
        fail(err, "sched_setattr: SCHED_DEADLINE needs CAP_SYS_NICE in the host's user namespace and every CPU of "
             "its scheduling domain (no linux.resources.cpu.cpus narrower than that)");
    if (err == EBUSY && s->policy == 6)
        fail(err, "sched_setattr: the host has not that much deadline bandwidth left");
    fail(err, "sched_setattr");
}

static void do_io_priority(const struct pyoci_io_priority *p)
{
    /* IOPRIO_WHO_PGRP of our own group (the new session's): the spec's "process group" */
    if (syscall(SYS_ioprio_set, 2, 0, (int)p->value) == 0)
        return;
    if (errno == EPERM)
        fail(errno, "ioprio_set: the realtime class needs CAP_SYS_ADMIN or CAP_SYS_NICE in the host's user namespace");
    fail(errno, "ioprio_set");
}

/* Masks as long as the longest list the runtime accepts (cpulist.MAX_ID); the kernel reads what it knows. */
enum { MASK_WORDS = 64 * 1024 / 64 + 1 };

static void do_cpu_affinity(const struct pyoci_cpu_affinity *a)
{
    unsigned long long mask[MASK_WORDS];
    memset(mask, a->mask.n ? 0 : 0xff, sizeof mask);
    for (int i = 0; i < a->mask.n && i < MASK_WORDS; i++)
        mask[i] = a->mask.v[i];
    if (syscall(SYS_sched_setaffinity, 0, sizeof mask, mask) == 0)
        return;
    if (errno == EINVAL)
        fail(errno, "sched_setaffinity: none of these CPUs is online and in the container's cpuset");
    fail(errno, "sched_setaffinity");
}

static void do_memory_policy(const struct pyoci_memory_policy *m)
{
    unsigned long long nodes[MASK_WORDS];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < m->nodes.n && i < MASK_WORDS; i++)
        nodes[i] = m->nodes.v[i];
    /* maxnode counts one past the last node: the kernel drops one (as numactl passes it) */
    unsigned long maxnode = m->nodes.n ? (unsigned long)m->nodes.n * 64 + 1 : 0;
    if (syscall(SYS_set_mempolicy, (int)m->mode, m->nodes.n ? nodes : NULL, maxnode) == 0)
        return;
    if (errno == ENOSYS)
        fail(errno, "set_mempolicy: this kernel has no NUMA memory policies");
    if (errno == EINVAL)
        fail(errno, "set_mempolicy: the kernel refuses this mode, flag and node set (nodes outside the "
             "container's cpuset.mems?)");
    fail(errno, "set_mempolicy");
}

static void do_chown_stdio(uid_t uid)
{
    for (int fd = 0; fd < 3; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_uid == uid || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)))
            continue;
        if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
            fail(errno, "chown fd %d", fd);
    }
}

static void run_step(const struct pyoci_step *s)
{
    switch (s->op) {
    case PYOCI_OP_SYNC:
        send_msg(s->u.sync.message, 0, -1, NULL);
        if (s->u.sync.wait)
            wait_go();
        break;
    case PYOCI_OP_SETNS:
        if (setns(s->u.setns.fd, (int)s->u.setns.nstype) < 0)
            fail(errno, "setns");
        close(s->u.setns.fd);
        break;
    case PYOCI_OP_UNSHARE:
        if (unshare((int)s->u.unshare.flags) < 0)
            fail(errno, "unshare");
        break;
    case PYOCI_OP_FORK:
        do_fork(&s->u.fork);
        break;
    case PYOCI_OP_KEYRING:
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, s->u.keyring.name) < 0) {
            if (errno != ENOSYS)
                fail(errno, "join session keyring");
            warn(errno, "this kernel has no keyrings: the container shares the caller's");
        }
        break;
    case PYOCI_OP_SECCOMP:
        do_seccomp(&s->u.seccomp);
        break;
    case PYOCI_OP_DUMPABLE:
        if (prctl(PR_SET_DUMPABLE, (int)s->u.dumpable.value, 0, 0, 0) < 0)
            fail(errno, "prctl dumpable");
        break;
    case PYOCI_OP_PDEATHSIG:
        if (prctl(PR_SET_PDEATHSIG, (int)s->u.pdeathsig.signal, 0, 0, 0) < 0)
            fail(errno, "set the death signal");
        break;
    case PYOCI_OP_WRITE_FILE:
        do_write_file(s->u.write_file.path, s->u.write_file.data);
        break;
    case PYOCI_OP_SETSID:
        if (setsid() < 0)
            fail(errno, "setsid");
        break;
    case PYOCI_OP_MOUNT:
        do_mount(&s->u.mount);
        break;
    case PYOCI_OP_SET_ROOT:
        set_root(s->u.set_root.path);
        break;
    case PYOCI_OP_MKNOD:
        do_mknod(&s->u.mknod);
        break;
    case PYOCI_OP_SYMLINK:
        do_symlink(&s->u.symlink);
        break;
    case PYOCI_OP_PIVOT:
        do_pivot(s->u.pivot.how);
        break;
    case PYOCI_OP_MASK:
        do_mask(s->u.mask.path);
        break;
    case PYOCI_OP_READONLY:
        do_readonly(&s->u.readonly);
        break;
    case PYOCI_OP_HOSTNAME:
        if (sethostname(s->u.hostname.name, strlen(s->u.hostname.name)) < 0)
            fail(errno, "sethostname");
        break;
    case PYOCI_OP_DOMAINNAME:
        if (setdomainname(s->u.domainname.name, strlen(s->u.domainname.name)) < 0)
            fail(errno, "setdomainname");
        break;
    case PYOCI_OP_HOOK:
        do_hook(&s->u.hook);
        break;
    case PYOCI_OP_CONSOLE:
        do_console(&s->u.console);
        break;
    case PYOCI_OP_RLIMIT: {
        struct rlimit rl = { .rlim_cur = (rlim_t)s->u.rlimit.soft, .rlim_max = (rlim_t)s->u.rlimit.hard };
        if (setrlimit((int)s->u.rlimit.resource, &rl) < 0)
            fail(errno, "setrlimit");
        break;
    }
    case PYOCI_OP_PERSONALITY:
        if (personality((unsigned long)s->u.personality.domain) < 0)
            fail(errno, "personality");
        break;
    case PYOCI_OP_DROP_BOUNDING:
        do_drop_bounding((unsigned long long)s->u.drop_bounding.keep);
        break;
    case PYOCI_OP_USER:
        do_user(&s->u.user);
        break;
    case PYOCI_OP_CAPS:
        do_caps(&s->u.caps);
        break;
    case PYOCI_OP_NO_NEW_PRIVS:
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            fail(errno, "prctl");
        break;
    case PYOCI_OP_CHDIR:
        do_chdir(&s->u.chdir);
        break;
    case PYOCI_OP_UMASK:
        umask((mode_t)s->u.umask.mask);
        break;
    case PYOCI_OP_CLOSE_FROM:
        if (syscall(SYS_close_range, (unsigned int)s->u.close_from.first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
            fail(errno, "close_range");
        break;
    case PYOCI_OP_FIND_EXEC:
        do_find_exec(&s->u.find_exec);
        break;
    case PYOCI_OP_WAIT_START:
        do_wait_start(s->u.wait_start.listen_fd);
        break;
    case PYOCI_OP_EXEC:
        do_exec(&s->u.exec);
        break;
    case PYOCI_OP_JOIN_CGROUP:
        do_join_cgroup(&s->u.join_cgroup);
        break;
    case PYOCI_OP_CLOSE_FDS:
        do_close_fds(&s->u.close_fds);
        break;
    case PYOCI_OP_SCHEDULER:
        do_scheduler(&s->u.scheduler);
        break;
    case PYOCI_OP_IO_PRIORITY:
        do_io_priority(&s->u.io_priority);
        break;
    case PYOCI_OP_CPU_AFFINITY:
        do_cpu_affinity(&s->u.cpu_affinity);
        break;
    case PYOCI_OP_MEMORY_POLICY:
        do_memory_policy(&s->u.memory_policy);
        break;
    case PYOCI_OP_CHOWN_STDIO:
        do_chown_stdio((uid_t)s->u.chown_stdio.uid);
        break;
    case PYOCI_OP_SET_ROOT_PROPAGATION:
        if (mount(NULL, "/", NULL, (unsigned long)s->u.set_root_propagation.flags, NULL) < 0)
            fail(errno, "set propagation of /");
        break;
    default:
        fail(EINVAL, "unknown step %d", s->op);
    }
}

/* The plan spawn.c wrote to plan_fd (see struct pyoci_plan_header), moved to where it landed here. */
static const struct pyoci_step *load_plan(int plan_fd, int *nsteps)
{
    struct pyoci_plan_header h;
    if (pread(plan_fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.magic != PYOCI_PLAN_MAGIC)
        fail(EINVAL, "read the plan");
    size_t relocs_size = (size_t)h.nrelocs * sizeof(unsigned long long);
    unsigned long long *relocs = malloc(relocs_size ? relocs_size : 1);
    char *plan = malloc(h.size ? (size_t)h.size : 1);
    if (!relocs || !plan)
        fail(ENOMEM, "read the plan");
    if (pread(plan_fd, relocs, relocs_size, sizeof h) != (ssize_t)relocs_size ||
        pread(plan_fd, plan, (size_t)h.size, (off_t)(sizeof h + relocs_size)) != (ssize_t)h.size)
        fail(errno ? errno : EIO, "read the plan");
    close(plan_fd);
    for (unsigned long long i = 0; i < h.nrelocs; i++) {
        unsigned long long *slot = (unsigned long long *)(plan + relocs[i]);
        if (relocs[i] + sizeof *slot > h.size || *slot >= h.size)
            fail(EINVAL, "read the plan: a pointer out of it");
        *slot += (unsigned long long)(uintptr_t)plan;
    }
    free(relocs);
    *nsteps = (int)h.nsteps;
    return (const struct pyoci_step *)plan;
}

/* argv: EXECUTOR_MARK, the plan fd, the sync socket, and 1 if spawn's clone3 put us in the v2 cgroup
 * already. Run any other way (a container whose program is /proc/self/exe, a link or #! to it, runs this very
 * copy) it says so in one line and runs nothing. */
int main(int argc, char **argv)
{
    /* Not dumpable until execve: what we hold (the sync socket) is the runtime's. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (argc != 4 || strcmp(argv[0], EXECUTOR_MARK) != 0) {
        dprintf(2, "pyoci: exec %s: " EXECUTOR_REFUSAL "\n", argc >= 1 ? argv[0] : "/proc/self/exe");
        return 1;
    }
    int plan_fd = atoi(argv[1]);
    sync_fd = atoi(argv[2]);
    born_in_cgroup = atoi(argv[3]) == 1;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int i = 1; i < NSIG; i++)
        signal(i, SIG_DFL);
    int nsteps;
    const struct pyoci_step *steps = load_plan(plan_fd, &nsteps);
    first_step = steps;
    for (cur_step = steps; cur_step < steps + nsteps; cur_step++)
        run_step(cur_step);
    return 0;
}
