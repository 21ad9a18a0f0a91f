/* The plan interface between pyoci (Python) and the fork-safe executor (C).
 * This header is also fed to cffi's cdef, so it holds only plain declarations. */

enum pyoci_op {
    PYOCI_OP_SYNC = 1,        /* n1: message type; n2: 1 = wait for the parent's go-ahead */
    PYOCI_OP_SETNS = 2,       /* fd: namespace fd; n1: nstype */
    PYOCI_OP_UNSHARE = 3,     /* flags: CLONE_NEW* */
    PYOCI_OP_FORK = 4,        /* fork (CLONE_PARENT); the forking process reports the pid and exits */
    PYOCI_OP_WRITE_FILE = 5,  /* s1: path; s2: data */
    PYOCI_OP_SETSID = 6,
    PYOCI_OP_MOUNT = 7,       /* s1 src, s2 dst (inside root unless n4 = 1; n4 = 2: no symlink on the way),
                                 s3 fstype, s4 data, flags, flags2 propagation, n1: 1 = create dst as file,
                                 n2/n3: attr set/clear; fd >= 0: a detached mount tree to move to dst instead
                                 of binding s1 */
    PYOCI_OP_SET_ROOT = 8,    /* s1: rootfs path, opened as the root that destinations resolve in */
    PYOCI_OP_MKNOD = 9,       /* s2: path inside root; n1: mode; n2: dev; n3: uid; n4: gid */
    PYOCI_OP_SYMLINK = 10,    /* s1: target; s2: link path inside root; n1: 1 = replace */
    PYOCI_OP_PIVOT = 11,      /* pivot_root into the root; n1: 1 = MS_MOVE + chroot, 2 = chroot only */
    PYOCI_OP_MASK = 12,       /* s1: path */
    PYOCI_OP_READONLY = 13,   /* s1: path; n1: 1 = ENOENT is an error, 2 = remount in place */
    PYOCI_OP_HOSTNAME = 14,   /* s1 */
    PYOCI_OP_DOMAINNAME = 15, /* s1 */
    PYOCI_OP_HOOK = 16,       /* s1 path, argv, envp, n1 timeout seconds (0: none), n2 state: 0 created, 1 running */
    PYOCI_OP_CONSOLE = 17,    /* fd: console socket; n1 rows; n2 cols */
    PYOCI_OP_RLIMIT = 18,     /* n1 resource; n2 soft; n3 hard */
    PYOCI_OP_PERSONALITY = 19,/* n1 */
    PYOCI_OP_DROP_BOUNDING = 20, /* n1: bounding set to keep */
    PYOCI_OP_USER = 21,       /* n1 uid; n2 gid; n3: 1 = setgroups(list), an empty list skipped where denied */
    PYOCI_OP_CAPS = 22,       /* list: effective, permitted, inheritable, ambient */
    PYOCI_OP_NO_NEW_PRIVS = 23,
    PYOCI_OP_CHDIR = 24,      /* s1 */
    PYOCI_OP_UMASK = 25,      /* n1 */
    PYOCI_OP_CLOSE_FROM = 26, /* n1: first fd that exec closes */
    PYOCI_OP_FIND_EXEC = 27,  /* s1: args[0]; envp: for PATH */
    PYOCI_OP_WAIT_FIFO = 28,  /* fd */
    PYOCI_OP_EXEC = 29,       /* argv, envp */
    PYOCI_OP_SET_ROOT_PROPAGATION = 30, /* flags: propagation for "/" */
    PYOCI_OP_PDEATHSIG = 32,  /* n1: signal sent when the spawning process dies (0: none) */
    PYOCI_OP_KEYRING = 33,    /* s1: name of a new session keyring to join */
    PYOCI_OP_SECCOMP = 34,    /* list: the BPF program (one sock_filter per entry); n1: SECCOMP_FILTER_FLAG_*
                                 (with NEW_LISTENER: the notify fd goes to the parent, then wait for it) */
    PYOCI_OP_DUMPABLE = 35,   /* n1: PR_SET_DUMPABLE value (a non-root parent writes our id maps while it is 1) */
    PYOCI_OP_JOIN_CGROUP = 36 /* s1: cgroup directory; n1: 1 = cgroup v2 (spawn's clone3 put us there already
                                 where it could), 0 = a v1 hierarchy */
};

enum pyoci_msg_type {
    PYOCI_MSG_USERNS = 2,     /* new user namespace made; parent writes the id maps */
    PYOCI_MSG_PID = 3,        /* pid field: the container's init */
    PYOCI_MSG_MOUNTED = 4,    /* mounts done, before pivot_root: prestart + createRuntime hooks */
    PYOCI_MSG_READY = 5,      /* waiting for start */
    PYOCI_MSG_ERROR = 6,      /* step, err, detail */
    PYOCI_MSG_SECCOMP_FD = 7  /* the seccomp notify fd rides along (SCM_RIGHTS); parent answers when passed on */
};

struct pyoci_step {
    int op;
    int fd;
    unsigned long flags;
    unsigned long flags2;
    long long n1, n2, n3, n4;
    const char *s1, *s2, *s3, *s4;
    char **argv;
    char **envp;
    const unsigned long long *list;
    int nlist;
};

struct pyoci_msg {
    int type;
    int step;
    int err;
    int pid;
    char detail[240];
};

/* cgroup_v2: the v2 cgroup the child is born in (CLONE_INTO_CGROUP), or NULL. */
int pyoci_spawn(const struct pyoci_step *steps, int nsteps, int sync_fd, const char *cgroup_v2);
int pyoci_umount_lazy(const char *target);
/* A detached copy of src's mount (its whole tree if tree_rec) idmapped through userns_fd (recursively if
 * idmap_rec), for the executor to move into place. Returns the fd, or -errno with *stage 0 (open_tree) or
 * 1 (mount_setattr). */
int pyoci_idmapped_tree(const char *src, int userns_fd, int tree_rec, int idmap_rec, int *stage);

/* The layer store: an overlay mount made by the runtime itself (its lowerdir names short links relative to
   the cwd, so 128 layers fit one page of mount data), and whether a directory's entries carry d_type. */
int pyoci_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data);
int pyoci_supports_dtype(const char *dir);

/* cgroup v2 devices: loads a BPF_PROG_TYPE_CGROUP_DEVICE program (len bytes of struct bpf_insn) and attaches
 * it to cgroup_dir with BPF_F_ALLOW_MULTI. Returns 0 or -errno; a refused program leaves the verifier's
 * words in log. */
int pyoci_device_filter_attach(const char *insns, int len, const char *cgroup_dir, char *log, int log_size);

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

/* Writes the BPF program to out_fd. Returns 0 or -errno; *failed names the rule (-1: the arches). */
int pyoci_seccomp_compile(unsigned int default_action, const char **arches, int narches,
                          const struct pyoci_scmp_rule *rules, int nrules, int out_fd, int *failed);
