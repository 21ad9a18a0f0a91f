/* The interface between pyoci's Python side and its C side, fed to cffi's cdef as it is (plain declarations
 * only). Three C files implement it, each with one role:
 *   executor.c  a program of its own (static, carried by the shim): runs a plan in the child process that
 *               becomes the container's init (or an exec'd process), the only code that runs inside the
 *               container before its program;
 *   spawn.c     starts that program for a plan, from a sealed memfd, in a new child of the runtime;
 *   host.c      helpers the runtime calls in its own process, on the host (mounts, BPF, seccomp, hooks).
 *
 * A plan is an array of steps, each an op and that op's own arguments (one struct per op below, with the
 * same field names as the Python records in pyoci/steps.py, which pyoci/linux/shim.py encodes into them).
 *
 * The sync protocol. The runtime and the executor talk over a SOCK_SEQPACKET pair; each executor message is
 * a struct pyoci_msg followed by `len` bytes of detail text (for ERROR and WARNING: the step's `what`, then
 * what went wrong); the runtime's go-ahead is one byte, and may carry fds (SCM_RIGHTS).
 *
 *   runtime (create, exec)                        executor (after the fork step: the container's init)
 *     spawn(plan, sync socket) ---------------->  cloned, in the v2 cgroup where the kernel allows
 *                              <----------------  USERNS          a new user namespace is made
 *     write its uid/gid maps, go -------------->
 *                              <----------------  PID             from the forking process: the init's pid
 *                              <----------------  MOUNTED         the mounts are made, before pivot_root
 *     prestart, createRuntime hooks; go + 2 fds: the "created" and "running" states (sealed memfds), the
 *     stdin of the hooks the executor runs -->
 *                              <----------------  SECCOMP_FD+fd   a filter with a notify listener is loaded
 *     hand the fd to listenerPath, go -------->
 *                              <----------------  READY           create: parked; exec: about to execve
 *     create returns. The init waits in WAIT_START on a listening unix socket in the container's state dir.
 *   start: connect, go ----------------------->  accept: this connection is the sync socket from now on
 *                                                 startContainer hooks, a late seccomp filter, execve
 *   start, exec: read on until EOF (the socket closes on execve: success) or ERROR.
 *
 *   WARNING may come at any point (the runtime logs it and goes on); ERROR names the failing step and its
 *   errno, after which the executor exits. EOF without READY or ERROR: the executor died (OOM, a signal).
 */

enum pyoci_op {
    PYOCI_OP_SYNC = 1,
    PYOCI_OP_SETNS,
    PYOCI_OP_UNSHARE,
    PYOCI_OP_FORK,
    PYOCI_OP_WRITE_FILE,
    PYOCI_OP_SETSID,
    PYOCI_OP_MOUNT,
    PYOCI_OP_SET_ROOT,
    PYOCI_OP_MKNOD,
    PYOCI_OP_SYMLINK,
    PYOCI_OP_PIVOT,
    PYOCI_OP_MASK,
    PYOCI_OP_READONLY,
    PYOCI_OP_HOSTNAME,
    PYOCI_OP_DOMAINNAME,
    PYOCI_OP_HOOK,
    PYOCI_OP_CONSOLE,
    PYOCI_OP_RLIMIT,
    PYOCI_OP_PERSONALITY,
    PYOCI_OP_DROP_BOUNDING,
    PYOCI_OP_USER,
    PYOCI_OP_CAPS,
    PYOCI_OP_NO_NEW_PRIVS,
    PYOCI_OP_CHDIR,
    PYOCI_OP_UMASK,
    PYOCI_OP_CLOSE_FROM,
    PYOCI_OP_FIND_EXEC,
    PYOCI_OP_WAIT_START,
    PYOCI_OP_EXEC,
    PYOCI_OP_SET_ROOT_PROPAGATION,
    PYOCI_OP_PDEATHSIG,
    PYOCI_OP_KEYRING,
    PYOCI_OP_SECCOMP,
    PYOCI_OP_DUMPABLE,
    PYOCI_OP_JOIN_CGROUP,
    PYOCI_OP_CLOSE_FDS,
    PYOCI_OP_SCHEDULER,
    PYOCI_OP_IO_PRIORITY,
    PYOCI_OP_CPU_AFFINITY,
    PYOCI_OP_MEMORY_POLICY,
    PYOCI_OP_CHOWN_STDIO
};

