#!/usr/bin/env python3
"""The layer store's figures: import throughput against `tar -x` of the same layers, the time to prepare a
container root from a 10-layer image, the disk 10 containers of one image use, and pull and push of that
image through a local docker-registry against skopeo's (same registry, same run).

Run as root:  python3 bench/store.py [--runs N] [--tree DIR]

The layers are made from --tree (default: Debian 12's Python standard library, 54 MiB in 1.5k files) in a temporary
directory; every store, bundle and container is removed at the end, and the exit status is 1 if a mount
under the temporary directory is left.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from imagebuilder import dir_layer, image_config, write_oci  # noqa: E402
from registry import Registry  # noqa: E402

PYOCI = shutil.which("pyoci") or "/opt/pyoci/venv/bin/pyoci"


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def du(path: str) -> int:
    return int(subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True, check=True).stdout.split()[0])


def split_tree(tree: str, parts: int, dest: str) -> list[str]:
    """tree's top-level entries dealt into `parts` directories of about equal size."""
    dirs = [os.path.join(dest, f"part{i}") for i in range(parts)]
    sizes = [0] * parts
    entries = sorted(os.listdir(tree), key=lambda n: -du(os.path.join(tree, n)))
    for name in entries:
        i = sizes.index(min(sizes))
        target = os.path.join(dirs[i], "data", name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        src = os.path.join(tree, name)
        shutil.copytree(src, target, symlinks=True) if os.path.isdir(src) else shutil.copy2(src, target)
        sizes[i] += du(src)
    return dirs


def registry_figures(tmp: str, layout: str, runs: int) -> dict[str, float]:
    """pyoci image pull against skopeo copy docker://... oci:... (skopeo only downloads; pyoci also unpacks,
    so its import of the same layout is shown, and skopeo followed by umoci unpack), and pyoci image push
    against skopeo copy oci:... docker://... into an empty registry each time."""
    from pathlib import Path

    reg = Registry(Path(tmp, "registry"))
    try:
        reg.push(f"oci:{layout}:latest", "bench/ten:1")
        size = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", b))
                   for b in os.listdir(os.path.join(layout, "blobs", "sha256")))
        pull, skopeo_pull, imp, umoci = [], [], [], []
        for run in range(runs):
            store = os.path.join(tmp, f"pull{run}")
            pull.append(timed([PYOCI, "--store", store, "image", "pull", "--tls-verify=false",
                               f"{reg.host}/bench/ten:1"]))
            shutil.rmtree(store)
            skopeo_pull.append(timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                      f"docker://{reg.host}/bench/ten:1", f"oci:{tmp}/skopeo{run}:x"]))
            if shutil.which("umoci"):  # what skopeo needs besides to give a root filesystem
                umoci.append(timed(["umoci", "unpack", "--image", f"{tmp}/skopeo{run}:x", f"{tmp}/umoci{run}"]))
                shutil.rmtree(f"{tmp}/umoci{run}")
            shutil.rmtree(f"{tmp}/skopeo{run}")
            imp.append(timed([PYOCI, "--store", store, "image", "import", layout]))
            shutil.rmtree(store)
    finally:
        reg.stop()
    store = os.path.join(tmp, "pushstore")
    subprocess.run([PYOCI, "--store", store, "image", "import", "--tag", "bench/push", layout], check=True,
                   stdout=subprocess.DEVNULL)
    push, skopeo_push = [], []
    for run in range(runs):
        for out, argv in ((skopeo_push, ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest"]),
                          (push, [PYOCI, "--store", store, "image", "push", "--tls-verify=false", "bench/push"])):
            fresh = Registry(Path(tmp, f"push{run}-{os.path.basename(argv[0])}"))  # an empty one for each
            try:
                out.append(timed(argv + [f"docker://{fresh.host}/bench/ten:1" if argv[0] == "skopeo"
                                         else f"{fresh.host}/bench/ten:1"]))
            finally:
                fresh.stop()
    p, s, i = statistics.median(pull), statistics.median(skopeo_pull), statistics.median(imp)
    u, su = statistics.median(push), statistics.median(skopeo_push)
    return {"image blobs MiB": round(size / 2**20, 1),
            "pyoci pull s (download + unpack)": round(p, 3), "skopeo copy to oci: s (download)": round(s, 3),
            "pull ratio": round(p / s, 2), "pyoci import of the same layout s": round(i, 3),
            **({"skopeo copy + umoci unpack s": round(s + statistics.median(umoci), 3),
                "pull ratio to skopeo + umoci": round(p / (s + statistics.median(umoci)), 2)} if umoci else {}),
            "pyoci push s": round(u, 3), "skopeo copy oci: to docker:// s": round(su, 3), "push ratio": round(u / su, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tree", default="/usr/lib/python3.11" if os.path.isdir("/usr/lib/python3.11")
                    else sysconfig.get_paths()["stdlib"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pyoci-bench-store-")
    results: dict[str, object] = {}
    try:
        layer = dir_layer(args.tree)
        blob = os.path.join(tmp, "layer.tar.gz")
        with open(blob, "wb") as f:
            f.write(gzip.compress(layer, compresslevel=6, mtime=0))
        plain = os.path.join(tmp, "layer.tar")
        with open(plain, "wb") as f:
            f.write(layer)
        files = sum(len(fs) + len(ds) for _, ds, fs in os.walk(args.tree))
        results["layer"] = {"tar MiB": round(len(layer) / 2**20, 1), "entries": files}
        for how, src in (("gzip", blob), (None, plain)):
            layout = write_oci(__import__("pathlib").Path(tmp, f"img-{how}"), [layer], how=how)
            tar_t, imp_t = [], []
            for run in range(args.runs):
                out = os.path.join(tmp, f"x{run}")
                os.mkdir(out)
                tar_t.append(timed(["tar", "-x", "--same-owner", "--xattrs", "-f", src, "-C", out]))
                shutil.rmtree(out)
                store = os.path.join(tmp, f"store{run}")
                imp_t.append(timed([PYOCI, "--store", store, "image", "import", str(layout)]))
                shutil.rmtree(store)
            t, i = statistics.median(tar_t), statistics.median(imp_t)
            results[f"import ({how or 'uncompressed'})"] = {
                "tar -x s": round(t, 3), "pyoci import s": round(i, 3), "ratio": round(i / t, 2),
                "pyoci MiB/s": round(len(layer) / 2**20 / i, 1)}
        # a 10-layer image: busybox (from scripts/busybox-bundle) + 9 parts of the tree
        bb = os.path.join(tmp, "bb")
        subprocess.run([os.path.join(HERE, "..", "scripts", "busybox-bundle"), bb], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PATH": f"{os.path.dirname(PYOCI)}:{os.environ['PATH']}"})
        layers = [dir_layer(os.path.join(bb, "rootfs"))] + [dir_layer(d) for d in split_tree(args.tree, 9, tmp)]
        store = os.path.join(tmp, "store")
        root = os.path.join(tmp, "state")
        base = [PYOCI, "--store", store, "--root", root]
        write_oci(__import__("pathlib").Path(tmp, "img10"), layers, image_config(layers))
        subprocess.run(base + ["image", "import", "--tag", "bench/ten", os.path.join(tmp, "img10")], check=True,
                       stdout=subprocess.DEVNULL)
        prep, mount = [], []
        for run in range(max(args.runs, 10)):
            bundle = os.path.join(tmp, f"b{run}")
            prep.append(timed(base + ["bundle", "create", "bench/ten", bundle, "sh", "-c",
                                      "echo written > /data/new-file; touch /etc/hostname-copy"]))
            mount.append(timed(base + ["create", "--bundle", bundle, f"bench{run}"]))
            subprocess.run(base + ["start", f"bench{run}"], check=True)
        for run in range(max(args.runs, 10)):
            while json.loads(subprocess.run(base + ["state", f"bench{run}"], capture_output=True, text=True,
                                            check=True).stdout)["status"] != "stopped":
                time.sleep(0.05)
            subprocess.run(base + ["delete", f"bench{run}"], check=True)
        image_bytes = du(os.path.join(store, "overlay2")) - sum(
            du(os.path.join(store, "overlay2", b["layer"]))
            for b in json.loads(subprocess.run(base + ["bundle", "list", "--format", "json"], capture_output=True,
                                               text=True, check=True).stdout))
        uppers = [du(os.path.join(store, "overlay2", b["layer"])) for b in json.loads(
            subprocess.run(base + ["bundle", "list", "--format", "json"], capture_output=True, text=True).stdout)]
        results["10-layer image"] = {
            "bundle create (container layer + config) ms": round(statistics.median(prep) * 1000, 1),
            "create incl. overlay mount ms": round(statistics.median(mount) * 1000, 1),
            "image layers MiB": round(image_bytes / 2**20, 1),
            "10 containers' layers KiB (total)": round(sum(uppers[:10]) / 1024, 1),
            "per container KiB": round(statistics.median(uppers) / 1024, 1)}
        if shutil.which("docker-registry") and shutil.which("skopeo"):
            results["pull and push (10-layer image, local registry)"] = registry_figures(
                tmp, os.path.join(tmp, "img10"), args.runs)
    finally:
        for line in open("/proc/self/mountinfo"):
            if line.split()[4].startswith(tmp):
                subprocess.run(["umount", "-l", line.split()[4]])
        left = [line for line in open("/proc/self/mountinfo") if tmp in line]
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
