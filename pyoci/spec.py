"""config.json: load, validate (schema from specs/ + the rules a schema cannot state), parse into records.

The schema check uses a validator generated from specs/config.schema.json at build time, so `create`
never imports jsonschema; the test suite holds the generated code to jsonschema's verdicts.
"""
from __future__ import annotations


TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

from . import jsonio
from .errors import ConfigError
from .linux.caps import CAPABILITIES
from .linux import cpulist, sched
from .linux.files import read_bytes
from .linux.fs import join, normpath
from .linux.rlimits import RLIMITS
from .record import Record, field

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Sections of config.json for other platforms: a Linux runtime cannot honour them, and says so.
OTHER_PLATFORMS = ("windows", "solaris", "vm", "zos", "freebsd")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")
SEMVER_LABEL = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """KEY=VALUE lists joined: a key in extra replaces base's, in base's place."""
    env = {e.split("=", 1)[0]: e for e in base}
    for e in extra:
        env[e.split("=", 1)[0]] = e
    return list(env.values())


class IDMapping(Record):
    container_id: int
    host_id: int
    size: int


class Mount(Record):
    destination: str
    type: str = ""
    source: str = ""
    options: list[str] = field(default_factory=list)
    uid_mappings: list[IDMapping] = field(default_factory=list)  # an idmapped mount: on-disk id → shown id
    gid_mappings: list[IDMapping] = field(default_factory=list)


class Namespace(Record):
    type: str
    path: str = ""


class Device(Record):
    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class Hook(Record):
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None


class User(Record):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)


class Rlimit(Record):
    type: str
    hard: int
    soft: int


class Scheduler(Record):
    policy: str
    nice: int = 0
    priority: int = 0
    flags: list[str] = field(default_factory=list)
    runtime: int = 0
    deadline: int = 0
    period: int = 0


class IOPriority(Record):
    klass: str  # "class" in the config
    priority: int


class CPUAffinity(Record):
    """execCPUAffinity as CPU ids; an empty list was not given."""
    initial: list[int] = field(default_factory=list)
    final: list[int] = field(default_factory=list)


class Process(Record):
    args: list[str]
    cwd: str = "/"
    env: list[str] = field(default_factory=list)
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    user: User = field(default_factory=User)
    capabilities: dict[str, list[str]] | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str = ""
    selinux_label: str = ""
    scheduler: Scheduler | None = None
    io_priority: IOPriority | None = None
    exec_cpu_affinity: CPUAffinity | None = None  # for processes `exec` starts, never the init (the spec's rule)


class MemoryPolicy(Record):
    mode: str
    nodes: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


class IntelRdt(Record):
    clos_id: str = ""  # "": the container's id
    l3_cache_schema: str = ""
    mem_bw_schema: str = ""
    schemata: list[str] = field(default_factory=list)
    enable_monitoring: bool = False

    def lines(self) -> list[str]:
        """The schemata lines to write, in the spec's order: L3, then MB, then schemata's own."""
        return [line for line in (self.l3_cache_schema, self.mem_bw_schema, *self.schemata) if line]


class Config(Record):
    oci_version: str
    root_path: str
    root_readonly: bool = False
    mounts: list[Mount] = field(default_factory=list)
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IDMapping] = field(default_factory=list)
    gid_mappings: list[IDMapping] = field(default_factory=list)
    time_offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    cgroups_path: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    rootfs_propagation: str = ""
    sysctl: dict[str, str] = field(default_factory=dict)
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    personality: dict[str, Any] | None = None
    seccomp: dict[str, Any] | None = None
    mount_label: str = ""
    net_devices: dict[str, str] = field(default_factory=dict)  # host interface → its name in the container
    memory_policy: MemoryPolicy | None = None
    intel_rdt: IntelRdt | None = None

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)


def schema_path_message(name: str, message: str) -> tuple[str, str]:
    """fastjsonschema says 'data.mounts[3].destination must be string'; we say 'mounts[3].destination'."""
    path = name[len("data"):].lstrip(".") if name.startswith("data") else name
    text = message[len(name):].strip() if message.startswith(name) else message
    return path, text