enum pyoci_msg_type {
    PYOCI_MSG_USERNS = 2,
    PYOCI_MSG_PID = 3,
    PYOCI_MSG_MOUNTED = 4,
    PYOCI_MSG_READY = 5,
    PYOCI_MSG_ERROR = 6,
    PYOCI_MSG_SECCOMP_FD = 7,
    PYOCI_MSG_WARNING = 8
};

struct pyoci_msg {
    int type;   /* enum pyoci_msg_type */
    int step;   /* index of the step that sent it */
    int err;    /* ERROR, WARNING: the errno (0: none) */
    int pid;    /* PID: the container's init */
    int len;    /* bytes of detail text after this header */
};

/* Where a mount's target is. */
enum pyoci_where {
    PYOCI_IN_ROOT = 0,        /* resolved inside the root (symlinks followed, never out of it) */
    PYOCI_IN_ROOT_EXACT = 1,  /* inside the root, and no symlink on the way (proc, sysfs) */
    PYOCI_HOST_PATH = 2       /* a path of the runtime's mount namespace (before the root is set) */
};

enum pyoci_pivot {
    PYOCI_PIVOT_ROOT = 0,     /* pivot_root into the root, the old root detached */
    PYOCI_MOVE_CHROOT = 1,    /* --no-pivot: move the root onto / and chroot */
    PYOCI_CHROOT = 2          /* the runtime's own mount namespace: chroot only */
};

struct pyoci_u64s {
    const unsigned long long *v;
    int n;
};

struct pyoci_sync { int message; int wait; };     /* send message (enum pyoci_msg_type); wait: for the go */
struct pyoci_setns { int fd; long long nstype; };
struct pyoci_unshare { long long flags; };        /* CLONE_NEW* */
struct pyoci_fork { long long death_signal; };    /* the forking process reports the init's pid and exits */
struct pyoci_write_file { const char *path; const char *data; };
struct pyoci_mount {
    const char *source;       /* NULL: none (a remount, or a propagation change only) */
    const char *target;
    const char *fstype;       /* NULL with MS_BIND in flags: a bind of source */
    const char *data;
    long long flags;          /* MS_*: MS_BIND flags beyond MS_REC are applied by a remount; MS_BIND without
                               * source or tree: only that remount, of the mount at the target */
    long long propagation;    /* MS_SHARED, MS_PRIVATE... set on the target afterwards (0: none) */
    long long attr_set;       /* mount_setattr(AT_RECURSIVE) afterwards */
    long long attr_clr;
    int where;                /* enum pyoci_where */
    int as_file;              /* a missing target is made as a file (the bind of a file), else a directory */
    int tree_fd;              /* >= 0: a detached mount tree (idmapped) moved onto target instead */
};
struct pyoci_set_root { const char *path; };      /* opened as the root that targets resolve in */
struct pyoci_mknod { const char *path; long long mode; long long dev; long long uid; long long gid; };
struct pyoci_symlink { const char *target; const char *path; int replace; };
struct pyoci_pivot_step { int how; };             /* enum pyoci_pivot */
struct pyoci_mask { const char *path; };
struct pyoci_readonly { const char *path; int must_exist; int in_place; };
struct pyoci_hostname { const char *name; };
struct pyoci_domainname { const char *name; };
struct pyoci_hook {
    const char *path;
    char **argv;
    char **envp;
    long long timeout;        /* seconds; 0: none */
    int state;                /* stdin: 0 the "created" state, 1 the "running" one */
};
struct pyoci_console { int socket_fd; long long rows; long long cols; };
struct pyoci_rlimit { long long resource; long long soft; long long hard; };
struct pyoci_personality { long long domain; };
struct pyoci_drop_bounding { long long keep; };   /* the bounding set to keep, a mask */
struct pyoci_user {
    long long uid;
    long long gid;
    struct pyoci_u64s groups;
    int setgroups;            /* 0: keep the groups (setgroups is denied in this user namespace) */
};
struct pyoci_caps { long long effective; long long permitted; long long inheritable; long long ambient; };
/* process.cwd, resolved inside the root. attempt 1: as root, before the user switch (a denial leaves it to
 * attempt 2, after the switch, as runc does); 0: the only attempt. */
