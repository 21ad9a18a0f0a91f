"""`exec --cgroup`: the sub-cgroups of a container's cgroup that an exec'd process joins, named as runc's
flag names them. Only exec uses this; the short commands that import pyoci.cgroups do not load it."""
from __future__ import annotations

from ..errors import ENOENT, PyociError
from ..linux import fs
from . import Cgroup


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


def within(cg: Cgroup, subs: dict[str, str]) -> Cgroup:
    """The sub-cgroups `exec --cgroup` names (see parse_sub_paths); they must exist already. Hierarchies
    whose controllers are not named stay at the container's cgroup."""
    targets: dict[str, tuple[str, str]] = {}  # hierarchy → (sub path, the argument that named it)
    if "" in subs:
        targets = {name: (subs[""], subs[""]) for name in cg.paths}
    for ctrl, sub in subs.items():
        if not ctrl:
            continue
        name = next((n for n in cg.paths if n and ctrl in n.split(",")), None)
        if name is None and set(cg.paths) == {""}:
            raise PyociError(f"--cgroup {ctrl}:{sub}: cgroup v2 has one hierarchy: give the path alone")
        if name is None:
            raise PyociError(f"--cgroup {ctrl}:{sub}: the container has no {ctrl} cgroup")
        if targets.setdefault(name, (sub, f"{ctrl}:{sub}"))[0] != sub:
            raise PyociError(f"--cgroup {ctrl}:{sub}: {ctrl} shares a hierarchy ({name}) with a controller "
                             f"given {targets[name][0]}")
    paths = dict(cg.paths)
    for name, (sub, arg) in targets.items():
        base = cg.paths[name]
        path = fs.normpath(f"{base}/{sub.lstrip('/')}")
        if path != base and not path.startswith(base + "/"):
            raise PyociError(f"--cgroup {arg}: not a sub-cgroup of the container's cgroup")
        if not fs.isdir(path):
            raise PyociError(f"--cgroup {arg}: no sub-cgroup {path}", ENOENT)
        paths[name] = path
    return Cgroup(paths)
