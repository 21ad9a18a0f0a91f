"""An image's config turned into a runtime config: the image says what to run and as whom; pyoci's defaults
(the same as `pyoci spec`: namespaces, masked paths, three capabilities, no new privileges) say how safely.

The mapping follows the image-spec's conversion rules: Entrypoint + Cmd -> args (arguments given on the
command line replace Cmd), Env over the default PATH, WorkingDir -> cwd, User resolved against the image's own
/etc/passwd and /etc/group, Labels and the listed fields -> annotations.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ..defaults import default_config
from ..errors import PyociError
from ..spec import merge_env


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


def runtime_config(image: dict[str, Any], read: Callable[[str], bytes | None], rootfs: str,
                   args: list[str] | None = None, tty: bool = False, hostname: str = "pyoci") -> dict[str, Any]:
    conf = image.get("config") or {}
    entry = conf.get("Entrypoint") or []
    cmd = args if args else conf.get("Cmd") or []
    if not entry + cmd:
        raise PyociError("the image names no command (no Entrypoint or Cmd): give one after the image")
    cfg = default_config()
    proc = cfg["process"]
    proc["terminal"] = tty
    proc["args"] = list(entry) + list(cmd)
    proc["env"] = merge_env(proc["env"] if tty else proc["env"][:1], conf.get("Env") or [])
    proc["cwd"] = conf.get("WorkingDir") or "/"
    proc["user"] = resolve_user(conf.get("User") or "", read)
    cfg["root"] = {"path": rootfs, "readonly": False}
    cfg["hostname"] = hostname
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
        doc = json.loads(data)
    except ValueError as exc:
        raise PyociError(f"image config: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PyociError("image config: not a JSON object")
    return doc
