"""Capability names (linux/capability.h) and the bit masks the executor applies."""
from __future__ import annotations

from .files import read_text

_NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE"
).split()

CAPABILITIES: dict[str, int] = {f"CAP_{name}": bit for bit, name in enumerate(_NAMES)}


_last_cap: list[int] = []


def last_cap() -> int:
    """The highest capability this kernel knows; higher bits cannot be kept or dropped. Read once per
    process: a create asks for each of the five sets."""
    if not _last_cap:
        try:
            _last_cap.append(int(read_text("/proc/sys/kernel/cap_last_cap")))
        except OSError:
            _last_cap.append(len(_NAMES) - 1)
    return _last_cap[0]


def mask(names: list[str]) -> int:
    """Bits of the named capabilities this kernel has; names it lacks are skipped as runc does."""
    top = last_cap()
    bits = 0
    for name in names:
        bit = CAPABILITIES[name]
        if bit <= top:
            bits |= 1 << bit
    return bits
