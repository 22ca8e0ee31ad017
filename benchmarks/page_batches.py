"""Reading pages several at a time, as ``evaluate`` does, against one at a time.

Reads the ``synthetic_paragraphs`` test pages (the defaults: 5-10 lines a page, the
shipped line model's held-out hands; built if not cached) with
``text_recognizer.evaluate.read_pages`` at each ``--batch`` (pages a
``Recognizer.recognize_each`` call; 1 reads each page alone, as ``recognize(page,
kind="paragraph")`` does), one after another, ``--rounds`` times, and prints each run's
seconds (wall-clock and this process's CPU time: on a busy machine the CPU time
is the steadier), the CER of the pages, the lines found and how many pages read otherwise than
at the first ``--batch``. ``--threads`` is ONNX Runtime's (0: one per core, as
``evaluate``).

    python benchmarks/page_batches.py --pages 100 --batch 1 --batch 16
"""

from __future__ import annotations

import argparse
import time

from text_recognizer.data import DATASETS
from text_recognizer.evaluate import read_pages
from text_recognizer.metrics import cer
from text_recognizer.recognizer import Recognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--pages", type=int, default=100, help="test pages (num_test)")
    parser.add_argument("--batch", type=int, action="append", help="pages a call (default 1, 16)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    batches = args.batch or [1, 16]
    module = DATASETS.build("synthetic_paragraphs", {"num_test": args.pages})
    module.setup("test")
    assert module.data_test is not None
    pages = [module.data_test[i] for i in range(len(module.data_test))]
    truths = [text for _, text in pages]
    recognizer = Recognizer.from_pretrained(args.model, threads=args.threads)
    read_pages(recognizer, pages[:2], "warm-up")
    first: list[str] | None = None
    print(f"{len(pages)} pages, {sum(t.count(chr(10)) + 1 for t in truths)} lines")
    print("| round | pages a call | seconds | CPU seconds | CER | lines found | read otherwise |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for round_ in range(1, args.rounds + 1):
        for batch in batches:
            start, cpu = time.perf_counter(), time.process_time()
            predictions, found = read_pages(recognizer, pages, "pages", batch=batch)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            texts = [text for text, _ in predictions]
            first = first or texts
            changed = sum(a != b for a, b in zip(first, texts, strict=True))
            print(f"| {round_} | {batch} | {seconds:.2f} | {cpu:.2f} | {cer(texts, truths):.4f} | "
                  f"{sum(found)} | {changed} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
