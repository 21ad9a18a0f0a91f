"""What the `pyoci` command runs before pyoci.main when csrc/launcher.c starts CPython in its core phase: the
few things of the main phase that the lifecycle commands use, and the main phase itself on the first need.

In the core phase built-in and frozen modules import; the main phase's work (the path-based importers,
`encodings`, the standard streams, sys.argv, builtins.open) is not done, and it is ~5 M of the ~18 M
instructions a short call took. `state`, `start`, `kill`, `delete`, `create`, `run` and `exec` use three
things of it, given here: sys.argv, writing to stdout and stderr, and loading extension modules (_json,
_cffi_backend, pyoci._shim) from where the path finder would find them; they read and write files through
posix (pyoci.linux.files). Anything else (an import of a module on disk that is not an extension module, any
other use of a standard stream) completes the initialisation first and goes on as in a fully initialised
interpreter. `open` works too: it loads _io on its first call, and in text mode its codec lookup imports the
frozen `encodings`.
"""
import _imp
import builtins
import posix
import sys

import _frozen_importlib
from _pyoci_launcher import argv, extension_dirs, finish

from .linux.fs import exists

_complete = False


def complete() -> None:
    """The main phase, now: the path finder, `encodings`, the real standard streams."""
    global _complete
    if not _complete:
        _complete = True
        finish()


def _open(*args: object, **kwargs: object) -> object:
    """builtins.open, which loads _io on its first call: the lifecycle commands read and write through
    posix (pyoci.linux.files) and never load it (~0.4 M instructions)."""
    import _io

    builtins.open = _io.open
    return _io.open(*args, **kwargs)


class _Output:
    """sys.stdout or sys.stderr until the main phase: each write whole and at once, in UTF-8 with UTF-8
    mode's error handlers (surrogateescape on stdout, backslashreplace on stderr), then the real stream,
    which the main phase makes."""

    def __init__(self, name: str, fd: int, errors: str) -> None:
        self.name, self.fd, self.errors = name, fd, errors

    def write(self, text: str) -> int:
        if _complete:
            return getattr(sys, self.name).write(text)
        data = memoryview(text.encode("utf-8", self.errors))
        while data:
            data = data[posix.write(self.fd, data):]
        return len(text)

    def flush(self) -> None:
        if _complete:
            getattr(sys, self.name).flush()

    def __getattr__(self, attr: str) -> object:
        complete()
        return getattr(getattr(sys, self.name), attr)


class _Input:
    """sys.stdin until the main phase: any use of it makes the real one."""

    def __getattr__(self, attr: str) -> object:
        complete()
        return getattr(sys.stdin, attr)


class ExtensionFinder:
    """The last finder on sys.meta_path: an extension module from where the path finder would look (the
    interpreter's lib-dynload and site-packages, or the package's __path__); for any other module,
    the main phase, and then the path finder it installs after this one looks."""

    @classmethod
    def find_spec(cls, name: str, path: list[str] | None = None, target: object = None) -> object:
        if _complete:
            return None
        leaf = name.rpartition(".")[2]
        for directory in extension_dirs if path is None else path:
            for suffix in _imp.extension_suffixes():
                if exists(origin := f"{directory}/{leaf}{suffix}"):
                    return _frozen_importlib.ModuleSpec(name, cls, origin=origin)
        complete()
        return None

    @staticmethod
    def create_module(spec: object) -> object:
        return _imp.create_dynamic(spec)

    @staticmethod
    def exec_module(module: object) -> None:
        module.__file__ = module.__spec__.origin  # type: ignore[attr-defined]
        _imp.exec_dynamic(module)


def _open_fd(fd: int) -> bool:
    """Whether fd is open: where it is not, CPython's main phase makes the stream None, and so does this."""
    try:
        posix.fstat(fd)
    except OSError:
        return False
    return True


sys.argv = argv
sys.stdout = _Output("stdout", 1, "surrogateescape") if _open_fd(1) else None
sys.stderr = _Output("stderr", 2, "backslashreplace") if _open_fd(2) else None
sys.stdin = _Input() if _open_fd(0) else None
sys.meta_path.append(ExtensionFinder)
builtins.open = _open
