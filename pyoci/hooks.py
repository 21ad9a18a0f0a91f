"""Hooks: the runtime runs prestart, createRuntime, poststart and poststop itself; the executor runs
createContainer and startContainer inside the container. Both run them with one runner (csrc/hookrun.c),
reading the container's state from a sealed memfd on their stdin, so a failing hook reads the same
wherever it ran, and a state of any size (a megabyte of annotations) reaches every hook whole.
"""
from __future__ import annotations

import posix

from . import OCI_VERSION, jsonio
from . import steps as st

TYPE_CHECKING = False  # typing itself costs the short commands a few ms
if TYPE_CHECKING:
    from .spec import Hook
    from .state import State


def as_steps(kind: str, hooks: list[Hook], state: int = st.CREATED_STATE) -> list[st.Hook]:
    return [st.Hook(f"hooks.{kind}[{i}] ({h.path})", path=h.path, argv=h.args or [h.path], envp=h.env,
                    timeout=h.timeout or 0, state=state) for i, h in enumerate(hooks)]


def hook_state(st: State, status: str) -> dict[str, object]:
    """The runtime-spec state a hook reads (status as of the hook's point in the lifecycle)."""
    return {"ociVersion": OCI_VERSION, "id": st.id, "status": status, "pid": st.pid, "bundle": st.bundle,
            "annotations": st.annotations}


def state_fd(state: dict[str, object]) -> int:
    """The state as a hook reads it: a sealed memfd, which no hook can change for the next one."""
    import fcntl

    fd = posix.memfd_create("pyoci-state", posix.MFD_CLOEXEC | posix.MFD_ALLOW_SEALING)
    try:
        data = memoryview(jsonio.dumps(state).encode())
        while data:
            data = data[posix.write(fd, data):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        posix.close(fd)
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
        posix.close(fd)


def to_json(hooks: list[Hook]) -> list[dict[str, object]]:
    return [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout} for h in hooks]


def from_json(raw: list[dict[str, object]]) -> list[Hook]:
    from .spec import Hook

    return [Hook(h["path"], h["args"], h["env"], h["timeout"]) for h in raw]
