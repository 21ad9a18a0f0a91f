"""Image references as podman and docker read them: `[registry[:port]/]repository[:tag][@sha256:...]`.

The first component names a registry when it has a `.` or a `:` or is `localhost`; otherwise the name is
short and the registry is the first of registries.conf's unqualified-search-registries (docker.io when none
is set), where a one-component name lives under `library/`.
"""
from __future__ import annotations

import re

from ..errors import PyociError
from ..record import Record
from . import digest

DOCKER_HUB = "docker.io"
REPOSITORY = re.compile(r"^[a-z0-9]+([._-]|__|[-]*[a-z0-9]+)*(/[a-z0-9]+([._-]|__|[-]*[a-z0-9]+)*)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class Reference(Record):
    registry: str  # as named: docker.io, localhost:5000
    repository: str  # library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What /v2/<name>/manifests/<reference> takes: the digest if given, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def stored_tag(self) -> str | None:
        """The name[:tag] the store records the image under (none for a pull by digest alone)."""
        return f"{self.name}:{self.tag}" if self.tag else None


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse(ref: str, search: list[str] | None = None) -> Reference:
    """ref as a full Reference; a short name goes to the first search registry (docker.io by default)."""
    rest, _, dig = ref.partition("@")
    if dig:
        digest.check(dig, f"image reference {ref!r}")
    first, slash, after = rest.partition("/")
    if slash and _is_registry(first):
        registry, path = first, after
    else:
        registry, path = (search or [DOCKER_HUB])[0], rest
    path, colon, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not REPOSITORY.match(path) or (colon and not TAG.match(tag)):
        raise PyociError(f"invalid image reference {ref!r} (registry/repository[:tag][@sha256:...], lowercase)")
    return Reference(registry, path, tag or ("" if dig else "latest"), dig)


def looks_like_reference(ref: str) -> bool:
    """Whether ref could be pulled: an image id prefix or a path is not."""
    return not ref.startswith(("/", ".", "sha256:")) and not re.fullmatch(r"[0-9a-f]{12,64}", ref)
