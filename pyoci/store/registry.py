"""A client of the OCI distribution API on the standard library's http.client: one keep-alive connection
per thread and host, bearer-token and basic auth from the registry's challenge, redirects to blob storage
(without the registry's credentials), and blob reads that resume with a Range request where the connection
drops (or skip what they had, where the registry ignores ranges).

Why http.client and not urllib3, httpx or requests: a pull is a handful of JSON requests and a few long
streaming reads; http.client streams them at the speed of the socket (bench/store.py shows it against
skopeo), needs nothing installed, and a store command imports it only when it talks to a registry.
"""
from __future__ import annotations

import base64
import http.client
import re
import ssl
import threading
import time
import urllib.parse

from .. import jsonio
from ..errors import PyociError
from .registries import Endpoint, Options, credentials, tls_context

MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))
RETRIES = 4
TIMEOUT = 60
NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}; CAs: /etc/containers/certs.d/HOST/*.crt, " \
               "--cert-dir, or --tls-verify=false)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class HTTPError(PyociError):
    def __init__(self, msg: str, status: int) -> None:
        super().__init__(msg)
        self.status = status


class NetworkError(PyociError):
    """The registry could not be reached, or the connection failed: worth another try."""


class Client:
    """Talks to one endpoint's repository. Thread-safe: each thread has its own connections."""

    def __init__(self, endpoint: Endpoint, opts: Options, actions: str = "pull") -> None:
        self.host, self.repository = endpoint.host, endpoint.repository
        self.insecure = endpoint.insecure or not opts.tls_verify
        self.scheme = "https"
        self.ctx = tls_context(self.host, opts, verify=not self.insecure)
        self.creds = credentials(self.host, self.repository, opts)
        self.scopes = [f"repository:{self.repository}:{actions}"]
        self.auth = ""  # the Authorization header the registry accepted
        self.local = threading.local()
        self.lock = threading.Lock()

    def where(self) -> str:
        return f"{self.host}/{self.repository}"

    # connections

    def _conn(self, scheme: str, host: str) -> http.client.HTTPConnection:
        conns = self.local.__dict__.setdefault("conns", {})
        conn = conns.get((scheme, host))
        if conn is None:
            conn = (http.client.HTTPSConnection(host, timeout=TIMEOUT, context=self.ctx, blocksize=1 << 20)
                    if scheme == "https"
                    else http.client.HTTPConnection(host, timeout=TIMEOUT, blocksize=1 << 20))
            conns[(scheme, host)] = conn
        return conn

    def drop(self, scheme: str, host: str) -> None:
        conn = self.local.__dict__.get("conns", {}).pop((scheme, host), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self.local.__dict__.get("conns", {}).values():
            conn.close()
        self.local.__dict__["conns"] = {}

    def _send(self, method: str, url: str, headers: dict, body=None) -> http.client.HTTPResponse:
        """One request; a kept-alive connection the server closed meanwhile is reopened once."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):
            conn = self._conn(parts.scheme, parts.netloc)
            fresh = conn.sock is None
            try:
                conn.request(method, path, body=body, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.drop(parts.scheme, parts.netloc)
                if fresh or attempt or (body is not None and not isinstance(body, bytes)):
                    raise
            except BaseException:
                self.drop(parts.scheme, parts.netloc)
                raise
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """Finds how the registry answers (https, or http where it is insecure) and its auth challenge."""
        try:
            try:
                resp = self._send("GET", f"{self.scheme}://{self.host}/v2/", {})
            except (ssl.SSLError, ConnectionResetError, http.client.BadStatusLine):
                if not self.insecure:
                    raise
                self.scheme = "http"  # podman's insecure registries: plain HTTP when TLS fails
                resp = self._send("GET", f"{self.scheme}://{self.host}/v2/", {})
        except NETWORK_ERRORS as exc:
            raise NetworkError(f"{self.host}: {_why(exc)}") from None
        resp.read()
        if resp.status == 401:
            self._authenticate(resp.getheader("WWW-Authenticate", ""))

    # auth

    def _authenticate(self, header: str) -> None:
        scheme, params = _challenge(header)
        basic = "Basic " + base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode() \
            if self.creds else ""
        if scheme == "basic":
            if not basic:
                raise PyociError(f"{self.host}: authentication required and no credentials for it (podman login, "
                                 "--creds USER:PASSWORD or --authfile)")
            self.auth = basic
            return
        if scheme != "bearer" or "realm" not in params:
            raise PyociError(f"{self.host}: unsupported authentication challenge {header!r}")
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", s) for s in self.scopes]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        resp = self._send("GET", url, {"Authorization": basic} if basic else {})
        data = resp.read()
        if resp.status != 200:
            raise PyociError(f"{self.host}: the token service refused ({resp.status} {resp.reason}"
                             f"{': bad credentials' if resp.status == 401 and basic else ''})")
        try:
            doc = jsonio.loads(data)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise PyociError(f"{self.host}: the token service gave no token")
        self.auth = f"Bearer {token}"

    def add_scope(self, scope: str) -> None:
        """Another repository's pull scope (a cross-repository mount reads from it); a new token is asked for."""
        if scope not in self.scopes:
            self.scopes.append(scope)
            self.auth = ""

    # requests

    def request(self, method: str, path: str, headers: dict | None = None, body=None,
                ok: tuple[int, ...] = (200,), what: str = "") -> http.client.HTTPResponse:
        """path (under /v2/<repository>/, or an absolute URL the registry gave) with auth, following redirects;
        an answer not in ok is an error naming what was asked for."""
        url = path if "://" in path else f"{self.scheme}://{self.host}/v2/{self.repository}/{path}"
        authenticated = False
        for _ in range(6):
            hdrs = dict(headers or {})
            same_host = urllib.parse.urlsplit(url).netloc == self.host
            if self.auth and same_host:
                hdrs["Authorization"] = self.auth
            try:
                resp = self._send(method, url, hdrs, body)
            except NETWORK_ERRORS as exc:
                raise NetworkError(f"{what or path}: {self.host}: {_why(exc)}") from None
            if resp.status == 401 and same_host:
                resp.read()
                if authenticated:
                    raise HTTPError(f"{what or path}: {self.where()}: access denied (401"
                                    f"{', bad credentials' if self.creds else ', no credentials'})", 401)
                with self.lock:
                    if self.auth == hdrs.get("Authorization", ""):  # no other thread renewed it meanwhile
                        self._authenticate(resp.getheader("WWW-Authenticate", ""))
                authenticated = True
                continue
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                resp.read()
                url = urllib.parse.urljoin(url, resp.getheader("Location"))
                if resp.status == 303:
                    method, body = "GET", None
                continue
            if resp.status not in ok:
                detail = resp.read(4096).decode(errors="replace")
                raise HTTPError(f"{what or path}: {self.where()}: {resp.status} {resp.reason}{_api_error(detail)}",
                                resp.status)
            return resp
        raise PyociError(f"{what or path}: {self.where()}: too many redirects or authentication rounds")

    def manifest(self, reference: str) -> tuple[bytes, str]:
        """(bytes, media type) of the manifest or index that reference (tag or digest) names."""
        what = f"manifest {reference}"
        resp = self.request("GET", f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}, what=what)
        data = _read_all(resp, what, 4 << 20)
        return data, (resp.getheader("Content-Type") or "").split(";")[0].strip()

    def blob_bytes(self, d: str, limit: int = 16 << 20) -> bytes:
        what = f"blob {d}"
        return _read_all(self.request("GET", f"blobs/{d}", what=what), what, limit)

    def blob(self, d: str, size: int | None) -> "BlobReader":
        return BlobReader(self, d, size)


def _api_error(body: str) -> str:
    """The first message of the registry's JSON error body, if it has one."""
    try:
        errors = jsonio.loads(body).get("errors") or []
        return f": {errors[0].get('message') or errors[0].get('code')}" if errors else ""
    except (ValueError, AttributeError, IndexError):
        return ""


def _read_all(resp: http.client.HTTPResponse, what: str, limit: int) -> bytes:
    try:
        data = resp.read(limit + 1)
    except NETWORK_ERRORS as exc:
        raise PyociError(f"{what}: {_why(exc)}") from None
    if len(data) > limit:
        resp.close()
        raise PyociError(f"{what}: larger than {limit >> 20} MiB")
    return data


class BlobReader:
    """A blob's bytes as a file to read once. A connection that drops or stalls is reopened with
    `Range: bytes=<read so far>-`; a registry that answers 200 instead of 206 is read past what was had."""

    def __init__(self, client: Client, d: str, size: int | None) -> None:
        self.client, self.digest, self.size = client, d, size
        self.pos, self.failures, self.resp = 0, 0, None

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        resp = self.client.request("GET", f"blobs/{self.digest}", headers, ok=(200, 206),
                                   what=f"layer blob {self.digest}")
        if self.pos and resp.status == 200:
            skip = self.pos
            while skip:
                got = resp.read(min(skip, 1 << 20))
                if not got:
                    raise http.client.IncompleteRead(b"")
                skip -= len(got)
        self.resp = resp

    def read(self, n: int = -1) -> bytes:
        while True:
            try:
                if self.resp is None:
                    self._open()
                data = self.resp.read(n if n > 0 else 1 << 20)
                if not data and self.size is not None and self.pos < self.size:
                    raise http.client.IncompleteRead(b"", self.size - self.pos)
                self.pos += len(data)
                return data
            except (NETWORK_ERRORS + (NetworkError, HTTPError)) as exc:
                self._reset()
                self.failures += 1
                if self.failures > RETRIES or (isinstance(exc, HTTPError) and exc.status < 500):
                    why = exc.msg if isinstance(exc, PyociError) else f"layer blob {self.digest}: {_why(exc)}"
                    size = self.size if self.size is not None else "?"
                    raise PyociError(f"{why} (at {self.pos} of {size} bytes, {self.failures} tries)") from None
                time.sleep(0.2 * 2 ** self.failures)  # a registry restarting, a flaky link: not at once again

    def _reset(self) -> None:
        if self.resp is not None:
            self.resp.close()
            self.resp = None
        parts = (self.client.scheme, self.client.host)
        self.client.drop(*parts)

    def close(self) -> None:
        if self.resp is not None:
            if self.size is not None and self.pos < self.size:
                self._reset()  # unread data on a keep-alive connection: the connection cannot serve again
            else:
                self.resp.read()
            self.resp = None

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