def check_strings(value: Any, path: str = "") -> None:
    """Every string (and key) must reach the kernel intact: no NUL byte, no lone surrogate (JSON's
    "\\ud800" escapes decode to one, and no file name or argument can hold it)."""
    if isinstance(value, str):
        if "\0" in value:
            raise ConfigError(f"contains a NUL byte: {jsonio.dumps(value)[:200]}", path=path)
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ConfigError(f"not valid Unicode (a lone surrogate): {jsonio.dumps(value)[:200]}", path=path) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            check_strings(key, where)
            check_strings(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{path}[{i}]")


def validate_schema(raw: Any) -> None:
    from ._config_validator import JsonSchemaValueException, validate

    try:
        validate(raw)
    except JsonSchemaValueException as exc:
        path, text = schema_path_message(exc.name or "data", exc.message)
        if exc.rule == "enum":
            text = f"unknown value {jsonio.dumps(exc.value)} ({text})"
        elif exc.rule == "propertyNames":
            text = f"invalid key in {jsonio.dumps(sorted(exc.value))[:200]}: keys must be non-empty strings"
        raise ConfigError(text, path=path) from None
    check_strings(raw)


def load(bundle: str) -> Config:
    path = join(bundle, "config.json")
    try:
        # No config field is a real number: a Real fails every integer check, as 1.0 does in runc.
        raw = jsonio.loads(read_bytes(path), parse_float=jsonio.Real)
    except FileNotFoundError:
        raise ConfigError(f"not found in bundle {bundle}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot parse: {exc}") from None
    except RecursionError:
        raise ConfigError("cannot parse: nested too deeply") from None
    validate_schema(raw)
    return parse(raw)


def _abs(value: str, where: str) -> str:
    if not value.startswith("/"):
        raise ConfigError(f"must be absolute: {jsonio.dumps(value)}", path=where)
    return value


def _destination(value: str, where: str) -> str:
    """A mount destination, cleaned lexically ("/proc/./x/.." is "/proc") as runc does before its checks."""
    return normpath(_abs(value, where))


# Inside /proc, runc lets mounts cover only these files (the ones lxcfs emulates); /proc itself takes only a
# proc mount or a bind of one. Anything else there could hide or replace the kernel's files (CVE-2019-16884).
PROC_FILES_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                      "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
                      "/proc/sys/crypto/fips_enabled")


def check_proc_mount(i: int, m: Mount) -> None:
    """runc's rule for mounts on /proc paths (a bind onto /proc itself is checked against its source later)."""
    where = f"mounts[{i}].destination"
    bind = m.type == "bind" or any(o in ("bind", "rbind") for o in m.options)
    if m.destination == "/proc":
        if m.type != "proc" and not bind:
            raise ConfigError(f"only a proc mount can go on /proc, not {jsonio.dumps(m.type or 'none')}", path=where)
    elif m.destination.startswith("/proc/") and m.destination not in PROC_FILES_ALLOWED:
        raise ConfigError(f"cannot mount inside /proc: {jsonio.dumps(m.destination)}", path=where)


