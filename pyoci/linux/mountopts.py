"""mount(8)-style options → mount(2) flags, propagation flags, mount_setattr attributes and fs data."""
from __future__ import annotations

from ..record import Record

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT = 1, 2, 4, 8, 16, 32
MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME, MS_BIND = 64, 128, 256, 1024, 2048, 4096
MS_MOVE, MS_REC, MS_SILENT = 8192, 16384, 32768
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME, MS_LAZYTIME = 1 << 21, 1 << 24, 1 << 25

MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME = 0x70, 0, 0x10, 0x20
MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOSYMFOLLOW = 0x80, 0x200000

# option → (flags to set, flags to clear)
FLAGS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0), "remount": (MS_REMOUNT, 0),
    "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "atime": (0, MS_NOATIME), "noatime": (MS_NOATIME, 0),
    "diratime": (0, MS_NODIRATIME), "nodiratime": (MS_NODIRATIME, 0),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME),
    "symfollow": (0, MS_NOSYMFOLLOW), "nosymfollow": (MS_NOSYMFOLLOW, 0),
    "silent": (MS_SILENT, 0), "loud": (0, MS_SILENT),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# recursive attribute option → (attr to set, attr to clear), applied with mount_setattr(AT_RECURSIVE)
RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME), "rnorelatime": (0, MOUNT_ATTR__ATIME),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME), "ratime": (0, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME), "rnostrictatime": (0, MOUNT_ATTR__ATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
}

# runc extensions that change nothing the kernel sees here
IGNORED = {"tmpcopyup", "defaults"}
# idmapped bind mounts (runtime-spec 1.2): the mapping on the mount only, or on every mount below it too
IDMAP = ("idmap", "ridmap")


class MountOptions(Record):
    flags: int = 0
    propagation: list[int] = None  # type: ignore[assignment]
    attr_set: int = 0
    attr_clr: int = 0
    data: list[str] = None  # type: ignore[assignment]
    idmap: str = ""  # "", "idmap" or "ridmap"

    @property
    def bind(self) -> bool:
        return bool(self.flags & MS_BIND)


def parse(options: list[str]) -> MountOptions:
    out = MountOptions(propagation=[], data=[])
    for opt in options:
        if opt in FLAGS:
            on, off = FLAGS[opt]
            out.flags = (out.flags | on) & ~off
        elif opt in PROPAGATION:
            out.propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            on, off = RECURSIVE[opt]
            out.attr_clr = (out.attr_clr | off) & ~on
            out.attr_set = (out.attr_set & ~off) | on
        elif opt in IDMAP:
            out.idmap = opt
        elif opt not in IGNORED:
            out.data.append(opt)
    return out
