"""Making a container's cgroups: the host's hierarchies, where the container's directory goes in each, the
directories themselves (recording which ones create made), controllers enabled on the way down, v1 cpusets
filled, the limits, the v2 device filter. Only create needs this, and `os` with it."""
from __future__ import annotations

import posix

from ..errors import EACCES, EPERM, EROFS, PyociError
from ..linux import fs
from ..linux.files import read_text, write
from . import Cgroup, is_v2_host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


class Hierarchy:
    """One mounted hierarchy: v1 (named by its controllers) or the v2 unified one (name "")."""

    def __init__(self, name: str, mountpoint: str, controllers: list[str], own: str) -> None:
        self.name, self.mountpoint, self.controllers = name, mountpoint, controllers
        self.own = own  # the calling process's cgroup in this hierarchy

    @property
    def v2(self) -> bool:
        return self.name == ""


def hierarchies() -> list[Hierarchy]:
    own: dict[str, str] = {}
    for line in read_text("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        own[names] = path
    from ..linux.mountinfo import entries

    found: dict[str, Hierarchy] = {}
    for root, point, fstype, superopts in entries():
        # Only a hierarchy's first, whole mount: binds of a subtree (root != "/") and later copies
        # (say, a container's /sys/fs/cgroup made on the host) are not where cgroups are made.
        if fstype not in ("cgroup", "cgroup2") or root != "/":
            continue
        if fstype == "cgroup2":
            found.setdefault("", Hierarchy("", point, [], own.get("", "/")))
            continue
        ctrls = [o for o in superopts.split(",") if o in KNOWN_V1 or o.startswith("name=")]
        key = ",".join(ctrls)
        found.setdefault(key, Hierarchy(key, point, ctrls, own.get(key, "/")))
    return list(found.values())


KNOWN_V1 = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
            "net_cls", "net_prio", "perf_event", "rdma", "misc"}


def resolve(cgroups_path: str, container_id: str, h: Hierarchy) -> str:
    """Where the container's cgroup lives in hierarchy h (absolute path on the host)."""
    path = cgroups_path
    if path.count(":") == 2:  # systemd's slice:prefix:name, mapped onto cgroupfs as runc does without systemd
        slice_, prefix, name = path.split(":")
        unit = f"{prefix}-{name}.scope" if prefix else name
        path = "/" + (slice_ or "system.slice") + "/" + unit
    if not path:  # one level, as runc's /<id>, named so that it cannot be the host's own (system.slice)
        path = "/pyoci-" + container_id
    if not path.startswith("/"):
        path = fs.join(h.own, path)
    rel = fs.normpath("/" + path).lstrip("/")
    return fs.join(h.mountpoint, rel)


def _mkdirs(path: str, mountpoint: str, made: list[str]) -> list[str]:
    """mkdir -p that records what it made; returns the new directories, parents first.

    A parent may vanish under us (the delete of another container whose create made it): retry."""
    for _ in range(10):
        new = []
        cur = mountpoint
        try:
            for part in fs.relpath(path, mountpoint).split("/"):
                if part in ("", "."):
                    continue
                cur = f"{cur}/{part}"
                try:
                    posix.mkdir(cur, 0o755)
                    new.append(cur)
                except FileExistsError:
                    pass
        except FileNotFoundError:
            continue
        made.extend(new)
        return new
    raise PyociError(f"cgroup {path}: parent keeps disappearing")


def _enable_v2_controllers(h: Hierarchy, path: str) -> None:
    """Turns on, from the root down to the container's parent, every controller the container may use."""
    try:
        available = read_text(f"{h.mountpoint}/cgroup.controllers").split()
    except OSError:
        return
    rel = fs.relpath(fs.dirname(path), h.mountpoint)
    cur = h.mountpoint
    for part in [""] + ([p for p in rel.split("/") if p not in ("", ".")]):
        cur = f"{cur}/{part}" if part else cur
        for c in available:
            try:
                write(f"{cur}/cgroup.subtree_control", "+" + c)
            except OSError:
                pass  # a controller the parent cannot delegate (e.g. threaded) is skipped


def _init_cpuset(path: str, mountpoint: str) -> None:
    """A new v1 cpuset is empty and refuses tasks: fill every empty level from its parent, top down.

    Every level, not only the ones this create made: a concurrent create may have made a parent and not
    filled it yet."""
    cur = mountpoint
    for part in [p for p in fs.relpath(path, mountpoint).split("/") if p not in ("", ".")]:
        parent, cur = cur, f"{cur}/{part}"
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read_text(f"{cur}/{name}").strip():
                write(f"{cur}/{name}", read_text(f"{parent}/{name}").strip())


def _attach_device_filter(path: str, rules: list[dict[str, object]]) -> None:
    """cgroup v2 has no devices files: an eBPF program decides. Only where no v1 devices hierarchy does:
    on a hybrid host the kernel enforces the v1 rules already, and a second program enforcing the same
    rules would cost every create a BPF load and verification (~1 ms), as runc and crun do not."""
    from ..linux.shim import attach_device_filter
    from .devices import program

    attach_device_filter(program(rules), path)


# Errors that mean "this user may not make cgroups here", not "something is broken".
DENIED = (EACCES, EPERM, EROFS)


def make_cgroups(cgroups_path: str, container_id: str, resources: dict[str, object], rootless: bool = False,
                 warn: Callable[[str], None] | None = None) -> Cgroup:
    """The container's cgroup. Rootless, as runc: the device rules are left out (the devices cgroup is
    root's), and a cgroup the user may not make is skipped unless the config names a cgroupsPath or sets
    limits; then the container runs in the runtime's own cgroups. warn hears what the kernel took and
    discarded."""
    if rootless:
        resources = {k: v for k, v in resources.items() if k != "devices"}
    try:
        return _create(cgroups_path, container_id, resources, not rootless, warn)
    except PyociError as exc:
        if rootless and exc.errno in DENIED and not cgroups_path and not any(resources.values()):
            return Cgroup()
        raise


def _create(cgroups_path: str, container_id: str, resources: dict[str, object], devices: bool,
            warn: Callable[[str], None] | None) -> Cgroup:
    from . import limits

    cg = Cgroup()
    try:
        for h in hierarchies():
            path = resolve(cgroups_path, container_id, h)
            new = _mkdirs(path, h.mountpoint, cg.made)
            cg.paths[h.name] = path
            if h.v2 and new:
                _enable_v2_controllers(h, path)
            if "cpuset" in h.controllers:
                _init_cpuset(path, h.mountpoint)
        limits.apply(cg, resources, v2_only=is_v2_host(), devices=devices, warn=warn)
        if devices and cg.v2_path and cg.path("devices") is None:  # else limits wrote the v1 rules
            _attach_device_filter(cg.v2_path, resources.get("devices", []))
    except PyociError:
        cg.destroy()
        raise
    except OSError as exc:
        cg.destroy()
        raise PyociError(f"cgroup {exc.filename or ''}".strip(), exc.errno) from None
    return cg