def parse_process(p: dict[str, Any]) -> Process:
    args = p.get("args") or []
    if not args:
        raise ConfigError("must name the program to run", path="process.args")
    caps = p.get("capabilities")
    if caps is not None:
        for kind in CAP_SETS:
            for i, name in enumerate(caps.get(kind, [])):
                if name not in CAPABILITIES:
                    raise ConfigError(f"unknown capability {jsonio.dumps(name)}", path=f"process.capabilities.{kind}[{i}]")
        caps = {kind: list(caps.get(kind, [])) for kind in CAP_SETS}
    rlimits, seen = [], set()
    for i, r in enumerate(p.get("rlimits", [])):
        where = f"process.rlimits[{i}].type"
        if r["type"] not in RLIMITS:
            raise ConfigError(f"unknown rlimit {jsonio.dumps(r['type'])}", path=where)
        if r["type"] in seen:
            raise ConfigError(f"duplicate rlimit {jsonio.dumps(r['type'])}", path=where)
        if r["soft"] > r["hard"]:
            raise ConfigError("soft limit is above the hard limit", path=f"process.rlimits[{i}]")
        seen.add(r["type"])
        rlimits.append(Rlimit(r["type"], r["hard"], r["soft"]))
    u = p.get("user", {})
    if "commandLine" in p:
        raise ConfigError("a Windows field: on Linux the program and its arguments are process.args",
                          path="process.commandLine")
    if "username" in u:
        raise ConfigError("a Windows field: on Linux the user is process.user.uid and gid",
                          path="process.user.username")
    size = p.get("consoleSize")
    io = p.get("ioPriority")
    return Process(
        args=list(args),
        cwd=_abs(p.get("cwd", "/"), "process.cwd"),
        env=list(p.get("env", [])),
        terminal=bool(p.get("terminal", False)),
        console_size=(size["height"], size["width"]) if size else None,
        user=User(u.get("uid", 0), u.get("gid", 0), u.get("umask"), list(u.get("additionalGids", []))),
        capabilities=caps,
        rlimits=rlimits,
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        oom_score_adj=p.get("oomScoreAdj"),
        apparmor_profile=p.get("apparmorProfile", ""),
        selinux_label=p.get("selinuxLabel", ""),
        scheduler=_scheduler(p["scheduler"]) if "scheduler" in p else None,
        io_priority=IOPriority(io["class"], io["priority"]) if io else None,
        exec_cpu_affinity=_affinity(p["execCPUAffinity"]) if "execCPUAffinity" in p else None,
    )


def _id_list(text: str, where: str) -> list[int]:
    try:
        return cpulist.parse(text)
    except ValueError as exc:
        raise ConfigError(f"not a list like 0-3,7: {exc}", path=where) from None


def _affinity(raw: dict[str, str]) -> CPUAffinity | None:
    where = "process.execCPUAffinity"
    aff = CPUAffinity(*(_id_list(raw[k], f"{where}.{k}") if raw.get(k, "").strip(", ") else []
                        for k in ("initial", "final")))
    return aff if aff.initial or aff.final else None


def _scheduler(raw: dict[str, Any]) -> Scheduler:
    """process.scheduler, refused where the kernel would refuse it or quietly drop a part of it."""
    where = "process.scheduler"
    s = Scheduler(raw["policy"], raw.get("nice", 0), raw.get("priority", 0), list(raw.get("flags", [])),
                  raw.get("runtime", 0), raw.get("deadline", 0), raw.get("period", 0))
    if s.policy in sched.NOT_IN_LINUX:
        raise ConfigError(f"{s.policy} is not a Linux policy (the kernel reserves its number and refuses it)",
                          path=f"{where}.policy")
    realtime, deadline = s.policy in ("SCHED_FIFO", "SCHED_RR"), s.policy == "SCHED_DEADLINE"
    if not -20 <= s.nice <= 19:
        raise ConfigError(f"{s.nice} is not in -20..19 (the kernel would clamp it)", path=f"{where}.nice")
    if s.nice and (realtime or deadline):
        raise ConfigError(f"{s.policy} has no nice value (only SCHED_OTHER, SCHED_BATCH and SCHED_IDLE do)",
                          path=f"{where}.nice")
    if realtime and not 1 <= s.priority <= 99:
        raise ConfigError(f"{s.policy} takes a priority in 1..99, not {s.priority}", path=f"{where}.priority")
    if s.priority and not realtime:
        raise ConfigError(f"{s.policy} has no priority (only SCHED_FIFO and SCHED_RR do)", path=f"{where}.priority")
    for key in ("runtime", "deadline", "period"):
        if getattr(s, key) and not deadline:
            raise ConfigError(f"only SCHED_DEADLINE takes a {key}", path=f"{where}.{key}")
    for i, flag in enumerate(s.flags):
        if flag in ("SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN") and not deadline:
            raise ConfigError(f"{flag} is for SCHED_DEADLINE only", path=f"{where}.flags[{i}]")
    if deadline:
        period = s.period or s.deadline
        if not 0 < s.runtime <= s.deadline <= period:
            raise ConfigError(f"SCHED_DEADLINE needs 0 < runtime <= deadline <= period (runtime {s.runtime}, "
                              f"deadline {s.deadline}, period {s.period})", path=where)
        if s.runtime < 1024:
            raise ConfigError(f"{s.runtime} is below the kernel's minimum of 1024 ns", path=f"{where}.runtime")
    return s


