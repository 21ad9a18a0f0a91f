"""uid/gid maps of a new user namespace.

Root writes them itself. A runtime without root may write one line that maps its own id (with setgroups
denied first, as the kernel requires); any other mapping needs the setuid helpers newuidmap/newgidmap
(Debian's `uidmap`), which check /etc/subuid and /etc/subgid — what runc and podman do.
"""
from __future__ import annotations

import posix

from ..errors import PyociError
from . import fs
from .files import read_text, write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec import IDMapping, Namespace

HELPERS = {"uid_map": "newuidmap", "gid_map": "newgidmap"}
CLONE_NEWUSER = 0x10000000


def _own_only(maps: list[IDMapping], own: int) -> bool:
    return len(maps) == 1 and maps[0].host_id == own and maps[0].size == 1


def _helper(pid: int, name: str, maps: list[IDMapping], where: str) -> None:
    import shutil
    import subprocess

    helper = shutil.which(HELPERS[name], path=(fs.getenv("PATH") or "") + ":/usr/bin:/usr/sbin:/bin")
    if helper is None:
        raise PyociError(f"{where}: without root, mapping more than your own id needs {HELPERS[name]} "
                         "(Debian package uidmap)")
    args = [helper, str(pid)] + [str(n) for m in maps for n in (m.container_id, m.host_id, m.size)]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise PyociError(f"{where}: {HELPERS[name]}: {last}")


def _write(path: str, data: str, where: str) -> None:
    try:
        write(path, data)
    except OSError as exc:
        raise PyociError(f"{where}: write {path}", exc.errno) from None


def write_maps(pid: int, uid_maps: list[IDMapping], gid_maps: list[IDMapping], rootless: bool,
               where: str = "linux") -> None:
    """Maps the user namespace of pid; where names the config item the mappings came from."""
    for name, maps, own in (("uid_map", uid_maps, posix.geteuid()), ("gid_map", gid_maps, posix.getegid())):
        item = f"{where}.{'uidMappings' if name == 'uid_map' else 'gidMappings'}"
        if rootless and not _own_only(maps, own):
            _helper(pid, name, maps, item)
            continue
        if rootless and name == "gid_map":
            _write(f"/proc/{pid}/setgroups", "deny", item)
        _write(f"/proc/{pid}/{name}", "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps), item)


def setgroups_allowed(user: Namespace | None, gid_maps: list[IDMapping], rootless: bool) -> bool:
    """Whether setgroups(2) works in the container's user namespace: not in one a runtime without root maps
    with its own gid alone (write_maps denies it, as the kernel requires), nor in a joined one that denies it
    (known where the path names a process: /proc/PID/ns/user)."""
    if user is None:
        return True
    if not user.path:
        return not (rootless and _own_only(gid_maps, posix.getegid()))
    parts = user.path.split("/")
    if len(parts) == 5 and parts[1] == "proc" and parts[2].isdigit() and parts[3:] == ["ns", "user"]:
        try:
            return read_text(f"/proc/{parts[2]}/setgroups").strip() != "deny"
        except OSError:
            pass
    return True


def userns_fd(uid_maps: list[IDMapping], gid_maps: list[IDMapping], rootless: bool, where: str) -> int:
    """An fd of a new user namespace with these maps (what mount_setattr's MOUNT_ATTR_IDMAP takes). A helper
    process makes it; its fd keeps the namespace alive after the helper is gone."""
    import _signal

    from .. import steps as st
    from ..sync import receive
    from .shim import spawn
    from .unixsock import SOCK_SEQPACKET, socketpair

    steps: list[st.Step] = [st.Unshare(f"{where} (user namespace)", flags=CLONE_NEWUSER)]
    if rootless:
        steps.append(st.Dumpable(f"{where} (id maps)", value=1))
    steps.append(st.Sync(f"{where} (id maps)", message=st.USERNS, wait=True))  # never answered: killed instead
    parent, child = socketpair(SOCK_SEQPACKET)
    try:
        pid = spawn(steps, child.fileno())
    finally:
        child.close()
    try:
        msg, _ = receive(parent)
        if msg is None or msg.kind != "USERNS":
            raise PyociError(f"{where}: user namespace for the idmapped mount",
                             msg.err if msg is not None else 0)
        write_maps(pid, uid_maps, gid_maps, rootless, where)
        try:
            return posix.open(f"/proc/{pid}/ns/user", posix.O_RDONLY | posix.O_CLOEXEC)
        except OSError as exc:
            raise PyociError(f"{where}: open the idmapped mount's user namespace", exc.errno) from None
    finally:
        parent.close()
        posix.kill(pid, _signal.SIGKILL)
        posix.waitpid(pid, 0)
