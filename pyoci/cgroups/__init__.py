"""cgroups: one interface over v1, hybrid and v2 hosts.

`create` makes the container's directories (remembering which ones it made, so `delete` removes those and
nothing else) and applies `linux.resources`; the executor joins them itself (born in the v2 one, the plan's
first steps for the rest) before it makes its cgroup namespace.
"""
from __future__ import annotations

import errno
import _signal  # signal.py's C core, int constants: signal.py itself imports enum
import os
import time

from ..errors import PyociError
from ..linux.files import write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

ROOT = "/sys/fs/cgroup"


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
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
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


def is_v2_host() -> bool:
    return os.path.exists(os.path.join(ROOT, "cgroup.controllers"))


def resolve(cgroups_path: str, container_id: str, h: Hierarchy) -> str:
    """Where the container's cgroup lives in hierarchy h (absolute path on the host)."""
    path = cgroups_path
    if path.count(":") == 2:  # systemd's slice:prefix:name, mapped onto cgroupfs as runc does without systemd
        slice_, prefix, name = path.split(":")
        unit = f"{prefix}-{name}.scope" if prefix else name
        path = "/" + (slice_ or "system.slice") + "/" + unit
    if not path:
        path = "/pyoci/" + container_id
    if not path.startswith("/"):
        path = os.path.join(h.own, path)
    rel = os.path.normpath("/" + path).lstrip("/")
    return os.path.join(h.mountpoint, rel)


class Cgroup:
    """The container's cgroup directories (a plain class: delete and kill import this module)."""

    def __init__(self, paths: dict[str, str] | None = None, made: list[str] | None = None) -> None:
        self.paths = paths or {}  # hierarchy name ("" for v2) → directory
        self.made = made or []  # directories create made, parents first

    def to_json(self) -> dict[str, object]:
        return {"paths": self.paths, "made": self.made}

    @classmethod
    def from_json(cls, raw: dict[str, list]) -> "Cgroup":
        return cls(dict(raw.get("paths", {})), list(raw.get("made", [])))

    @classmethod
    def default(cls, container_id: str) -> "Cgroup":
        """The cgroups a config without cgroupsPath gets, as far as they exist: what `delete --force` can still
        find when a create was killed before it recorded them. pyoci's shared parent is listed as create lists
        it, so that it goes too once this was its last container."""
        paths = {h.name: resolve("", container_id, h) for h in hierarchies()}
        made = [d for p in paths.values() if os.path.isdir(p) for d in (os.path.dirname(p), p)]
        return cls(paths, made)

    def path(self, controller: str) -> str | None:
        for name, p in self.paths.items():
            if controller in name.split(",") or (name == "" and controller == "unified"):
                return p
        return None

    @property
    def v2_path(self) -> str | None:
        return self.paths.get("")

    def within(self, subs: dict[str, str]) -> "Cgroup":
        """The sub-cgroups `exec --cgroup` names (see parse_sub_paths); they must exist already. Hierarchies
        whose controllers are not named stay at the container's cgroup."""
        targets: dict[str, tuple[str, str]] = {}  # hierarchy → (sub path, the argument that named it)
        if "" in subs:
            targets = {name: (subs[""], subs[""]) for name in self.paths}
        for ctrl, sub in subs.items():
            if not ctrl:
                continue
            name = next((n for n in self.paths if n and ctrl in n.split(",")), None)
            if name is None and set(self.paths) == {""}:
                raise PyociError(f"--cgroup {ctrl}:{sub}: cgroup v2 has one hierarchy: give the path alone")
            if name is None:
                raise PyociError(f"--cgroup {ctrl}:{sub}: the container has no {ctrl} cgroup")
            if targets.setdefault(name, (sub, f"{ctrl}:{sub}"))[0] != sub:
                raise PyociError(f"--cgroup {ctrl}:{sub}: {ctrl} shares a hierarchy ({name}) with a controller "
                                 f"given {targets[name][0]}")
        paths = dict(self.paths)
        for name, (sub, arg) in targets.items():
            base = self.paths[name]
            path = os.path.normpath(os.path.join(base, sub.lstrip("/")))
            if path != base and not path.startswith(base + "/"):
                raise PyociError(f"--cgroup {arg}: not a sub-cgroup of the container's cgroup")
            if not os.path.isdir(path):
                raise PyociError(f"--cgroup {arg}: no sub-cgroup {path}", errno.ENOENT)
            paths[name] = path
        return Cgroup(paths)

    def pids(self) -> list[int]:
        """Every process of the container: in its cgroup and in sub-cgroups below it (exec --cgroup, or
        ones the container made), as runc counts them."""
        for p in self.paths.values():
            if not os.path.isdir(p):
                continue
            found = []
            for d, _, _ in os.walk(p):
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        found += [int(x) for x in f.read().split()]
                except FileNotFoundError:
                    continue  # removed while we walked
            return found
        return []

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self, frozen: bool) -> None:
        """Freezes or thaws every process, and waits until the kernel says it is done."""
        v1 = self.path("freezer")
        if v1:
            path, value, done = os.path.join(v1, "freezer.state"), ("FROZEN" if frozen else "THAWED"), None
        elif self.v2_path:
            path, value = os.path.join(self.v2_path, "cgroup.freeze"), "1" if frozen else "0"
            done = os.path.join(self.v2_path, "cgroup.events")
        elif not self.paths:
            if frozen:
                raise PyociError("the container has no cgroup (rootless, none delegated): nothing to freeze it with")
            return
        else:
            raise PyociError("no freezer: neither the v1 freezer nor cgroup v2 is mounted")
        if not os.path.exists(path):
            return  # the cgroup is gone: nothing to freeze or thaw
        for _ in range(1000):
            write(path, value)
            with open(done or path) as f:
                text = f.read()
            if (done and f"frozen {value}" in text) or (not done and text.strip() == value):
                return
            time.sleep(0.001)
        raise PyociError(f"cgroup {path}: did not become {value}")

    def destroy(self) -> None:
        """Removes what create made, with the sub-cgroups below the container's own, killing leftovers
        first; parents shared with others stay. A cgroup that create did not make (a cgroupsPath naming one
        that existed, even "/") is not emptied: its other processes are not the container's."""
        if not set(self.made) & set(self.paths.values()):
            return
        for attempt in range(50):
            left = self.pids()
            if not left:
                break
            self.signal_all(_signal.SIGKILL)
            time.sleep(0.01 * (attempt + 1))
        own = set(self.paths.values())
        for d in reversed(self.made):
            if d in own:
                for sub, _, _ in os.walk(d, topdown=False):
                    release_rdma_pools(sub)
                    if sub != d:
                        _rmdir(sub, wait=True)
            _rmdir(d, wait=d in own)


