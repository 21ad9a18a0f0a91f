"""image pull and image push against a real registry (Debian's docker-registry, started here on a free
loopback port: plain HTTP, or TLS with a CA made here and htpasswd auth). skopeo pushes the fixtures in;
pyoci pulls and runs them; pyoci pushes, skopeo pulls back and the digests match."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYOCI, need_root
from imagebuilder import dir_layer, entry, image_config, sha, tar_layer, write_oci
from registry import PASSWORD, USER, Proxy, Registry, TokenService, env_without_auth
from test_store import StoreCli, _mounted_under, _store_is_empty


def _need_tools() -> None:
    need_root()
    for tool in ("docker-registry", "skopeo", "openssl", "htpasswd"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (install.sh installs it)")


@pytest.fixture
def cli(tmp_path) -> StoreCli:
    """pyoci with its own store, root, HOME and registries.conf (no host auth file or mirror leaks in)."""
    _need_tools()
    c = StoreCli(tmp_path)
    c.env = env_without_auth(tmp_path)
    yield c
    c.cleanup()
    assert not _mounted_under(tmp_path), "a container layer stayed mounted"


@pytest.fixture
def plain(tmp_path):
    _need_tools()
    reg = Registry(tmp_path / "plain")
    yield reg
    reg.stop()


@pytest.fixture
def secure(tmp_path):
    _need_tools()
    reg = Registry(tmp_path / "secure", tls=True)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def base(rootfs) -> bytes:
    return dir_layer(rootfs)


def _layout(tmp_path: Path, base: bytes, name: str, *files: tuple[str, bytes], how: str = "gzip") -> Path:
    layers = [base] + [tar_layer([entry(path, data=data)]) for path, data in files]
    return write_oci(tmp_path / name, layers, image_config(layers), ref="latest", how=how)


def _push(reg: Registry, layout: Path, ref: str, *extra: str, src_ref: str = "latest") -> None:
    reg.push(f"oci:{layout}:{src_ref}", ref, *extra)


def _digest_via_skopeo(reg: Registry, ref: str, tmp_path: Path) -> str:
    """skopeo copies ref back to a dir: (which keeps the manifest as the registry serves it, where oci: would
    convert a Docker one); the digest of that manifest."""
    import hashlib

    out = tmp_path / f"back-{os.urandom(3).hex()}"
    subprocess.run(["skopeo", "copy", "--quiet", *reg.skopeo_args(dest=False), f"docker://{reg.host}/{ref}",
                    f"dir:{out}"], check=True, capture_output=True, timeout=120)
    return "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()


def test_pull_run_commit_push_and_skopeo_agrees(cli, plain, base, tmp_path):
    _push(plain, _layout(tmp_path, base, 'oci', ('hello', b'oci manifest\n')), "test/oci:1")
    _push(plain, _layout(tmp_path, base, 'v2s2', ('hello', b'docker manifest\n')), "test/v2s2:1", "--format", "v2s2")
    image = cli("image", "pull", "--tls-verify=false", f"{plain.host}/test/oci:1").stdout.strip()
    assert image.startswith("sha256:")
    assert cli.run(f"{plain.host}/test/oci:1", "cat /hello") == "oci manifest\n"
    # image run of a reference the store lacks pulls it first (a Docker schema 2 manifest here)
    r = cli("image", "run", "--rm", "--tls-verify=false", f"{plain.host}/test/v2s2:1", "cat", "/hello")
    assert r.stdout == "docker manifest\n"
    stored = json.loads(cli("image", "inspect", f"{plain.host}/test/v2s2:1").stdout)
    assert _digest_via_skopeo(plain, "test/v2s2:1", tmp_path) == stored["manifest"]
    assert stored["layers"][1]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    # a committed image goes back, and skopeo reads the same manifest digest
    bundle = cli.bundle(f"{plain.host}/test/oci:1", "sh", "-c", "echo changed > /hello")
    cli("run", "-b", str(bundle), cli.new_id())
    cli("bundle", "commit", "--tag", "local/committed", str(bundle))
    pushed = cli("image", "push", "--tls-verify=false", "local/committed", f"{plain.host}/test/committed:v1")
    digest = json.loads(cli("image", "inspect", "local/committed").stdout)["manifest"]
    assert pushed.stdout.strip() == digest
    assert _digest_via_skopeo(plain, "test/committed:v1", tmp_path) == digest


def test_tls_and_basic_auth(cli, secure, base, tmp_path):
    _push(secure, _layout(tmp_path, base, 'img', ('hello', b'secure\n')), "test/secure:1")
    ref = f"{secure.host}/test/secure:1"
    untrusted = cli("image", "pull", ref, check=False)
    assert untrusted.returncode == 1 and len(untrusted.stderr.splitlines()) == 1
    assert "TLS certificate not trusted" in untrusted.stderr
    anonymous = cli("image", "pull", "--cert-dir", str(secure.certs), ref, check=False)
    assert anonymous.returncode == 1 and "authentication required and no credentials" in anonymous.stderr
    wrong = cli("image", "pull", "--cert-dir", str(secure.certs), "--creds", f"{USER}:nope", ref, check=False)
    assert wrong.returncode == 1 and "access denied (401, bad credentials)" in wrong.stderr
    # credentials as podman login keeps them: ${XDG_RUNTIME_DIR}/containers/auth.json
    auth = Path(cli.env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    auth.parent.mkdir(parents=True, exist_ok=True)
    auth.write_text(json.dumps({"auths": {secure.host: {"auth": base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}}}))
    cli("image", "pull", "--cert-dir", str(secure.certs), ref)
    assert cli.run(ref, "cat /hello") == "secure\n"
    cli("image", "push", "--cert-dir", str(secure.certs), ref, f"{secure.host}/other/copy:2")
    digest = json.loads(cli("image", "inspect", ref).stdout)["manifest"]
    assert _digest_via_skopeo(secure, "other/copy:2", tmp_path) == digest
    # and --tls-verify=false skips the CA check, as podman's
    auth.unlink()
    again = tmp_path / "again"
    cli("--store", str(again), "image", "pull", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", ref)


def test_bearer_tokens(cli, base, tmp_path):
    """A registry that sends clients to a token service, as Docker Hub does: pull and push with the scopes
    each needs, credentials from ~/.docker/config.json; none gives an anonymous token that is not enough."""
    tokens = TokenService(tmp_path / "tokens")
    reg = Registry(tmp_path / "bearer", tokens=tokens)
    try:
        _push(reg, _layout(tmp_path, base, "img", ("hello", b"bearer\n")), "test/tok:1")
        ref = f"{reg.host}/test/tok:1"
        anonymous = cli("image", "pull", "--tls-verify=false", ref, check=False)
        assert anonymous.returncode == 1 and "access denied (401, no credentials)" in anonymous.stderr
        docker = Path(cli.env["HOME"]) / ".docker"
        docker.mkdir()
        (docker / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()}}}))
        tokens.requests.clear()
        cli("image", "pull", "--tls-verify=false", ref)
        assert tokens.requests == [(["repository:test/tok:pull"], True)]
        assert cli.run(ref, "cat /hello") == "bearer\n"
        tokens.requests.clear()
        cli("image", "push", "--tls-verify=false", ref, f"{reg.host}/test/again:1")
        assert tokens.requests == [(["repository:test/again:pull,push", "repository:test/tok:pull"], True)]
        digest = json.loads(cli("image", "inspect", ref).stdout)["manifest"]
        assert _digest_via_skopeo(reg, "test/again:1", tmp_path) == digest
    finally:
        reg.stop()
        tokens.stop()


def _multi_arch(tmp_path: Path, base: bytes) -> Path:
    """An OCI layout whose ref names an index of two images: linux/amd64 and linux/arm64/v8."""
    d = tmp_path / "multi"
    per_arch = []
    for arch, variant in (("amd64", ""), ("arm64", "v8")):
        layer = tar_layer([entry("arch", data=f"{arch}\n".encode())])
        config = image_config([base, layer])
        config["architecture"] = arch
        write_oci(d, [base, layer], config, ref=arch)
        per_arch.append({"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})})
    index = json.loads((d / "index.json").read_text())
    for m, platform in zip(index["manifests"], per_arch):
        m["platform"] = platform
        del m["annotations"]
    nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": index["manifests"]}).encode()
    (d / "blobs" / "sha256" / sha(nested)[7:]).write_bytes(nested)
    index["manifests"] = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested),
                           "size": len(nested), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
    (d / "index.json").write_text(json.dumps(index))
    return d


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_index_resolves_to_this_platform_or_the_one_asked(cli, plain, base, tmp_path, fmt):
    _push(plain, _multi_arch(tmp_path, base), "test/multi:1", "--all", *(["--format", "v2s2"] if fmt == "v2s2" else []),
          src_ref="multi")
    ref = f"{plain.host}/test/multi:1"
    cli("image", "pull", "--tls-verify=false", ref)
    assert cli.run(ref, "cat /arch") == "amd64\n"
    cli("image", "pull", "--tls-verify=false", "--platform", "linux/arm64", ref)
    info = json.loads(cli("image", "inspect", ref).stdout)
    assert info["config"]["architecture"] == "arm64"
    assert (Path(info["layers"][1]["dir"]) / "diff" / "arch").read_text() == "arm64\n"
    missing = cli("image", "pull", "--tls-verify=false", "--platform", "linux/s390x", ref, check=False)
    assert missing.returncode == 1
    assert "no manifest for linux/s390x (has: linux/amd64, linux/arm64/v8)" in missing.stderr


def test_registries_conf_mirrors_and_insecure(cli, plain, base, tmp_path):
    """A short name goes to registries.conf's search registry; its mirror answers first; an insecure
    registry is reached over plain HTTP without --tls-verify=false, a secure one is not."""
    _push(plain, _layout(tmp_path, base, 'img', ('hello', b'from the mirror\n')), "mirror/app:1")
    conf = Path(cli.env["CONTAINERS_REGISTRIES_CONF"])
    refused = cli("image", "pull", f"{plain.host}/mirror/app:1", check=False)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    conf.write_text(f'unqualified-search-registries = ["example.invalid"]\n'
                    f'[[registry]]\nprefix = "example.invalid"\nlocation = "example.invalid"\n'
                    f'[[registry.mirror]]\nlocation = "{plain.host}/mirror"\ninsecure = true\n')
    cli("image", "pull", "app:1")
    assert cli.run("example.invalid/app:1", "cat /hello") == "from the mirror\n"
    conf.write_text(f'[[registry]]\nlocation = "{plain.host}"\ninsecure = true\n')
    cli("image", "pull", f"{plain.host}/mirror/app:1")


def _big_image(tmp_path: Path, base: bytes, mib: int) -> Path:
    """busybox and a layer of mib MiB of random bytes (it does not compress: its blob is as big)."""
    return _layout(tmp_path, base, "big", ("random", os.urandom(mib << 20)))


def test_a_registry_killed_mid_layer_leaves_nothing(cli, plain, base, tmp_path):
    _push(plain, _big_image(tmp_path, base, 24), "test/big:1")
    proxy = Proxy(plain.port)
    proxy.cut_after, proxy.stall = 4 << 20, True
    try:
        pull = subprocess.Popen([PYOCI, "--store", str(cli.store), "image", "pull", "--tls-verify=false",
                                 f"{proxy.host}/test/big:1"], env=cli.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proxy.stalled.wait(60), "the pull never reached the middle of the big layer"
        staged = [f for top, _, files in os.walk(cli.store / "tmp") for f in files]
        assert staged, "the layer is being written into staging"
        plain.kill()
        proxy.close()
        out, err = pull.communicate(timeout=120)
    finally:
        proxy.close()
    assert pull.returncode == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("pyoci: image pull: layer blob sha256:") and "tries)" in err
    _store_is_empty(cli)


def test_a_dropped_connection_resumes_with_a_range(cli, plain, base, tmp_path):
    _push(plain, _big_image(tmp_path, base, 16), "test/big:1")
    proxy = Proxy(plain.port)
    proxy.cut_after = 4 << 20
    try:
        image = cli("image", "pull", "--tls-verify=false", f"{proxy.host}/test/big:1").stdout.strip()
    finally:
        proxy.close()
    ranged = [r for r in proxy.requests if "\r\nrange: bytes=" in r.lower()]
    assert len(ranged) == 1 and ranged[0].startswith("GET /v2/test/big/blobs/sha256:")
    assert int(ranged[0].lower().split("range: bytes=")[1].split("-")[0]) > 0
    assert image == json.loads(cli("image", "inspect", f"{proxy.host}/test/big:1").stdout)["id"]


def test_stored_layers_are_not_fetched_and_progress_shows_each_layer(cli, plain, base, tmp_path):
    import pty

    _push(plain, _layout(tmp_path, base, 'a', ('a', b'a')), "test/a:1")
    _push(plain, _layout(tmp_path, base, 'b', ('b', b'b'), ('c', b'c')), "test/b:1")
    proxy = Proxy(plain.port)
    master, slave = pty.openpty()
    try:
        cli("image", "pull", "--tls-verify=false", f"{proxy.host}/test/a:1")
        subprocess.run([PYOCI, "--store", str(cli.store), "image", "pull", "--tls-verify=false",
                        f"{proxy.host}/test/b:1"], env=cli.env, stderr=slave, stdout=subprocess.DEVNULL, check=True,
                       timeout=120)
        shown = os.read(master, 65536).decode()
    finally:
        os.close(master)
        os.close(slave)
        proxy.close()
    blob_gets = [r.split()[1] for r in proxy.requests if r.startswith("GET ") and "/blobs/" in r]
    base_blob = json.loads(cli("image", "inspect", f"{proxy.host}/test/a:1").stdout)["layers"][0]["digest"]
    assert sum(base_blob in r for r in blob_gets) == 1, "the shared base layer was fetched again"
    assert "layer 1/3" in shown and "already stored" in shown and "layer 3/3" in shown and "MiB" in shown


def test_push_mounts_blobs_from_another_repository(cli, plain, base, tmp_path):
    _push(plain, _big_image(tmp_path, base, 4), "test/source:1")
    proxy = Proxy(plain.port)
    try:
        cli("image", "pull", "--tls-verify=false", f"{proxy.host}/test/source:1")
        proxy.requests.clear()
        cli("image", "push", "--tls-verify=false", f"{proxy.host}/test/source:1", f"{proxy.host}/test/copy:1")
    finally:
        proxy.close()
    mounts = [r for r in proxy.requests if r.startswith("POST ") and "mount=sha256:" in r and "from=test" in r]
    puts = [r.split()[1] for r in proxy.requests if r.startswith("PUT ")]
    assert len(mounts) == 3  # two layers and the config
    assert puts == ["/v2/test/copy/manifests/1"], "no blob was uploaded: each was mounted"
    digest = json.loads(cli("image", "inspect", f"{proxy.host}/test/source:1").stdout)["manifest"]
    assert _digest_via_skopeo(plain, "test/copy:1", tmp_path) == digest


def test_unreachable_and_unknown(cli, plain, tmp_path):
    gone = cli("image", "pull", "--tls-verify=false", "127.0.0.1:1/x/y:1", check=False)
    assert gone.returncode == 1 and gone.stderr.startswith("pyoci: image pull: 127.0.0.1:1/x/y:1: ")
    assert "Connection refused" in gone.stderr and len(gone.stderr.splitlines()) == 1
    unknown = cli("image", "pull", "--tls-verify=false", f"{plain.host}/no/such:1", check=False)
    assert unknown.returncode == 1 and "manifest 1: " in unknown.stderr and "404" in unknown.stderr
    _store_is_empty(cli)
    start = time.monotonic()
    bad = cli("image", "pull", "Not/A/Ref", check=False)
    assert bad.returncode == 1 and "invalid image reference" in bad.stderr and time.monotonic() - start < 10