struct pyoci_chdir { const char *path; int attempt; };
struct pyoci_umask { long long mask; };
struct pyoci_close_from { long long first; };     /* every fd from first on is made close-on-exec */
struct pyoci_find_exec { const char *name; const char *search_path; };
struct pyoci_wait_start { int listen_fd; };
struct pyoci_exec { char **argv; char **envp; };
struct pyoci_set_root_propagation { long long flags; };
struct pyoci_pdeathsig { long long signal; };
struct pyoci_keyring { const char *name; };
struct pyoci_seccomp {
    struct pyoci_u64s program;  /* one struct sock_filter per entry */
    long long flags;            /* SECCOMP_FILTER_FLAG_*; NEW_LISTENER: the notify fd goes to the runtime */
};
struct pyoci_dumpable { long long value; };
struct pyoci_join_cgroup { const char *path; int v2; };  /* v2: spawn's clone3 put us there where it could */
/* Every fd from 3 on is closed but these (sorted) and the executor's own sync socket: nothing of the
 * runtime's (its lock, its caller's fds) stays open in the container. */
struct pyoci_close_fds { struct pyoci_u64s keep; };
/* process.scheduler: sched_setattr(2) on ourselves (uclamp values 0 where a UTIL_CLAMP flag asks, as runc). */
struct pyoci_scheduler {
    long long policy;
    long long flags;
    long long nice;
    long long priority;
    long long runtime;        /* SCHED_DEADLINE's, in ns */
    long long deadline;
    long long period;
};
struct pyoci_io_priority { long long value; };    /* ioprio_set(IOPRIO_WHO_PGRP, 0): class << 13 | level */
/* sched_setaffinity(2) on ourselves: a CPU mask, 64 CPUs per entry; empty: every CPU there is (the cgroup's
 * cpuset still applies), so nothing is inherited from the runtime's own affinity. */
struct pyoci_cpu_affinity { struct pyoci_u64s mask; };
struct pyoci_memory_policy { long long mode; struct pyoci_u64s nodes; };  /* set_mempolicy(mode | MPOL_F_*) */
/* fds 0-2 (the pty, a pipe, a file; not /dev/null) made the user's, so it can open /dev/stdout and use its
 * terminal, as runc does; an owner the container's user namespace cannot change is left as it is. */
struct pyoci_chown_stdio { long long uid; };

struct pyoci_step {
    int op;                   /* enum pyoci_op; ops without arguments use none of u */
    const char *what;         /* the config item the step came from: what an ERROR or WARNING names */
    union {
        struct pyoci_sync sync;
        struct pyoci_setns setns;
        struct pyoci_unshare unshare;
        struct pyoci_fork fork;
        struct pyoci_write_file write_file;
        struct pyoci_mount mount;
        struct pyoci_set_root set_root;
        struct pyoci_mknod mknod;
        struct pyoci_symlink symlink;
        struct pyoci_pivot_step pivot;
        struct pyoci_mask mask;
        struct pyoci_readonly readonly;
        struct pyoci_hostname hostname;
        struct pyoci_domainname domainname;
        struct pyoci_hook hook;
        struct pyoci_console console;
        struct pyoci_rlimit rlimit;
        struct pyoci_personality personality;
        struct pyoci_drop_bounding drop_bounding;
        struct pyoci_user user;
        struct pyoci_caps caps;
        struct pyoci_chdir chdir;
        struct pyoci_umask umask;
        struct pyoci_close_from close_from;
        struct pyoci_find_exec find_exec;
        struct pyoci_wait_start wait_start;
        struct pyoci_exec exec;
        struct pyoci_set_root_propagation set_root_propagation;
        struct pyoci_pdeathsig pdeathsig;
        struct pyoci_keyring keyring;
        struct pyoci_seccomp seccomp;
        struct pyoci_dumpable dumpable;
        struct pyoci_join_cgroup join_cgroup;
        struct pyoci_close_fds close_fds;
        struct pyoci_scheduler scheduler;
        struct pyoci_io_priority io_priority;
        struct pyoci_cpu_affinity cpu_affinity;
        struct pyoci_memory_policy memory_policy;
        struct pyoci_chown_stdio chown_stdio;
    } u;
};

