"""RLIMIT_* names and their numbers (asm-generic/resource.h; Python's resource module lacks some)."""

RLIMITS: dict[str, int] = {
    f"RLIMIT_{name}": num
    for num, name in enumerate(
        "CPU FSIZE DATA STACK CORE RSS NPROC NOFILE MEMLOCK AS LOCKS SIGPENDING MSGQUEUE NICE RTPRIO RTTIME".split()
    )
}
