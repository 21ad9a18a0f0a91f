/* System calls without libc: no errno, no locks, no thread state. For code that runs where libc's state is
 * not its own: the exec trampoline (no libc at all) and the shim's cgroup hastener (a child sharing the
 * runtime's memory, whose errno it must not write). x86_64 and aarch64; elsewhere RAW_SYSCALLS is unset. */
#ifndef PYOCI_RAWSYS_H
#define PYOCI_RAWSYS_H

#if defined(__x86_64__)
#define RAW_SYSCALLS 1
#define RAW_NR_WRITE 1
#define RAW_NR_EXECVE 59
#define RAW_NR_EXIT 60
#define RAW_NR_OPENAT 257
static inline long raw_syscall4(long n, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
#define RAW_SYSCALLS 1
#define RAW_NR_WRITE 64
#define RAW_NR_EXECVE 221
#define RAW_NR_EXIT 93
#define RAW_NR_OPENAT 56
static inline long raw_syscall4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#endif

#endif
