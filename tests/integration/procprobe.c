/* A hostile container process for test_escapes.py (CVE-2019-5736 with CAP_SYS_PTRACE and CAP_SYS_ADMIN): for
 * SECONDS, over and over, it opens what /proc/<pid>/exe, /proc/<pid>/map_files/* and /proc/<pid>/fd/* (past
 * stdio) of every other process it can see lead to, for reading and for writing, and keeps each regular file
 * it could read to try it for writing again once its process is gone (the way round ETXTBSY). It never writes
 * a byte. With a third argument it tries /proc/<pid>/root and cwd as well. It reaps orphans, as a pid 1 must.
 *
 * Output, one line per distinct success: KIND LINK MODE DEV:INO FSTYPE RDEV TARGET (FSTYPE the file system's
 * magic in hex, as statfs(2) gives it; RDEV a device's MAJOR:MINOR, 0:0 for other files), where KIND is R
 * (opened for reading), W (for writing), L (for writing, later, through the fd kept) or S (for writing, but
 * sealed against writes); then "done PASSES". */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 512
#define MAX_SEEN 8192

struct seen { char kind; char link[8]; dev_t dev; ino_t ino; };
static struct seen seen[MAX_SEEN];
static int nseen;
static int held[MAX_HELD];
static int nheld;

/* The target printed is the opened fd's own link: a readlink of the /proc path before the open could name
   another file (or none) when the process opened or closed one in between. */
static void report(char kind, const char *link, int fd)
{
    struct stat st;
    struct statfs fs;
    char path[64], target[512];
    if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0)
        return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    if (kind == 'W' || kind == 'L') {
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && (seals & F_SEAL_WRITE))
            kind = 'S';
    }
    for (int i = 0; i < nseen; i++)
        if (seen[i].kind == kind && seen[i].dev == st.st_dev && seen[i].ino == st.st_ino &&
            strcmp(seen[i].link, link) == 0)
            return;
    if (nseen < MAX_SEEN) {
        seen[nseen] = (struct seen){ .kind = kind, .dev = st.st_dev, .ino = st.st_ino };
        snprintf(seen[nseen].link, sizeof seen[nseen].link, "%s", link);
        nseen++;
    }
    printf("%c %s %o %lu:%lu %lx %u:%u %s\n", kind, link, (unsigned)st.st_mode, (unsigned long)st.st_dev,
           (unsigned long)st.st_ino, (unsigned long)fs.f_type, major(st.st_rdev), minor(st.st_rdev), target);
    fflush(stdout);
}

static void keep(int fd)
{
    struct stat st, other;
    if (nheld >= MAX_HELD || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    for (int i = 0; i < nheld; i++)
        if (fstat(held[i], &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino) {
            close(fd);
            return;
        }
    held[nheld++] = fd;
}

static void try_link(const char *path, const char *link)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
        report('R', link, fd);
        keep(fd);
    }
    fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
        report('W', link, fd);
        close(fd);
    }
}

static void try_dir(const char *dir, const char *link, int first)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (first > 0 && atoi(e->d_name) < first))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        try_link(path, link);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double deadline = now.tv_sec + now.tv_nsec / 1e9 + atof(argv[1]);
    int all = argc > 2, self = getpid();
    long passes = 0;
    char path[512];
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec + now.tv_nsec / 1e9 > deadline)
            break;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        DIR *proc = opendir("/proc");
        if (!proc)
            return 1;
        struct dirent *e;
        while ((e = readdir(proc))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self)
                continue;
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            try_link(path, "exe");
            if (all) {
                snprintf(path, sizeof path, "/proc/%d/root", pid);
                try_link(path, "root");
                snprintf(path, sizeof path, "/proc/%d/cwd", pid);
                try_link(path, "cwd");
            }
            snprintf(path, sizeof path, "/proc/%d/map_files", pid);
            try_dir(path, "map", 0);
            snprintf(path, sizeof path, "/proc/%d/fd", pid);
            try_dir(path, "fd", 3);
        }
        closedir(proc);
        for (int i = 0; i < nheld; i++) {
            snprintf(path, sizeof path, "/proc/self/fd/%d", held[i]);
            int fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd >= 0) {
                report('L', "held", fd);
                close(fd);
            }
        }
        passes++;
    }
    printf("done %ld\n", passes);
    return 0;
}
