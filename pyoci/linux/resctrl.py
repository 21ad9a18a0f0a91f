"""linux.intelRdt through the resctrl filesystem (Intel RDT, AMD PQoS), by runtime-spec 1.3's rules.

The container's CTRL_MON group is closID's, or one named after the container; "/" is the default group (the
filesystem's root). Given schemata lines (l3CacheSchema, then memBwSchema, then schemata), a group this
create makes gets them written; a group that exists already must have them (compared, never overwritten:
other containers may share it). closID without schemata names a group made beforehand. enableMonitoring
makes a MON group mon_groups/<container id> below it. The executor joins both by writing "0" (itself) to
their tasks files right after its cgroups, so every process of the container starts in them. delete removes
what create made: the MON group, and the CTRL_MON group unless closID named it.

Where no resctrl is mounted, a config asking for it is refused (the spec: "MUST generate an error").
"""
from __future__ import annotations

import os

from .. import jsonio
from ..errors import ConfigError, PyociError
from ..record import Record
from .files import read_text, write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec import IntelRdt

WHERE = "linux.intelRdt"
# resources whose values are cache capacity bitmasks (hex); the others (MB, SMBA) are decimal
BITMASK_PREFIXES = ("L2", "L3")


def mountpoint() -> str | None:
    from .mountinfo import entries

    return next((point for _, point, fstype, _ in entries() if fstype == "resctrl"), None)


def monitoring(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "info", "L3_MON"))


class Group(Record):
    path: str = ""  # the CTRL_MON group
    made: bool = False  # by this create
    named: bool = False  # closID named it: delete leaves it (other containers may use it), an undo does not
    mon: str = ""  # the container's MON group (made by this create)

    def tasks(self) -> list[str]:
        """The tasks files the executor writes itself into, CTRL_MON group first."""
        return [os.path.join(p, "tasks") for p in (self.path, self.mon) if p]

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "made": self.made, "named": self.named, "mon": self.mon}

    @classmethod
    def from_json(cls, raw: dict) -> "Group":
        return cls(str(raw.get("path", "")), bool(raw.get("made")), bool(raw.get("named")), str(raw.get("mon", "")))


def _status(root: str) -> str:
    """What resctrl says about its last refusal (info/last_cmd_status), for the error."""
    try:
        text = read_text(os.path.join(root, "info", "last_cmd_status")).strip()
    except OSError:
        return ""
    return f" (resctrl: {text})" if text and text != "ok" else ""


def parse_line(line: str) -> tuple[str, dict[str, str]]:
    """"L3:0=ff;1=f0" → ("L3", {"0": "ff", "1": "f0"}); the kernel's own lines are indented."""
    resource, _, domains = line.strip().partition(":")
    values = {}
    for part in domains.split(";"):
        domain, _, value = part.partition("=")
        if domain.strip():
            values[domain.strip()] = value.strip()
    return resource.strip().upper(), values


def _same(resource: str, a: str, b: str) -> bool:
    """Values as the kernel compares them: bitmasks in hex whatever their leading zeros, bandwidths in
    decimal."""
    base = 16 if resource.startswith(BITMASK_PREFIXES) else 10
    try:
        return int(a, base) == int(b, base)
    except ValueError:
        return a == b


def mismatch(wanted: list[str], current: str) -> str | None:
    """The first schemata line of wanted that the group's schemata file does not hold, said how."""
    have = dict(parse_line(line) for line in current.splitlines() if line.strip())
    for line in wanted:
        resource, values = parse_line(line)
        if resource not in have:
            return f"the group has no {resource} resource"
        for domain, value in values.items():
            got = have[resource].get(domain)
            if got is None or not _same(resource, value, got):
                return f"{resource} domain {domain} is {got or 'absent'} there, not {value}"
    return None


def prepare(rdt: IntelRdt, container_id: str, root: str | None) -> Group:
    """The container's groups, made and filled as the spec says; refused where resctrl is not mounted. On
    failure nothing it made is left."""
    if root is None:
        raise ConfigError("this host has no resctrl filesystem mounted (Intel RDT / AMD PQoS, /sys/fs/resctrl)",
                          path=WHERE)
    name = rdt.clos_id or container_id
    group = Group(root if name == "/" else os.path.join(root, name), named=bool(rdt.clos_id))
    lines = rdt.lines()
    step = f"make the group {group.path}"
    try:
        if not os.path.isdir(group.path):
            if rdt.clos_id and not lines:
                raise ConfigError(f"no resctrl group {name}: without schemata, closID names a group made "
                                  "beforehand", path=f"{WHERE}.closID")
            os.mkdir(group.path, 0o755)
            group.made = True
            step = f"write {jsonio.dumps(lines)} to {group.path}/schemata"
            if lines:
                write(os.path.join(group.path, "schemata"), "\n".join(lines) + "\n", os.O_CREAT)
        elif lines:
            differs = mismatch(lines, read_text(os.path.join(group.path, "schemata")))
            if differs:
                raise ConfigError(f"resctrl group {name} exists with other schemata: {differs}", path=WHERE)
        if rdt.enable_monitoring:
            mon = os.path.join(group.path, "mon_groups", container_id)
            step = f"make the monitoring group {mon}" + ("" if monitoring(root) else " (no resctrl monitoring here)")
            os.mkdir(mon, 0o755)
            group.mon = mon
    except OSError as exc:
        remove(group, undo=True)
        raise PyociError(f"{WHERE}: {step}{_status(root)}", exc.errno) from None
    except BaseException:
        remove(group, undo=True)
        raise
    return group


def update(group: Group, lines: list[str], root: str | None) -> None:
    """`update --l3-cache-schema/--mem-bw-schema`: the lines written to the container's group."""
    if not group.path:
        raise PyociError("the container has no linux.intelRdt: no resctrl group to update (as runc, none is made "
                         "afterwards)")
    if root is None:
        raise PyociError("this host has no resctrl filesystem mounted (Intel RDT / AMD PQoS, /sys/fs/resctrl)")
    for line in lines:
        if "\n" in line:
            raise PyociError(f"{jsonio.dumps(line)}: one schemata line: no newline")
    try:
        write(os.path.join(group.path, "schemata"), "\n".join(lines) + "\n")
    except OSError as exc:
        raise PyociError(f"{WHERE}: write {jsonio.dumps(lines)} to {group.path}/schemata{_status(root)}",
                         exc.errno) from None


def remove(group: Group, undo: bool = False) -> None:
    """What prepare made: the MON group, then the CTRL_MON group (at delete, never one closID named)."""
    for path, ours in ((group.mon, bool(group.mon)), (group.path, group.made and (undo or not group.named))):
        if not ours:
            continue
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PyociError(f"{WHERE}: remove {path}", exc.errno) from None
