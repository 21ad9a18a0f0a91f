"""A real registry for the store's tests: Debian's docker-registry (distribution 2.8) on a free loopback port,
plain HTTP or TLS (a CA and a certificate made here with the openssl command) with htpasswd auth, or with
bearer tokens from a token service of the test's own (JWTs signed by the openssl command, as Docker Hub's
auth service hands out); and a TCP proxy in front of it that logs requests and can cut or stall a response
mid-body (a network that drops)."""
from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

USER, PASSWORD = "pyoci", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls(dest: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it; returns the directory holding
    ca.crt (what --cert-dir and certs.d take) beside server.crt and server.key."""
    dest.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=dest, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pyoci test CA")
    ssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (dest / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    certs = dest / "certs"
    certs.mkdir()
    shutil.copy(dest / "ca.crt", certs / "ca.crt")
    return certs


class Registry:
    """docker-registry serving from tmp; tls adds a certificate and htpasswd auth. stop() ends it."""

    def __init__(self, tmp: Path, tls: bool = False, tokens: "TokenService | None" = None) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.tokens = tokens
        self.certs = make_tls(tmp / "tls") if tls else None
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.start()

    def _config(self) -> Path:
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true", "storage:",
                 "  filesystem:", f"    rootdirectory: {self.tmp / 'data'}", "  delete:", "    enabled: true",
                 "http:", f"  addr: 127.0.0.1:{self.port}", "  secret: pyoci-test"]
        if self.tls:
            htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True,
                                      text=True).stdout
            (self.tmp / "htpasswd").write_text(htpasswd)
            lines += ["  tls:", f"    certificate: {self.tmp / 'tls' / 'server.crt'}",
                      f"    key: {self.tmp / 'tls' / 'server.key'}",
                      "auth:", "  htpasswd:", "    realm: pyoci-test", f"    path: {self.tmp / 'htpasswd'}"]
        elif self.tokens:
            lines += ["auth:", "  token:", f"    realm: {self.tokens.realm}", f"    service: {TokenService.SERVICE}",
                      f"    issuer: {TokenService.ISSUER}", f"    rootcertbundle: {self.tokens.cert}"]
        path = self.tmp / "config.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Starts it on a free port (the same one again after a stop), waiting until it answers."""
        self.port = self.port or free_port()
        config = self._config()
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.tmp / "registry.log", "ab"), start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.tmp / 'registry.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("docker-registry did not listen within 30 s")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def skopeo_args(self, dest: bool = True) -> list[str]:
        """skopeo's flags to reach this registry as source or destination."""
        side = "dest" if dest else "src"
        if not self.tls:
            return [f"--{side}-tls-verify=false"] + ([f"--{side}-creds={USER}:{PASSWORD}"] if self.tokens else [])
        return [f"--{side}-cert-dir={self.certs}", f"--{side}-creds={USER}:{PASSWORD}"]

    def push(self, source: str, ref: str, *extra: str) -> None:
        """skopeo copy of source (oci:DIR:REF, ...) to this registry as ref (repository:tag)."""
        subprocess.run(["skopeo", "copy", "--quiet", *extra, *self.skopeo_args(), source,
                        f"docker://{self.host}/{ref}"], check=True, capture_output=True, timeout=120)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """A bearer-token service as distribution's `auth: token` expects one: GET realm?service=&scope= with
    basic credentials gives a JWT (RS256, its certificate in x5c) granting the scopes asked for; without
    them, a token granting nothing. requests keeps each request's scopes and whether it had credentials."""
    SERVICE, ISSUER = "pyoci-test-registry", "pyoci-test-token-issuer"

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = tmp / "token.key", tmp / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=pyoci test token issuer"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[list[str], bool]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                given = self.headers.get("Authorization", "")
                authed = given == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if given and not authed:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                service.requests.append((scopes, authed))
                body = json.dumps({"token": service.token(scopes if authed else []), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":") if scope.count(":") == 2 else ("", "", "")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": USER, "aud": self.SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signing}.{_b64url(signature)}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """Forwards 127.0.0.1:port to a registry, keeping every request's head. A response of a connection that
    has passed `cut_after` bytes is cut (connection closed) once, or with `stall` held until release()."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        self.cut_after = 0
        self.stall = False
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()  # the registry is gone: as a dead server, refuse
                continue
            with self.lock:
                self.socks += [client, upstream]
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if data[:4] in (b"GET ", b"HEAD", b"POST", b"PUT ", b"PATC", b"DELE"):
                    with self.lock:
                        self.requests.append(data.split(b"\r\n\r\n", 1)[0].decode(errors="replace"))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(dst)

    def _down(self, src: socket.socket, dst: socket.socket) -> None:
        passed = 0
        try:
            while data := src.recv(65536):
                passed += len(data)
                if self.cut_after and passed > self.cut_after:
                    if self.stall:
                        self.stalled.set()
                        self.released.wait(60)
                    else:
                        self.cut_after = 0  # once
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(dst)
            _shut(src)

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.closed = True
        self.released.set()
        self.listener.close()
        with self.lock:
            for s in self.socks:
                _shut(s)
                s.close()


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def env_without_auth(tmp: Path) -> dict[str, str]:
    """The caller's environment with no auth file or registries.conf of the host's to find."""
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    empty = tmp / "registries.conf"
    empty.write_text("")
    return {**env, "HOME": str(tmp), "XDG_RUNTIME_DIR": str(tmp), "CONTAINERS_REGISTRIES_CONF": str(empty)}