def release_rdma_pools(d: str) -> None:
    """Puts the rdma limits of a cgroup about to be removed back to max, which frees the kernel's pool for
    that device in it (nothing is charged once the container is gone). Removing the cgroup does not free it
    (Linux 6.1's rdmacg_css_offline only marks it max): the pool outlives the cgroup, and when the device is
    removed later the kernel trips over it (list_del corruption) with the rdma cgroup lock held, so every
    cgroup removal on the host hangs from then on. Seen in the tests' guest: `rdma link delete` after a
    container with rdma limits."""
    path = os.path.join(d, "rdma.max")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for fields in map(str.split, lines):  # device name, then name=value per resource
        if any(not kv.endswith("=max") for kv in fields[1:]):
            try:
                write(path, " ".join(fields[:1] + [f"{kv.partition('=')[0]}=max" for kv in fields[1:]]))
            except OSError:
                pass


def _rmdir(d: str, wait: bool) -> None:
    """rmdir, retrying EBUSY (a killed process still leaving) if wait; a directory that is not empty
    (another container's cgroup below a shared parent) stays."""
    for _ in range(20):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if not (wait and exc.errno == errno.EBUSY):
                return
            time.sleep(0.01)


def parse_sub_paths(args: list[str]) -> dict[str, str]:
    """`exec --cgroup` as runc reads it: one PATH alone, for every hierarchy (the only form cgroup v2 has),
    or CONTROLLER[,CONTROLLER...]:PATH, repeatable, for v1 controllers. Returns controller → path, with
    "" for every hierarchy."""
    subs: dict[str, str] = {}
    for arg in args:
        ctrls, sep, path = arg.partition(":")
        if not sep:
            if len(args) != 1:
                raise PyociError(f"--cgroup {arg}: a path without CONTROLLER: must be the only --cgroup")
            subs[""] = arg
            continue
        for ctrl in ctrls.split(","):
            if not ctrl:
                raise PyociError(f"--cgroup {arg}: empty controller name")
            if ctrl in subs:
                raise PyociError(f"--cgroup {arg}: controller {ctrl} given twice")
            subs[ctrl] = path
    return subs


def _mkdirs(path: str, mountpoint: str, made: list[str]) -> list[str]:
    """mkdir -p that records what it made; returns the new directories, parents first.

    A parent may vanish under us (another container's delete removing the shared default parent): retry."""
    for _ in range(10):
        new = []
        cur = mountpoint
        try:
            for part in os.path.relpath(path, mountpoint).split("/"):
                if part in ("", "."):
                    continue
                cur = os.path.join(cur, part)
                try:
                    os.mkdir(cur, 0o755)
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
        with open(os.path.join(h.mountpoint, "cgroup.controllers")) as f:
            available = f.read().split()
    except OSError:
        return
    rel = os.path.relpath(os.path.dirname(path), h.mountpoint)
    cur = h.mountpoint
    for part in [""] + ([p for p in rel.split("/") if p not in ("", ".")]):
        cur = os.path.join(cur, part) if part else cur
        for c in available:
            try:
                write(os.path.join(cur, "cgroup.subtree_control"), "+" + c)
            except OSError:
                pass  # a controller the parent cannot delegate (e.g. threaded) is skipped


def _init_cpuset(path: str, mountpoint: str) -> None:
    """A new v1 cpuset is empty and refuses tasks: fill every empty level from its parent, top down.

    Every level, not only the ones this create made: a concurrent create may have made a parent and not
    filled it yet."""
    cur = mountpoint
    for part in [p for p in os.path.relpath(path, mountpoint).split("/") if p not in ("", ".")]:
        parent, cur = cur, os.path.join(cur, part)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(cur, name)) as fh:
                if fh.read().strip():
                    continue
            with open(os.path.join(parent, name)) as fh:
                write(os.path.join(cur, name), fh.read().strip())


def _attach_device_filter(path: str, rules: list[dict[str, object]]) -> None:
    """cgroup v2 has no devices files: an eBPF program decides. Only where no v1 devices hierarchy does:
    on a hybrid host the kernel enforces the v1 rules already, and a second program enforcing the same
    rules would cost every create a BPF load and verification (~1 ms), as runc and crun do not."""
    from ..linux.shim import attach_device_filter
    from .devices import program

    attach_device_filter(program(rules), path)


# Errors that mean "this user may not make cgroups here", not "something is broken".
DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def create(cgroups_path: str, container_id: str, resources: dict[str, object], rootless: bool = False,
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
            first = len(cg.made)
            new = _mkdirs(path, h.mountpoint, cg.made)
            if not cgroups_path and os.path.dirname(path) not in new:
                # pyoci's own parent of default cgroups: delete tries to remove it once it is empty.
                cg.made.insert(first, os.path.dirname(path))
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