def _hooks(raw: dict[str, Any]) -> dict[str, list[Hook]]:
    hooks: dict[str, list[Hook]] = {}
    for kind in HOOK_KINDS:
        for i, h in enumerate(raw.get(kind, [])):
            _abs(h["path"], f"hooks.{kind}[{i}].path")
            hooks.setdefault(kind, []).append(Hook(h["path"], list(h.get("args", [])), list(h.get("env", [])), h.get("timeout")))
    return hooks


def _namespaces(linux: dict[str, Any]) -> list[Namespace]:
    out, seen = [], set()
    for i, ns in enumerate(linux.get("namespaces", [])):
        if ns["type"] in seen:
            raise ConfigError(f"duplicate namespace {jsonio.dumps(ns['type'])}", path=f"linux.namespaces[{i}].type")
        seen.add(ns["type"])
        path = ns.get("path", "")
        if path:
            _abs(path, f"linux.namespaces[{i}].path")
        out.append(Namespace(ns["type"], path))
    return out


def _mappings(linux: dict[str, Any], key: str) -> list[IDMapping]:
    return [IDMapping(m["containerID"], m["hostID"], m["size"]) for m in linux.get(key, [])]


def _mount(i: int, m: dict[str, Any]) -> Mount:
    return Mount(_destination(m["destination"], f"mounts[{i}].destination"), m.get("type", ""), m.get("source", ""),
                 list(m.get("options", [])), _mappings(m, "uidMappings"), _mappings(m, "gidMappings"))


def _check_idmapped(cfg: Config) -> None:
    """runc's rules: idmapped mounts are binds; "idmap"/"ridmap" alone take the container's own maps."""
    for i, m in enumerate(cfg.mounts):
        wanted = [o for o in m.options if o in ("idmap", "ridmap")]
        if not (m.uid_mappings or wanted):
            continue
        if m.type != "bind" and not {"bind", "rbind"} & set(m.options):
            raise ConfigError("an idmapped mount must be a bind mount", path=f"mounts[{i}]")
        if not m.uid_mappings and not cfg.uid_mappings:
            raise ConfigError(f"{wanted[0]} without uidMappings/gidMappings needs the container's user namespace "
                              "mappings", path=f"mounts[{i}].options")


# The sysctls a namespace isolates (as runc allows them); any other would change the host.
SYSCTL_NAMESPACE = (("net.", "network"), ("kernel.msgmax", "ipc"), ("kernel.msgmnb", "ipc"), ("kernel.msgmni", "ipc"),
                    ("kernel.sem", "ipc"), ("kernel.shmall", "ipc"), ("kernel.shmmax", "ipc"), ("kernel.shmmni", "ipc"),
                    ("kernel.shm_rmid_forced", "ipc"), ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"),
                    ("kernel.domainname", "uts"))


def sysctl_namespace(key: str) -> str | None:
    """The namespace that isolates a sysctl (dotted or slash form), or None if none does."""
    dotted = key.replace("/", ".")
    return next((ns for prefix, ns in SYSCTL_NAMESPACE
                 if dotted.startswith(prefix) if prefix.endswith(".") or dotted == prefix), None)


