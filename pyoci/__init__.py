"""pyoci: an OCI runtime-spec container runtime with runc's command line, and its Python API.

    import pyoci
    c = pyoci.Runtime(root="/run/pyoci").create("c1", "/path/to/bundle")
    c.start(); c.wait(); c.delete()

The API's names load on first use, so `import pyoci` costs the command line nothing."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"

_API = {"Runtime": "container", "Container": "container", "CreateOptions": "create", "ExecOptions": "execute",
        "ExecProcess": "execute", "PyociError": "errors", "ConfigError": "errors", "NotFoundError": "errors",
        "WrongStateError": "errors", "KernelError": "errors"}
__all__ = sorted(_API)


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'pyoci' has no attribute {name!r}")
    return getattr(__import__(f"pyoci.{_API[name]}", fromlist=[name]), name)
