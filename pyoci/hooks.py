"""Hooks: the runtime runs prestart, createRuntime, poststart and poststop itself; the executor runs
createContainer and startContainer inside the container. Both run them with one runner (csrc/hookrun.c),
reading the container's state from a sealed memfd on their stdin, so a failing hook reads the same
wherever it ran, and a state of any size (a megabyte of annotations) reaches every hook whole.
"""
from __future__ import annotations

import os

from . import jsonio
from . import steps as st

TYPE_CHECKING = False  # typing itself costs the short commands a few ms
if TYPE_CHECKING:
    from .spec import Hook


def as_steps(kind: str, hooks: list[Hook], state: int = st.CREATED_STATE) -> list[st.Hook]:
    return [st.Hook(f"hooks.{kind}[{i}] ({h.path})", path=h.path, argv=h.args or [h.path], envp=h.env,
                    timeout=h.timeout or 0, state=state) for i, h in enumerate(hooks)]


def state_fd(state: dict[str, object]) -> int:
    """The state as a hook reads it: a sealed memfd, which no hook can change for the next one."""
    import fcntl

    fd = os.memfd_create("pyoci-state", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = memoryview(jsonio.dumps(state).encode())
        while data:
            data = data[os.write(fd, data):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def run(kind: str, hooks: list[Hook], state: dict[str, object]) -> None:
    """Runs the hooks in order, in the bundle directory (runc's: a hook may name files of the bundle by
    relative paths); the first failure is an error naming the hook."""
    if not hooks:
        return
    from .linux.shim import run_hook

    fd = state_fd(state)
    try:
        for step in as_steps(kind, hooks):
            run_hook(step, fd, str(state["bundle"]))
    finally:
        os.close(fd)


def to_json(hooks: list[Hook]) -> list[dict[str, object]]:
    return [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout} for h in hooks]


def from_json(raw: list[dict[str, object]]) -> list[Hook]:
    if not raw:
        return []  # the common case stays clear of spec's imports
    from .spec import Hook

    return [Hook(h["path"], h["args"], h["env"], h["timeout"]) for h in raw]
