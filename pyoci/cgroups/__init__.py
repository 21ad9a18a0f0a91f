"""cgroups: one interface over v1, hybrid and v2 hosts.

`make.make_cgroups` makes the container's directories (remembering which ones it made, so `delete` removes
those and nothing else) and applies `linux.resources`; the executor joins them itself (born in the v2 one,
the plan's first steps for the rest) before it makes its cgroup namespace. What the short commands (kill,
delete, ps, pause) do with them is here, on `posix` alone (see linux/fs.py); `sub` resolves the sub-cgroups
that `exec --cgroup` names."""
from __future__ import annotations

import _signal  # signal.py's C core, int constants: signal.py itself imports enum
import posix
import time

from ..errors import EBUSY, PyociError
from ..linux import fs
from ..linux.files import read_text, write

ROOT = "/sys/fs/cgroup"


def is_v2_host() -> bool:
    return fs.exists(f"{ROOT}/cgroup.controllers")


def read_value(base: str | None, name: str) -> str:
    """A cgroup file's stripped text; "" when the controller or the file is not there (stats and checks
    are best effort)."""
    if base is None:
        return ""
    try:
        return read_text(f"{base}/{name}").strip()
    except OSError:
        return ""


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
        find when a create was killed before it recorded them."""
        from .make import hierarchies, resolve

        paths = {h.name: resolve("", container_id, h) for h in hierarchies()}
        return cls(paths, [p for p in paths.values() if fs.isdir(p)])

    def path(self, controller: str) -> str | None:
        for name, p in self.paths.items():
            if controller in name.split(",") or (name == "" and controller == "unified"):
                return p
        return None

    @property
    def v2_path(self) -> str | None:
        return self.paths.get("")

    def pids(self) -> list[int]:
        """Every process of the container: in its cgroup and in sub-cgroups below it (exec --cgroup, or
        ones the container made), as runc counts them."""
        for p in self.paths.values():
            if not fs.isdir(p):
                continue
            found = []
            for d in fs.subdirs(p):
                try:
                    found += [int(x) for x in read_text(f"{d}/cgroup.procs").split()]
                except FileNotFoundError:
                    continue  # removed while we walked
            return found
        return []

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                posix.kill(pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self, frozen: bool) -> None:
        """Freezes or thaws every process, and waits until the kernel says it is done."""
        v1 = self.path("freezer")
        if v1:
            path, value, done = f"{v1}/freezer.state", ("FROZEN" if frozen else "THAWED"), None
        elif self.v2_path:
            path, value = f"{self.v2_path}/cgroup.freeze", "1" if frozen else "0"
            done = f"{self.v2_path}/cgroup.events"
        elif not self.paths:
            if frozen:
                raise PyociError("the container has no cgroup (rootless, none delegated): nothing to freeze it with")
            return
        else:
            raise PyociError("no freezer: neither the v1 freezer nor cgroup v2 is mounted")
        if not fs.exists(path):
            return  # the cgroup is gone: nothing to freeze or thaw
        for _ in range(1000):
            write(path, value)
            text = read_text(done or path)
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
        own = {d: name == "" or "rdma" in name.split(",") for name, d in self.paths.items()}
        if self._remove(own, walk=False):
            return  # nearly always: the container's processes are gone and it made no sub-cgroups
        for attempt in range(50):
            left = self.pids()
            if not left:
                break
            self.signal_all(_signal.SIGKILL)
            time.sleep(0.01 * (attempt + 1))
        self._remove(own, walk=True)

    def _remove(self, own: dict[str, bool], walk: bool) -> bool:
        """The directories create made, deepest first (own: the container's own ones, each with whether its
        hierarchy can have rdma). Without walk, stops at the first own one that is busy and says so (False):
        it still has processes or sub-cgroups."""
        for d in reversed(self.made):
            if d not in own:
                _rmdir(d, wait=False)
            elif not _remove_tree(d, own[d], walk):
                return False
        return True


def _remove_tree(d: str, rdma: bool, walk: bool) -> bool:
    """The container's cgroup d with the sub-cgroups below it (exec --cgroup's, or ones the container made),
    deepest first. Nearly always there are none, so rmdir is tried first, and the walk (a directory listing
    per cgroup) is left for when the kernel says d is busy; without walk, that is where it stops (False).
    rdma is whether the hierarchy can have the rdma controller (v1's rdma, or v2): its pools go back first,
    if d has them."""
    if rdma and release_rdma_pools(d):
        for sub in fs.subdirs(d)[1:]:
            release_rdma_pools(sub)
    try:
        posix.rmdir(d)
        return True
    except OSError as exc:
        if exc.errno != EBUSY:
            return True  # gone already, or not ours to remove: as _rmdir
    if not walk:
        return False
    for sub in reversed(fs.subdirs(d)):
        if sub != d:
            _rmdir(sub, wait=True)
    _rmdir(d, wait=True)
    return True


def release_rdma_pools(d: str) -> bool:
    """Puts the rdma limits of a cgroup about to be removed back to max, which frees the kernel's pool for
    that device in it (nothing is charged once the container is gone). Removing the cgroup does not free it
    (Linux 6.1's rdmacg_css_offline only marks it max): the pool outlives the cgroup, and when the device is
    removed later the kernel trips over it (list_del corruption) with the rdma cgroup lock held, so every
    cgroup removal on the host hangs from then on. Seen in the tests' guest: `rdma link delete` after a
    container with rdma limits. Returns whether d has rdma limits to look at (then its sub-cgroups may too)."""
    path = f"{d}/rdma.max"
    try:
        lines = read_text(path).splitlines()
    except OSError:
        return False
    for fields in map(str.split, lines):  # device name, then name=value per resource
        if any(not kv.endswith("=max") for kv in fields[1:]):
            try:
                write(path, " ".join(fields[:1] + [f"{kv.partition('=')[0]}=max" for kv in fields[1:]]))
            except OSError:
                pass
    return True


def _rmdir(d: str, wait: bool) -> None:
    """rmdir, retrying EBUSY (a killed process still leaving) if wait; a directory that is not empty
    (another container's cgroup below a shared parent) stays."""
    for _ in range(20):
        try:
            posix.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if not (wait and exc.errno == EBUSY):
                return
            time.sleep(0.01)
