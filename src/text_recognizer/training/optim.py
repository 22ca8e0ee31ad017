"""Optimizers and LR schedules from the config, in the form Lightning expects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from text_recognizer.errors import ConfigError
from text_recognizer.training.config import OptimizerConfig, SchedulerConfig

PER_STEP = {"onecycle", "cyclic"}


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: OptimizerConfig
) -> torch.optim.Optimizer:
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, total_steps: int, max_epochs: int
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` dict, or None for a constant LR."""
    args = dict(config.args)
    lr = optimizer.param_groups[0]["lr"]
    try:
        scheduler: Any
        if config.name == "none":
            return None
        if config.name == "onecycle":
            # OneCycleLR divides by its warm-up's length, pct_start * total_steps - 1 steps:
            # a short run (a small fine-tuning folder) would divide by zero. Warm up for two
            # steps at least.
            if total_steps < 4:
                raise ConfigError(
                    f"scheduler onecycle needs at least 4 training steps; this run has "
                    f"{total_steps}: add data or epochs, or set scheduler.name: none"
                )
            pct_start = max(float(args.pop("pct_start", 0.3)), 2 / total_steps)
            scheduler = lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=args.pop("max_lr", lr),
                total_steps=total_steps,
                pct_start=pct_start,
                **args,
            )
        elif config.name == "cyclic":
            scheduler = lr_scheduler.CyclicLR(
                optimizer,
                base_lr=args.pop("base_lr", lr / 10),
                max_lr=args.pop("max_lr", lr),
                cycle_momentum=args.pop("cycle_momentum", False),
                **args,
            )
        elif config.name == "cosine":
            scheduler = lr_scheduler.CosineAnnealingLR(
                optimizer,
                T_max=args.pop("T_max", max(1, max_epochs - config.warmup_epochs)),
                **args,
            )
        elif config.name == "step":
            scheduler = lr_scheduler.StepLR(optimizer, step_size=args.pop("step_size", 10), **args)
        elif config.name == "multistep":
            scheduler = lr_scheduler.MultiStepLR(
                optimizer, milestones=args.pop("milestones", [max_epochs // 2]), **args
            )
        else:  # plateau
            if config.warmup_epochs:
                raise ConfigError("scheduler.warmup_epochs cannot be combined with plateau")
            scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, **args)
            return {"scheduler": scheduler, "interval": "epoch", "monitor": config.monitor}
    except TypeError as error:
        raise ConfigError(
            f"scheduler {config.name!r}: bad scheduler.args {config.args}: {error}"
        ) from None
    if config.warmup_epochs and config.name not in PER_STEP:
        warmup = lr_scheduler.LinearLR(
            optimizer, start_factor=0.01, total_iters=config.warmup_epochs
        )
        scheduler = lr_scheduler.SequentialLR(
            optimizer, [warmup, scheduler], milestones=[config.warmup_epochs]
        )
    return {"scheduler": scheduler, "interval": "step" if config.name in PER_STEP else "epoch"}
