"""Does a line run read better with its batch-norm statistics recomputed on unpadded batches?

A run trained with ``width_multiple`` saw background padding in every training batch, so
its batch-norm running statistics describe padded batches, while the Recognizer reads
unpadded lines. This script loads a run's best checkpoint, resets every batch-norm
layer's running mean and variance, recomputes them as a plain average over ``--batches``
training batches of the run's own data config with ``width_multiple`` set to 1
(augmented as in training, no gradients, the weights untouched), writes the result as a
new run folder, then scores the original and the recalibrated run on the same splits
with ``text-recognizer evaluate``. Run it on an unpadded run too: that is the control
(recomputing statistics a run already matches should change nothing).

    python benchmarks/batchnorm_recalibration.py runs/lines/lines_crnn/RUN --out /tmp/RUN-bn \
        --eval-arg=--data=synthetic_lines --eval-arg=--data-arg=num_train=300000 \
        --eval-arg=--seed=42
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from text_recognizer.models.loading import load_module, resolve_checkpoint
from text_recognizer.training.config import load_config
from text_recognizer.training.run import build_datamodule, cpu_has_bf16

#: What :func:`recalibrate` writes: an ``--out`` holding only these may be written over.
WRITTEN = {"config.yaml", "hparams.yaml", "checkpoints", "checkpoints/best.ckpt"}


def check_out(run: Path, out: Path) -> None:
    """Refuse an ``--out`` whose replacement would delete the run or anything else."""
    run, out = run.resolve(), out.resolve()
    if out == run or out in run.parents:
        raise SystemExit(f"--out {out} holds the run {run}: give a new folder")
    if out.is_dir():
        held = {path.relative_to(out).as_posix() for path in out.rglob("*")}
        if held - WRITTEN:
            raise SystemExit(
                f"--out {out} holds files this script did not write: give a new folder"
            )


def recalibrate(run: Path, out: Path, batches: int) -> float:
    """Write ``run`` with recomputed batch-norm statistics to ``out``; the stem's mean shift."""
    torch.manual_seed(0)
    config = load_config(run / "config.yaml", ["data.args.width_multiple=1"])
    if config.init is not None and config.init.freeze_batchnorm:
        # The module keeps frozen batch norms in eval mode, so their statistics would be
        # reset and never recomputed (and a bundled model's are folded into its weights).
        raise SystemExit(f"{run} trained with init.freeze_batchnorm: nothing to recalibrate")
    data = build_datamodule(config)
    data.prepare_data()
    data.setup("fit")
    module = load_module(run)
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = norms[0].running_mean.clone()  # type: ignore[union-attr]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batches, not an exponential one
    module.train()
    loader = iter(data.train_dataloader())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_bf16()):
        for _ in range(batches):
            images, widths, _, _ = next(loader)
            module.network(images, widths)
    checkpoint = torch.load(resolve_checkpoint(run), map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = module.state_dict()
    shutil.rmtree(out, ignore_errors=True)
    (out / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "hparams.yaml"):
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    torch.save(checkpoint, out / "checkpoints" / "best.ckpt")
    return float((norms[0].running_mean - before).abs().mean())  # type: ignore[operator]


def score(run: Path, split: str, eval_args: list[str]) -> float:
    command = [sys.executable, "-m", "text_recognizer.cli", "evaluate", str(run), "--split", split]
    result = subprocess.run([*command, *eval_args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    match = re.search(r"cer=([0-9.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"no CER in the evaluate output:\n{result.stdout}{result.stderr}")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a line run folder (config.yaml + checkpoints)")
    parser.add_argument("--out", type=Path, required=True, help="the recalibrated run folder")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--split", action="append", help="default: val and test")
    parser.add_argument("--eval-arg", action="append", default=[], help="passed to evaluate")
    args = parser.parse_args(argv)
    check_out(args.run, args.out)
    torch.set_num_threads(2)
    shift = recalibrate(args.run, args.out, args.batches)
    print(f"first batch-norm layer: running mean moved by {shift:.4f} on average")
    print("| split | as trained | recalibrated |\n|---|---:|---:|")
    for split in args.split or ["val", "test"]:
        before, after = (score(run, split, args.eval_arg) for run in (args.run, args.out))
        print(f"| {split} | {before:.4f} | {after:.4f} |")


if __name__ == "__main__":
    main()
