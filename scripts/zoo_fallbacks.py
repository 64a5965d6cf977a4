#!/usr/bin/env python3
# Why this exists: issue 16 asks that no node of a real model fall back to the reference
# kernels. This lists, per model of the real-model zoo (tests/zoo/manifest.json, fetched into
# .cache/zoo/ by scripts/fetch_zoo.py), the JIT's compile time and the nodes that fall back,
# grouped by op type, with the manifest's input shapes. A quick coverage check, not a
# benchmark (3 untimed-quality runs): timings belong to scripts/bench_zoo.py.
#
#   cargo build --release -p ssc-opt-cli && python3 scripts/zoo_fallbacks.py
import collections
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release", "ssc-opt")


def main() -> int:
    manifest = json.load(open(os.path.join(REPO, "tests", "zoo", "manifest.json")))
    for x in manifest["models"]:
        path = os.path.join(REPO, ".cache", "zoo", "models", f"{x['name']}.onnx")
        if not os.path.isfile(path):
            print(f"{x['name']}: not fetched (run scripts/fetch_zoo.py)")
            continue
        args = [BIN, "bench", path, "--json", "-q", "--iters", "3", "--warmup", "1"]
        for k, v in x["inputs"].items():
            args += ["--input-shape", f"{k}:{','.join(map(str, v['shape']))}"]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode:
            print(f"{x['name']}: does not compile: {r.stderr.strip().splitlines()[-1]}")
            continue
        j = json.loads(r.stdout)
        ops = collections.Counter(f.rsplit("(", 1)[-1].rstrip(")") for f in j["fallback_nodes"])
        print(f"{x['name']}: compile {j['compile_ms']:.1f} ms, "
              f"{len(j['fallback_nodes'])} fall back {dict(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
