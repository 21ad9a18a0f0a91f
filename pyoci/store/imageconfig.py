"""An image's config turned into a runtime config: the image says what to run and as whom; the rest is what
podman gives a container of it (`pyoci spec`'s namespaces and masked paths, podman's default capabilities,
new privileges allowed so that su and setuid helpers work), changed by podman's flags (RunOptions).

The mapping follows the image-spec's conversion rules: Entrypoint + Cmd -> args (arguments given on the
command line replace Cmd), Env over the default PATH, WorkingDir -> cwd, User resolved against the image's own
/etc/passwd and /etc/group, Labels and the listed fields -> annotations.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from .. import jsonio
from ..defaults import default_config
from ..errors import PyociError
from ..record import Record, field
from ..spec import merge_env

# containers.conf's default_capabilities (podman 4): what a root process of a podman container holds
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
               "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


class RunOptions(Record):
    """podman run's flags of the same names, for `image run` and `bundle create`."""
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    mounts: list[dict[str, Any]] = field(default_factory=list)  # added by the bundle, after its /etc files


def _rows(data: bytes | None):
    for line in (data or b"").decode(errors="replace").splitlines():
        cols = line.split(":")
        if len(cols) >= 4 and cols[2].isdigit():
            yield cols


def resolve_user(spec: str, read: Callable[[str], bytes | None]) -> dict[str, int]:
    """`user`, `uid`, `user:group`, `uid:gid` as runc's user lookup reads them: a uid the image's passwd
    does not list runs with gid 0; a name it does not list is an error."""
    if not spec:
        return {"uid": 0, "gid": 0}
    user, _, group = spec.partition(":")
    row = next((c for c in _rows(read("etc/passwd")) if c[2 if user.isdigit() else 0] == user), None)
    if row is None and not user.isdigit():
        raise PyociError(f"image config: User {spec!r}: no user {user!r} in the image's /etc/passwd")
    uid = int(user) if user.isdigit() else int(row[2])
    gid = int(row[3]) if row and row[3].isdigit() else 0
    if group.isdigit():
        gid = int(group)
    elif group:
        grow = next((c for c in _rows(read("etc/group")) if c[0] == group), None)
        if grow is None:
            raise PyociError(f"image config: User {spec!r}: no group {group!r} in the image's /etc/group")
        gid = int(grow[2])
    return {"uid": uid, "gid": gid}


def _cap_names(names: list[str], flag: str) -> list[str]:
    from ..linux.caps import CAPABILITIES

    out = []
    for name in names:
        for one in name.split(","):
            if one.lower() == "all":
                out += list(CAPABILITIES)
                continue
            full = one.upper() if one.upper().startswith("CAP_") else f"CAP_{one.upper()}"
            if full not in CAPABILITIES:
                raise PyociError(f"{flag} {one}: no such capability")
            out.append(full)
    return out


def _held_caps() -> list[str]:
    """The capabilities this process may pass on (its bounding set): what --privileged gives, as podman."""
    from ..linux.caps import CAPABILITIES

    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [name for name, bit in CAPABILITIES.items() if bnd >> bit & 1]


def capabilities(opts: RunOptions, uid: int) -> dict[str, list[str]]:
    """podman's sets: the default capabilities (all held ones with --privileged), plus --cap-add, less
    --cap-drop; a process of another user than root keeps them in its bounding set only."""
    caps = _held_caps() if opts.privileged else list(PODMAN_CAPS)
    caps += [c for c in _cap_names(opts.cap_add, "--cap-add") if c not in caps]
    drop = set(_cap_names(opts.cap_drop, "--cap-drop"))
    caps = [c for c in caps if c not in drop]
    added = [c for c in _cap_names(opts.cap_add, "--cap-add") if c in caps]
    if uid == 0:
        return {k: list(caps) for k in ("bounding", "effective", "permitted")}
    return {"bounding": caps, "effective": added, "permitted": added, "inheritable": added, "ambient": added}


