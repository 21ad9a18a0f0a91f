"""Hooks that run in the runtime's namespaces: prestart, createRuntime, poststart, poststop.

(createContainer and startContainer run inside the container; the executor runs those.)
"""
from __future__ import annotations

from . import jsonio
from .errors import PyociError

TYPE_CHECKING = False  # typing itself costs the short commands a few ms
if TYPE_CHECKING:
    from .spec import Hook


def run(kind: str, hooks: list[Hook], state: dict[str, object]) -> None:
    """Runs the hooks in order; the first failure is an error naming the hook."""
    if not hooks:
        return
    import subprocess

    data = jsonio.dumps(state).encode()
    for i, h in enumerate(hooks):
        what = f"hooks.{kind}[{i}] ({h.path})"
        env = dict(e.split("=", 1) for e in h.env if "=" in e)
        try:
            proc = subprocess.run(h.args or [h.path], executable=h.path, input=data, env=env, timeout=h.timeout)
        except subprocess.TimeoutExpired:
            raise PyociError(f"{what}: timed out after {h.timeout}s") from None
        except OSError as exc:
            raise PyociError(what, exc.errno) from None
        if proc.returncode != 0:
            raise PyociError(f"{what}: exit status {proc.returncode}")


def to_json(hooks: list[Hook]) -> list[dict[str, object]]:
    return [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout} for h in hooks]


def from_json(raw: list[dict[str, object]]) -> list[Hook]:
    if not raw:
        return []  # the common case stays clear of spec's imports
    from .spec import Hook

    return [Hook(h["path"], h["args"], h["env"], h["timeout"]) for h in raw]
