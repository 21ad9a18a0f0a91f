/* The last program the executor runs before the container's own: argv = [path, argv0, args...].
 *
 * Why: the executor is a clone of the runtime's python3, so until its final execve /proc/self/exe is the
 * host's python3. A container whose program is /proc/self/exe (directly, through a symlink or as a #!
 * interpreter) would otherwise run the host's python3 inside the container and could then open it for
 * writing (CVE-2019-5736). The executor instead execs this tiny program from a sealed memfd, so
 * /proc/self/exe is the sealed copy when the container's path is resolved.
 *
 * Built without libc where we know the syscall ABI (a few hundred bytes to copy per container). */
#if defined(__x86_64__) || defined(__aarch64__)

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
    long err = 0;
    if (argc >= 2)
        err = -sys3(NR_EXECVE, (long)argv[0], (long)(argv + 1), (long)envp);
    char num[24];
    int i = (int)sizeof num - 1;
    num[i] = '\0';
    do {
        num[--i] = (char)('0' + err % 10);
        err /= 10;
    } while (err && i > 0);
    put("pyoci: exec ");
    put(argc >= 1 ? argv[0] : "");
    put(": errno ");
    put(num + i);
    put("\n");
    for (;;)
        sys3(NR_EXIT, 127, 0, 0);
}

#else /* other architectures: the same program on a static libc */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
    if (argc >= 2)
        execve(argv[0], argv + 1, envp);
    fprintf(stderr, "pyoci: exec %s: %s\n", argc >= 1 ? argv[0] : "", strerror(errno));
    return 127;
}
#endif