def _privileged(cfg: dict[str, Any]) -> None:
    """What --privileged lifts besides capabilities: masked and read-only paths, the read-only /sys and
    cgroup mounts, the device rules (host devices are not bound in)."""
    linux = cfg["linux"]
    linux["maskedPaths"], linux["readonlyPaths"] = [], []
    linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    for m in cfg["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m.get("options", []) if o != "ro"] + ["rw"]


def parse_volume(spec: str) -> dict[str, Any]:
    """`-v /host:/ctr[:ro,...]` as a bind mount; named volumes are podman's and not pyoci's."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
        raise PyociError(f"--volume {spec!r}: expected /host/path:/container/path[:options] (named volumes are "
                         "not supported)")
    opts = [o for o in (parts[2].split(",") if len(parts) == 3 else []) if o not in ("z", "Z", "")]
    return _bind(parts[0], parts[1], opts)


def _bind(src: str, dst: str, opts: list[str]) -> dict[str, Any]:
    if not os.path.exists(src):
        raise PyociError(f"{src}: no such file or directory to mount")
    flags = ["rbind"] + (["ro"] if "ro" in opts else []) + [o for o in opts if o not in ("ro", "rw", "bind", "rbind")]
    return {"destination": dst, "type": "bind", "source": os.path.abspath(src),
            "options": flags if "rprivate" in flags or "private" in flags else flags + ["rprivate"]}


def parse_mount(spec: str) -> dict[str, Any]:
    """`--mount type=bind,source=/a,destination=/b[,ro]` or `type=tmpfs,destination=/t[,tmpfs-size=64m]`."""
    fields: dict[str, str] = {}
    flags = []
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = {"src": "source", "dst": "destination", "target": "destination", "readonly": "ro"}.get(key, key)
        if eq and key != "ro":
            fields[key] = value
        elif key == "ro" and value in ("", "true", "1"):
            flags.append("ro")
        elif key:
            flags.append(key)
    kind, dst = fields.get("type", "volume"), fields.get("destination", "")
    if not dst.startswith("/"):
        raise PyociError(f"--mount {spec!r}: destination= must be an absolute path")
    if kind == "bind":
        return _bind(fields.get("source", ""), dst, flags)
    if kind == "tmpfs":
        size = [f"size={fields['tmpfs-size']}"] if "tmpfs-size" in fields else []
        mode = [f"mode={fields['tmpfs-mode']}"] if "tmpfs-mode" in fields else []
        return {"destination": dst, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev"] + flags + size + mode}
    raise PyociError(f"--mount {spec!r}: type={kind} is not supported (bind or tmpfs)")


def host_env(items: list[str]) -> list[str]:
    """--env KEY=VALUE, or KEY alone for the caller's value (skipped if unset), as podman reads them."""
    out = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out


def runtime_config(image: dict[str, Any], read: Callable[[str], bytes | None], rootfs: str,
                   args: list[str] | None = None, tty: bool = False, hostname: str = "pyoci",
                   opts: RunOptions | None = None) -> dict[str, Any]:
    conf = image.get("config") or {}
    entry = conf.get("Entrypoint") or []
    cmd = args if args else conf.get("Cmd") or []
    if not entry + cmd:
        raise PyociError("the image names no command (no Entrypoint or Cmd): give one after the image")
    opts = opts or RunOptions()
    cfg = default_config()
    proc = cfg["process"]
    proc["terminal"] = tty
    proc["args"] = list(entry) + list(cmd)
    proc["env"] = merge_env(merge_env(proc["env"] if tty else proc["env"][:1], conf.get("Env") or []),
                            [f"HOSTNAME={hostname}"] + host_env(opts.env))
    proc["cwd"] = opts.workdir or conf.get("WorkingDir") or "/"
    proc["user"] = resolve_user(opts.user or conf.get("User") or "", read)
    proc["capabilities"] = capabilities(opts, proc["user"]["uid"])
    proc["noNewPrivileges"] = False
    cfg["root"] = {"path": rootfs, "readonly": False}
    cfg["hostname"] = hostname
    if opts.privileged:
        _privileged(cfg)
    annotations = dict(conf.get("Labels") or {})
    for key, value in (("os", image.get("os")), ("architecture", image.get("architecture")),
                       ("author", image.get("author")), ("created", image.get("created")),
                       ("stopSignal", conf.get("StopSignal")),
                       ("exposedPorts", ",".join(sorted(conf.get("ExposedPorts") or {})))):
        if value:
            annotations[f"org.opencontainers.image.{key}"] = str(value)
    cfg["annotations"] = annotations
    return cfg


def parse(data: bytes) -> dict[str, Any]:
    try:
        doc = jsonio.loads(data)
    except ValueError as exc:
        raise PyociError(f"image config: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PyociError("image config: not a JSON object")
    return doc