def _check_linux(cfg: Config) -> None:
    kinds = {ns.type: ns for ns in cfg.namespaces}
    user = kinds.get("user")
    if (cfg.uid_mappings or cfg.gid_mappings) and not user:
        raise ConfigError("id mappings need a user namespace",
                          path="linux.uidMappings" if cfg.uid_mappings else "linux.gidMappings")
    if user and not user.path and not (cfg.uid_mappings and cfg.gid_mappings):
        raise ConfigError("a new user namespace needs uidMappings and gidMappings", path="linux.namespaces")
    if cfg.time_offsets and not (kinds.get("time") and not kinds["time"].path):
        raise ConfigError("timeOffsets need a new time namespace", path="linux.timeOffsets")
    for key in cfg.sysctl:
        ns_kind = sysctl_namespace(key)
        if ns_kind is None:
            raise ConfigError("not isolated by any namespace: it would change the host", path=f"linux.sysctl.{key}")
        if ns_kind not in kinds:
            article = "an" if ns_kind == "ipc" else "a"
            raise ConfigError(f"needs {article} {ns_kind} namespace", path=f"linux.sysctl.{key}")
    if cfg.net_devices and "network" not in kinds:
        raise ConfigError("moving interfaces needs a network namespace of the container's", path="linux.netDevices")
    if cfg.hostname and "uts" not in kinds:
        raise ConfigError("setting the hostname needs a uts namespace", path="hostname")
    if cfg.domainname and "uts" not in kinds:
        raise ConfigError("setting the domainname needs a uts namespace", path="domainname")
    if cfg.rootfs_propagation and cfg.rootfs_propagation not in PROPAGATIONS:
        raise ConfigError(f"unknown propagation {jsonio.dumps(cfg.rootfs_propagation)}", path="linux.rootfsPropagation")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(getattr(cfg, "masked_paths" if key == "maskedPaths" else "readonly_paths")):
            _abs(p, f"linux.{key}[{i}]")
    for i, d in enumerate(cfg.devices):
        _abs(d.path, f"linux.devices[{i}].path")
    for i, m in enumerate(cfg.mounts):
        check_proc_mount(i, m)


def _netdev_name(name: str, where: str) -> str:
    """An interface name the kernel takes (what runc checks): at most 15 bytes, no "/", ":" or blank, not
    "." or ".."."""
    if not name or len(name.encode()) > 15 or name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise ConfigError(f"{jsonio.dumps(name)} is not an interface name (1-15 bytes, no '/', ':' or blank)",
                          path=where)
    return name


def _net_devices(raw: dict[str, dict[str, str]]) -> dict[str, str]:
    devices: dict[str, str] = {}
    for host, entry in raw.items():
        where = f"linux.netDevices.{host}"
        _netdev_name(host, where)
        inside = _netdev_name(entry.get("name") or host, f"{where}.name")
        taken = next((h for h, n in devices.items() if n == inside and "%d" not in n), None)
        if taken:
            raise ConfigError(f"{jsonio.dumps(inside)} is also the name given to {taken}", path=where)
        devices[host] = inside
    return devices


