"""Where and how to reach a registry, read from the files podman and docker keep, so that a host set up for
them needs nothing more for pyoci:

- registries.conf (`$CONTAINERS_REGISTRIES_CONF`, else /etc/containers/registries.conf and registries.conf.d/):
  unqualified-search-registries, and `[[registry]]` prefix/location/insecure/blocked with its mirrors; the
  v1 form's `[registries.insecure]` and `[registries.block]` lists too.
- credentials: `--authfile`, `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json` (root:
  /run/containers/0/auth.json), ~/.config/containers/auth.json, ~/.docker/config.json; an entry for
  `host/repo` wins over one for `host`. Credential helpers are not run.
- TLS: the system's CAs, plus `*.crt` (CAs) and `*.cert`/`*.key` (client certificate) of
  /etc/containers/certs.d/HOST[:PORT]/ (or --cert-dir), /etc/docker/certs.d/HOST[:PORT]/.
"""
from __future__ import annotations

import base64
import glob
import os

from .. import jsonio
from ..errors import PyociError
from ..record import Record, field
from .reference import DOCKER_HUB, Reference

CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


class Endpoint(Record):
    """One place to ask for a repository: host (what the API is reached at) and the repository there."""
    host: str
    repository: str
    insecure: bool = False  # TLS unverified, and plain HTTP if TLS fails (podman's insecure)


class Options(Record):
    """The pull/push flags podman has: --tls-verify, --cert-dir, --authfile, --creds."""
    tls_verify: bool = True
    cert_dir: str = ""
    authfile: str = ""
    creds: str = ""  # user[:password]
    conf: dict = field(default_factory=dict)


def _toml(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PyociError(f"{path}: {exc}") from None


def load_conf() -> dict:
    """registries.conf and its drop-ins merged: search registries and the [[registry]] tables, later first."""
    main = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    paths = [main] if main else ["/etc/containers/registries.conf",
                                 *sorted(glob.glob("/etc/containers/registries.conf.d/*.conf"))]
    conf: dict = {"unqualified-search-registries": [], "registry": []}
    for path in paths:
        doc = _toml(path)
        if "unqualified-search-registries" in doc:
            conf["unqualified-search-registries"] = list(doc["unqualified-search-registries"])
        conf["registry"] = list(doc.get("registry", [])) + conf["registry"]
        v1 = doc.get("registries", {})
        for host in v1.get("insecure", {}).get("registries", []):
            conf["registry"].append({"prefix": host, "location": host, "insecure": True})
        for host in v1.get("block", {}).get("registries", []):
            conf["registry"].append({"prefix": host, "location": host, "blocked": True})
    return conf


def api_host(registry: str) -> str:
    return "registry-1.docker.io" if registry == DOCKER_HUB else registry


def _matches(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip("/") + "/") or \
        (prefix.startswith("*.") and name.split("/", 1)[0].endswith(prefix[1:]))


def endpoints(ref: Reference, conf: dict, for_push: bool = False) -> list[Endpoint]:
    """Where to ask for ref, in order: the mirrors of its registries.conf entry (pulls only), then its
    location. The entry is the one with the longest prefix of ref's name."""
    name = ref.name
    entries = [e for e in conf.get("registry", []) if _matches(e.get("prefix") or e.get("location", ""), name)]
    entry = max(entries, key=lambda e: len(e.get("prefix") or e.get("location", "")), default=None)
    if entry is None:
        return [Endpoint(api_host(ref.registry), ref.repository)]
    if entry.get("blocked"):
        raise PyociError(f"{name}: registries.conf blocks this registry")
    prefix = entry.get("prefix") or entry.get("location", "")

    def moved(location: str, insecure: bool) -> Endpoint:
        if prefix.startswith("*."):
            rewritten = name
        else:
            rewritten = (location.rstrip("/") + name[len(prefix.rstrip("/")):]) if location else name
        host, _, repo = rewritten.partition("/")
        return Endpoint(api_host(host), repo, insecure)

    out = [] if for_push else [moved(m.get("location", ""), bool(m.get("insecure")))
                               for m in entry.get("mirror", []) if not (entry.get("mirror-by-digest-only")
                                                                        and not ref.digest)]
    return out + [moved(entry.get("location", ""), bool(entry.get("insecure")))]


def search_registries(conf: dict) -> list[str]:
    return conf.get("unqualified-search-registries") or [DOCKER_HUB]


def _auth_files(opts: Options) -> list[str]:
    if opts.authfile:
        return [opts.authfile]
    home = os.path.expanduser("~")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or (f"/run/containers/{os.geteuid()}" if os.geteuid() == 0 else "")
    files = [os.environ.get("REGISTRY_AUTH_FILE", ""),
             os.path.join(runtime, "containers", "auth.json") if runtime else "",
             os.path.join(home, ".config", "containers", "auth.json"),
             os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.join(home, ".docker"), "config.json")]
    return [f for f in files if f]


def credentials(host: str, repository: str, opts: Options) -> tuple[str, str] | None:
    """(user, password) for host/repository: --creds, else the first auth file with an entry for it."""
    if opts.creds:
        user, _, password = opts.creds.partition(":")
        return user, password
    keys = [f"{host}/{repository}"]
    parts = repository.split("/")
    keys += [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts) - 1, 0, -1)]
    keys += [host, f"https://{host}", f"http://{host}"]
    if host in ("registry-1.docker.io", DOCKER_HUB):
        keys += ["docker.io", "https://index.docker.io/v1/", "index.docker.io"]
    for path in _auth_files(opts):
        try:
            with open(path) as f:
                auths = jsonio.load(f).get("auths") or {}
        except (OSError, ValueError, AttributeError):
            continue
        for key in keys:
            entry = auths.get(key) or auths.get(key.rstrip("/"))
            if entry and entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except ValueError:
                    raise PyociError(f"{path}: the entry for {key} is not base64 of user:password") from None
                return user, password
    return None


def tls_context(host: str, opts: Options, verify: bool):
    """An SSL context with the system's CAs and the host's certs.d files; unverified when verify is False."""
    import ssl

    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    dirs = [opts.cert_dir] if opts.cert_dir else [os.path.join(d, host) for d in CERTS_DIRS]
    for d in dirs:
        for ca in sorted(glob.glob(os.path.join(d, "*.crt"))):
            ctx.load_verify_locations(ca)
        for cert in sorted(glob.glob(os.path.join(d, "*.cert"))):
            key = cert[:-len(".cert")] + ".key"
            if not os.path.exists(key):
                raise PyociError(f"{cert}: client certificate without its key ({key})")
            ctx.load_cert_chain(cert, key)
    return ctx