/* spawn.c: starts a child that runs the executor on a plan and never returns; its pid, or -errno. The plan is
 * plan_size bytes at plan: nsteps struct pyoci_step first, then what they point to. Its pointers hold offsets
 * into it, and relocs lists where they are (pyoci/linux/shim.py lays it out, by STEPS of pyoci._protocol).
 * The fds in inherit (those the steps use) stay open for the executor. cgroup_v2: the v2 cgroup the child is
 * born in (clone3 CLONE_INTO_CGROUP), or NULL. */
int pyoci_spawn(const char *plan, long long plan_size, int nsteps, const unsigned long long *relocs, int nrelocs,
                const int *inherit, int ninherit, int sync_fd, const char *cgroup_v2);

/* host.c. Each returns 0 (or a value) on success, -errno on failure. */
int pyoci_umount_lazy(const char *target);
/* Swaps the two names, atomically (renameat2 RENAME_EXCHANGE): see replace() in pyoci/linux/shim.py. */
int pyoci_exchange(const char *a, const char *b);
/* A mount made from the directory dir_fd (relative paths in data resolve there: an overlay's lowerdir names
 * short links, so 128 layers fit one page of mount data), without changing the caller's cwd. */
int pyoci_mount_from(int dir_fd, const char *source, const char *target, const char *fstype,
                     unsigned long flags, const char *data);
/* 1 if every entry of dir has a d_type, 0 if one is DT_UNKNOWN (overlay cannot work there). */
int pyoci_supports_dtype(const char *dir);
/* A detached copy of src's mount (its whole tree if tree_rec), idmapped through userns_fd if >= 0 (recursively
 * if idmap_rec), for the executor to move into place: the fd; *stage says what failed: 0 open_tree,
 * 1 mount_setattr. */
int pyoci_mount_tree(const char *src, int userns_fd, int tree_rec, int idmap_rec, int *stage);
/* cgroup v2 devices: loads a BPF_PROG_TYPE_CGROUP_DEVICE program (len bytes of struct bpf_insn) and attaches
 * it to cgroup_dir with BPF_F_ALLOW_MULTI; a refused program leaves the verifier's words in log. */
int pyoci_device_filter_attach(const char *insns, int len, const char *cgroup_dir, char *log, int log_size);
/* Runs a hook to its end, as the executor runs the in-container ones: stdin_fd (the state) as its stdin, in
 * dir (where runc runs it: the bundle), killed after timeout seconds (0: none). 0: it exited 0; -errno: it
 * could not be run; 1: it failed, and detail says how ("exit status 3", "killed by signal 9", "timed out
 * after 5s"). */
int pyoci_run_hook(const char *path, char **argv, char **envp, int stdin_fd, long long timeout, const char *dir,
                   char *detail, int detail_size);

/* A socket made in the network namespace netns_fd (linux.netDevices: rtnetlink there), the calling thread
 * back in its own namespace afterwards: the fd, or -errno. */
int pyoci_socket_in_netns(int netns_fd, int domain, int type, int protocol);
/* path as a container rooted at root sees it (no symlink or ".." leads out of root, no magic link is
 * followed): an O_PATH fd of it, or -errno. */
int pyoci_open_in_root(const char *root, const char *path);

/* linux.seccomp, compiled by libseccomp in the runtime (never in the container). */
struct pyoci_scmp_arg {
    unsigned int index;
    int op;                  /* SCMP_CMP_* */
    unsigned long long value;
    unsigned long long value_two;
};

struct pyoci_scmp_rule {
    const char *name;        /* syscall name; unknown to this libseccomp/kernel: skipped, as runc does */
    unsigned int action;     /* SCMP_ACT_* value */
    int nargs;
    struct pyoci_scmp_arg args[6];
};

/* Writes the BPF program to out_fd; *failed names the rule (-1: the arches). */
int pyoci_seccomp_compile(unsigned int default_action, const char **arches, int narches,
                          const struct pyoci_scmp_rule *rules, int nrules, int out_fd, int *failed);
/* The largest number any of names has on arch (libseccomp's name of it; NULL: the native one), 0 if it has
 * none of them, -EINVAL for an arch libseccomp does not know; *audit_arch is the arch's AUDIT_ARCH_ value,
 * as a filter sees it (x32's is x86_64's, its numbers carry bit 30). */
int pyoci_seccomp_last_syscall(const char *arch, const char **names, int nnames, unsigned int *audit_arch);