def _memory_policy(raw: dict[str, Any]) -> MemoryPolicy:
    where = "linux.memoryPolicy"
    nodes = _id_list(raw["nodes"], f"{where}.nodes") if raw.get("nodes", "").strip(", ") else []
    mp = MemoryPolicy(raw["mode"], nodes, list(raw.get("flags", [])))
    if mp.mode in sched.MPOL_NO_NODES and nodes:
        raise ConfigError(f"{mp.mode} takes no nodes", path=f"{where}.nodes")
    if mp.mode in sched.MPOL_SOME_NODES and not nodes:
        raise ConfigError(f"{mp.mode} needs at least one node", path=f"{where}.nodes")
    if {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"} <= set(mp.flags):
        raise ConfigError("MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other", path=f"{where}.flags")
    return mp


def _intel_rdt(raw: dict[str, Any]) -> IntelRdt:
    where = "linux.intelRdt"
    rdt = IntelRdt(raw.get("closID", ""), raw.get("l3CacheSchema", ""), raw.get("memBwSchema", ""),
                   list(raw.get("schemata", [])), bool(raw.get("enableMonitoring", False)))
    if rdt.clos_id != "/" and (rdt.clos_id in (".", "..") or "/" in rdt.clos_id or "\n" in rdt.clos_id):
        raise ConfigError(f"{jsonio.dumps(rdt.clos_id)} is not a resctrl group name (\"/\" is the default group)",
                          path=f"{where}.closID")
    if "\n" in rdt.l3_cache_schema:
        raise ConfigError("one schemata line: no newline", path=f"{where}.l3CacheSchema")
    return rdt


def check_resources(res: dict[str, Any], where: str) -> None:
    """linux.resources (or an update's): what the schema cannot say, refused before any cgroup file is
    written."""
    mem = res.get("memory", {})
    swappiness = mem.get("swappiness", -1)
    if swappiness not in (-1, (1 << 64) - 1) and not 0 <= swappiness <= 100:  # -1 as the uint64 it is in the spec
        raise ConfigError(f"{swappiness} is not in 0..100", path=f"{where}.memory.swappiness")
    limit, swap = mem.get("limit", -1), mem.get("swap", 0)
    if limit > 0 and 0 < swap < limit:
        raise ConfigError(f"{swap} (memory+swap) is below the memory limit {limit}", path=f"{where}.memory.swap")
    for key in res.get("unified", {}):
        if "/" in key or key.startswith("."):
            raise ConfigError("not a cgroup file name", path=f"{where}.unified.{key}")


def supported_version(version: str) -> bool:
    r"""The verdict of re.match(r"^1\.[0-3]\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$", version) without
    importing re (several ms per call): `$` also matches before a final newline, and \d is any Unicode
    decimal digit (the schema's pattern has refused both before this runs)."""
    if version.endswith("\n"):
        version = version[:-1]
    core, plus, build = version.partition("+")
    if plus and not (build and SEMVER_LABEL.issuperset(build)):
        return False
    if not (core[:2] == "1." and core[2:3] in ("0", "1", "2", "3") and core[3:4] == "."):
        return False
    patch = core[4:]
    digits = 0
    while digits < len(patch) and patch[digits].isdecimal():
        digits += 1
    pre = patch[digits:]
    return digits > 0 and (not pre or (pre[0] == "-" and len(pre) > 1 and SEMVER_LABEL.issuperset(pre[1:])))


def parse(raw: dict[str, Any]) -> Config:
    version = raw["ociVersion"]
    if not supported_version(version):
        raise ConfigError(f"unsupported version {jsonio.dumps(version)} (1.0.0 through 1.3.x are)", path="ociVersion")
    root = raw.get("root")
    if not root:
        raise ConfigError("required on Linux", path="root")
    for platform in OTHER_PLATFORMS:
        if platform in raw:
            raise ConfigError("settings for another platform: pyoci runs Linux containers", path=platform)
    linux = raw.get("linux", {})
    personality = linux.get("personality")
    if personality and personality.get("flags"):
        raise ConfigError("no personality flags are defined yet (the spec lists none)", path="linux.personality.flags")
    cfg = Config(
        oci_version=version,
        root_path=root["path"],
        root_readonly=bool(root.get("readonly", False)),
        mounts=[_mount(i, m) for i, m in enumerate(raw.get("mounts", []))],
        process=parse_process(raw["process"]) if "process" in raw else None,
        hostname=raw.get("hostname"),
        domainname=raw.get("domainname"),
        hooks=_hooks(raw.get("hooks", {})),
        annotations=dict(raw.get("annotations", {})),
        namespaces=_namespaces(linux),
        uid_mappings=_mappings(linux, "uidMappings"),
        gid_mappings=_mappings(linux, "gidMappings"),
        time_offsets={k: (v.get("secs", 0), v.get("nanosecs", 0)) for k, v in linux.get("timeOffsets", {}).items()},
        devices=[Device(d["type"], d["path"], d.get("major", 0), d.get("minor", 0), d.get("fileMode"),
                        d.get("uid"), d.get("gid")) for d in linux.get("devices", [])],
        cgroups_path=linux.get("cgroupsPath", ""),
        resources=dict(linux.get("resources", {})),
        rootfs_propagation=linux.get("rootfsPropagation", ""),
        sysctl=dict(linux.get("sysctl", {})),
        masked_paths=list(linux.get("maskedPaths", [])),
        readonly_paths=list(linux.get("readonlyPaths", [])),
        personality=linux.get("personality"),
        seccomp=linux.get("seccomp"),
        mount_label=linux.get("mountLabel", ""),
        net_devices=_net_devices(linux.get("netDevices", {})),
        memory_policy=_memory_policy(linux["memoryPolicy"]) if "memoryPolicy" in linux else None,
        intel_rdt=_intel_rdt(linux["intelRdt"]) if "intelRdt" in linux else None,
    )
    _check_linux(cfg)
    _check_idmapped(cfg)
    check_resources(cfg.resources, "linux.resources")
    return cfg
