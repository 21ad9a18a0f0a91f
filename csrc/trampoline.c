/* The last program the executor runs before the container's own: argv = [MARK, path, argv0, args...].
 *
 * Why: the executor is a clone of the runtime's python3, so until its final execve /proc/self/exe is the
 * host's python3. A container whose program is /proc/self/exe (directly, through a symlink or as a #!
 * interpreter) would otherwise run the host's python3 inside the container and could then open it for
 * writing (CVE-2019-5736). The executor instead execs this tiny program from a sealed memfd, so
 * /proc/self/exe is the sealed copy when the container's path is resolved; run that way (without MARK
 * first) it says so and runs nothing.
 *
 * A failed execve is reported in words, in one line, and the status is 1, as runc's init reports it.
 *
 * Built without libc where we know the syscall ABI (a few hundred bytes to copy per container). */
#include "internal.h"

#if defined(__x86_64__) || defined(__aarch64__)
#include <linux/errno.h>

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_EXECVE 59
#define NR_EXIT 60
static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
__asm__(".globl _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call tramp_main\n hlt\n");
#else
#define NR_WRITE 64
#define NR_EXECVE 221
#define NR_EXIT 93
static long sys3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
__asm__(".globl _start\n_start:\n mov x29, #0\n mov x0, sp\n bl tramp_main\n");
#endif

static const char *error_text(long err)
{
    switch (err) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case EIO: return "Input/output error";
    case E2BIG: return "Argument list too long";
    case ENOEXEC: return "Exec format error";
    case ENOMEM: return "Cannot allocate memory";
    case EACCES: return "Permission denied";
    case EFAULT: return "Bad address";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case EINVAL: return "Invalid argument";
    case ENFILE: return "Too many open files in system";
    case EMFILE: return "Too many open files";
    case ETXTBSY: return "Text file busy";
    case ENAMETOOLONG: return "File name too long";
    case ELOOP: return "Too many levels of symbolic links";
    case ELIBBAD: return "Accessing a corrupted shared library";
    case EAGAIN: return "Resource temporarily unavailable";
    default: return 0;
    }
}

static int is_mark(const char *arg)
{
    const char *m = TRAMPOLINE_MARK;
    while (*m && *arg == *m)
        m++, arg++;
    return *m == '\0' && *arg == '\0';
}
static void put(const char *s)
{
    long n = 0;
    while (s[n])
        n++;
    sys3(NR_WRITE, 2, (long)s, n);
}

__attribute__((noreturn, used)) void tramp_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc >= 3 && is_mark(argv[0])) {
        long err = -sys3(NR_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp);
        const char *text = error_text(err);
        char num[24];
        int i = (int)sizeof num - 1;
        num[i] = '\0';
        do {
            num[--i] = (char)('0' + err % 10);
            err /= 10;
        } while (err && i > 0);
        put("pyoci: exec ");
        put(argv[1]);
        put(": ");
        put(text ? text : "errno ");
        put(text ? "" : num + i);
    } else {
        put("pyoci: exec ");
        put(argc >= 1 ? argv[0] : "/proc/self/exe");
        put(": " TRAMPOLINE_REFUSAL);
    }
    put("\n");
    for (;;)
        sys3(NR_EXIT, 1, 0, 0);
}

#else /* other architectures: the same program on a static libc */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
    if (argc >= 3 && strcmp(argv[0], TRAMPOLINE_MARK) == 0) {
        execve(argv[1], argv + 2, envp);
        fprintf(stderr, "pyoci: exec %s: %s\n", argv[1], strerror(errno));
    } else {
        fprintf(stderr, "pyoci: exec %s: %s\n", argc >= 1 ? argv[0] : "/proc/self/exe", TRAMPOLINE_REFUSAL);
    }
    return 1;
}
#endif
