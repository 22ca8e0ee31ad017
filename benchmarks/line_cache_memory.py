"""Peak memory of building a line cache (``synthetic_lines``, ``emnist_lines``).

Builds ``--lines`` ``synthetic_lines`` training lines (the shipped config's options:
seed 42, 30 % stroke faces, 10 % with numbers; ``--build-workers`` processes) and
``--emnist-lines`` ``emnist_lines`` lines (that many to train on, a fifth of it each to
validate and test, composed from ``synthetic_chars`` characters rendered once, before),
in a fresh process for each ``--src`` (the ``src`` folder of a checkout: the one before a
change and the one after), one after the other, ``--rounds`` times. Each build prints its
process's resident memory once everything is imported (VmRSS), its peak by the end
(VmHWM, from ``/proc``: Linux only; the rendering processes' own memory is not in it),
what the build added to it, and its seconds; then the seconds a fresh process took to
read the cache back, and whether it holds what the first ``--src``'s build wrote, array
for array, under the same file name (cache key).

    git archive COMMIT src | tar -x -C /tmp/before
    python benchmarks/line_cache_memory.py --src /tmp/before/src --src src \\
        --lines 20000 --emnist-lines 3000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Runs in the process measured: argv is (dataset, root, arguments as JSON, splits as JSON).
BUILD = """
import json, sys, time
from pathlib import Path

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

from text_recognizer.data import DATASETS
import h5py  # imported by the build: its memory is not the build's

module = DATASETS.build(sys.argv[1], {"root": Path(sys.argv[2]), **json.loads(sys.argv[3])})
if sys.argv[1] == "emnist_lines":  # what it loads once, whatever the size: not measured
    module._prepared_char_module()  # the characters (cached already)
    from text_recognizer.data.sentences import SentenceGenerator
    SentenceGenerator(8).generate()  # the corpus's word index
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here
before, _ = memory()
start = time.perf_counter()
module.prepare_splits(json.loads(sys.argv[4]))
seconds = time.perf_counter() - start
_, peak = memory()
print(json.dumps({"rss_mb": before, "peak_mb": peak, "seconds": seconds}))
"""

# Runs in a fresh process after the build (one that built would reuse the memory it gave
# back): reads every cache under argv[1] and hashes what it holds.
READ = """
import hashlib, json, sys, time
from pathlib import Path
import h5py
from text_recognizer.data.cache import read_h5

digest, files = hashlib.sha256(), []
start = time.perf_counter()
for path in sorted(Path(sys.argv[1]).glob("*.h5")):
    files.append(path.name)
    with h5py.File(path) as f:
        digest.update(f.attrs["params"].encode())
    for key, array in sorted(read_h5(path).items()):
        digest.update(f"{key} {array.dtype} {array.shape}".encode())
        strings = array.dtype == object
        digest.update(json.dumps(array.tolist()).encode() if strings else array.tobytes())
read = time.perf_counter() - start
print(json.dumps({"read_s": read, "files": files, "digest": digest.hexdigest()}))
"""


def run(src: Path, script: str, *arguments: str) -> dict[str, Any]:
    """The JSON ``script`` prints last, run in a fresh process with ``src`` on the path."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    command = [sys.executable, "-c", script, *arguments]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{script.strip().splitlines()[0]}... with {src} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def build(
    src: Path, dataset: str, root: Path, arguments: dict[str, Any], splits: list[str]
) -> dict[str, Any]:
    """Build ``dataset``'s ``splits`` into ``root`` in a fresh process running ``src``, then
    read the caches back in another."""
    built = run(src, BUILD, dataset, str(root), json.dumps(arguments), json.dumps(splits))
    return {**built, **run(src, READ, str(root / dataset))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True,
                        help="a checkout's src folder; give several to compare them")  # fmt: skip
    parser.add_argument("--lines", type=int, default=20_000, help="synthetic lines (0: none)")
    parser.add_argument("--emnist-lines", type=int, default=3000, help="emnist lines (0: none)")
    parser.add_argument("--build-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    jobs: list[tuple[str, str, dict[str, Any], list[str]]] = []
    if args.lines:
        synthetic = {"num_train": args.lines, "seed": 42, "stroke_fraction": 0.3,
                     "numbers": 0.1, "build_workers": args.build_workers}  # fmt: skip
        jobs.append((f"synthetic_lines, {args.lines:,} lines", "synthetic_lines", synthetic,
                     ["train"]))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        chars = {"num_train": 3100, "num_val": 3100, "num_test": 3100,
                 "build_workers": args.build_workers, "root": str(work / "chars")}  # fmt: skip
        if args.emnist_lines:
            held_out = max(1, args.emnist_lines // 5)
            emnist = {"num_train": args.emnist_lines, "num_val": held_out, "num_test": held_out,
                      "char_source_args": chars}  # fmt: skip
            jobs.append((f"emnist_lines, {args.emnist_lines + 2 * held_out:,} lines",
                         "emnist_lines", emnist, ["train", "val", "test"]))  # fmt: skip
            # The characters, rendered once before: every build reads them.
            build(args.src[-1], "synthetic_chars", work / "chars", chars, ["train", "val", "test"])
        print("| build | src | round | RSS before, MB | peak, MB | added, MB | seconds | "
              "read, s | same cache |")  # fmt: skip
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for label, dataset, arguments, splits in jobs:
            first = None
            for round_ in range(1, args.rounds + 1):
                for src in args.src:
                    root = work / "root"
                    shutil.rmtree(root, ignore_errors=True)
                    got = build(src, dataset, root, arguments, splits)
                    made = (got["files"], got["digest"])
                    first = first or made
                    print(f"| {label} | {src} | {round_} | {got['rss_mb']:.0f} | "
                          f"{got['peak_mb']:.0f} | {max(0, got['peak_mb'] - got['rss_mb']):.0f} | "
                          f"{got['seconds']:.1f} | {got['read_s']:.1f} | "
                          f"{'yes' if made == first else 'NO'} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
