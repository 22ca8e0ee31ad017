"""Peak memory of building a page cache (``iam_paragraphs``, ``synthetic_paragraphs``).

Makes an ``iamdb.zip`` of ``--forms`` forms of IAM's size (scans of 1,240 x 1,750 px, as
``iamdb.zip`` stores them at 150 dpi, each with nine lines of scribbles in a handwritten
part of ~1,100 x 870 px, all in the test split), then builds ``iam_paragraphs``' test
split from it in a fresh process for each ``--src`` (the ``src`` folder of a checkout:
the one before a change and the one after), one after the other, ``--rounds`` times.
With ``--synthetic N`` it builds N ``synthetic_paragraphs`` test pages the same way (the
default layout: 5-10 lines of 64 px, ~1,150 x 700 px a page; the lines are rendered
once, before). Each build prints its process's resident memory once everything is
imported (VmRSS), its peak by the end (VmHWM, from ``/proc``: Linux only), what the
build added to it, and its seconds.

    git archive COMMIT src | tar -x -C /tmp/before
    python benchmarks/page_cache_memory.py --src /tmp/before/src --src src --forms 200
    python benchmarks/page_cache_memory.py --src /tmp/before/src --src src --forms 0 --synthetic 200
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: A form scanned at 150 dpi (iamdb.zip's), in pixels (height, width); its XML is at 300.
SCAN = (1750, 1240)

# Runs in the process measured: argv is (dataset, root, arguments as JSON).
BUILD = """
import json, sys, time
from pathlib import Path

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

from text_recognizer.data import DATASETS
import h5py  # imported by the build: its memory is not the build's

module = DATASETS.build(sys.argv[1], {"root": Path(sys.argv[2]), **json.loads(sys.argv[3])})
before, _ = memory()
start = time.perf_counter()
module.prepare_splits(["test"])
seconds = time.perf_counter() - start
_, peak = memory()
print(json.dumps({"rss_mb": before, "peak_mb": peak, "seconds": seconds}))
"""


def form_xml(form_id: str, lines: int) -> str:
    """IAM's XML of a form whose ``lines`` lines of two words fill its handwritten part."""
    rows = []
    for row in range(lines):
        top = 1400 + 200 * row
        words = "".join(
            f'<word id="{form_id}-{row:02d}-{w:02d}" text="word"><cmp x="{200 + 1100 * w}" '
            f'y="{top}" width="1100" height="100"/></word>'
            for w in range(2)
        )
        rows.append(f'<line id="{form_id}-{row:02d}" text="word word">{words}</line>')
    return (
        f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<form id="{form_id}" writer-id="{form_id}" '
        f'width="{2 * SCAN[1]}" height="{2 * SCAN[0]}"><machine-printed-part/>'
        f"<handwritten-part>{''.join(rows)}</handwritten-part></form>"
    )


def make_iamdb_zip(path: Path, forms: int, lines: int = 9) -> None:
    """``forms`` test forms: paper with strokes of ink where their lines are."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for number in range(forms):
            form_id = f"a{number // 1000:02d}-{number % 1000:03d}"
            scan = np.full(SCAN, 235, np.uint8)
            for row in range(lines):
                top = 700 + 100 * row
                points = np.stack([np.linspace(100, 1200, 120), top + rng.uniform(0, 50, 120)], 1)
                cv2.polylines(scan, [points.astype(np.int32)], False, 40, 2)
            encoded = io.BytesIO()
            Image.fromarray(scan).save(encoded, "JPEG", quality=90)
            zf.writestr(f"iamdb/forms/{form_id}.jpg", encoded.getvalue())
            zf.writestr(f"iamdb/xml/{form_id}.xml", form_xml(form_id, lines))
        ids = "".join(f"a{n // 1000:02d}-{n % 1000:03d}-00\n" for n in range(forms))
        zf.writestr("iamdb/task/testset.txt", ids)
        for name in ("validationset1.txt", "validationset2.txt", "trainset.txt"):
            zf.writestr(f"iamdb/task/{name}", "")


def build(src: Path, dataset: str, root: Path, arguments: dict[str, object]) -> dict[str, float]:
    """Build ``dataset``'s test split into ``root`` in a fresh process running ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    command = [sys.executable, "-c", BUILD, dataset, str(root), json.dumps(arguments)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the build with {src} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True,
                        help="a checkout's src folder; give several to compare them")  # fmt: skip
    parser.add_argument("--forms", type=int, default=200, help="IAM forms (0: none)")
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic pages (0: none)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        jobs: list[tuple[str, str, dict[str, object], Path | None]] = []
        if args.forms:
            archive = work / "iamdb.zip"
            make_iamdb_zip(archive, args.forms)
            sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
            jobs.append((f"iam_paragraphs, {args.forms} forms", "iam_paragraphs",
                         {"sha256": sha256}, archive))  # fmt: skip
        if args.synthetic:
            lines = work / "lines"  # rendered once, shared by every build
            build(args.src[-1], "synthetic_lines", lines, {"num_train": 2000, "num_val": 2000,
                  "num_test": 2000, "seed": 42, "stroke_fraction": 0.3})  # fmt: skip
            jobs.append((f"synthetic_paragraphs, {args.synthetic} pages",
                         "synthetic_paragraphs", {"num_test": args.synthetic}, None))  # fmt: skip
        print("| build | src | round | RSS before, MB | peak, MB | added, MB | seconds |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for label, dataset, arguments, archive in jobs:
            for round_ in range(1, args.rounds + 1):
                for src in args.src:
                    root = work / "root"
                    shutil.rmtree(root, ignore_errors=True)
                    if archive is not None:
                        (root / "iam").mkdir(parents=True)
                        shutil.copy(archive, root / "iam" / "iamdb.zip")
                    else:
                        root.mkdir()
                        (root / "synthetic_lines").symlink_to(work / "lines" / "synthetic_lines")
                    got = build(src, dataset, root, arguments)
                    print(f"| {label} | {src} | {round_} | {got['rss_mb']:.0f} | "
                          f"{got['peak_mb']:.0f} | {got['peak_mb'] - got['rss_mb']:.0f} | "
                          f"{got['seconds']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
