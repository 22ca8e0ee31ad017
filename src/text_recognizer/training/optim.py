"""Optimizers and LR schedules from the config, in the form Lightning expects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from text_recognizer.errors import ConfigError
from text_recognizer.training.config import OptimizerConfig, SchedulerConfig, best_direction

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


#: How many steps of a per-batch schedule are tried out before training (a bad argument
#: fails at construction or in its first steps; the whole of a long run would take seconds).
REHEARSED_STEPS = 200


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, total_steps: int, max_epochs: int
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` dict, or None for a constant LR.

    The schedule is first stepped on a stand-in optimizer, so that ``scheduler.args`` that
    torch takes but cannot step with (``gamma: abc``, ``T_max: 0``) are a ``ConfigError``
    now, not a traceback at the end of the first epoch (or the tenth).
    """
    rehearse(config, total_steps, max_epochs, optimizer.param_groups[0]["lr"])
    return _build_scheduler(optimizer, config, total_steps, max_epochs)


def rehearse(config: SchedulerConfig, total_steps: int, max_epochs: int, lr: float) -> None:
    """Step the schedule through (its first ``REHEARSED_STEPS`` steps when per batch) on a
    stand-in optimizer; a value it cannot use is a ``ConfigError`` naming the arguments."""
    weight = torch.zeros(1, requires_grad=True)
    stand_in = torch.optim.SGD([weight], lr=lr)
    built = _build_scheduler(stand_in, config, total_steps, max_epochs)
    if built is None:
        return
    scheduler = built["scheduler"]
    steps = min(total_steps, REHEARSED_STEPS) if built["interval"] == "step" else max_epochs
    try:
        for _ in range(steps):
            stand_in.step()  # no gradient: nothing changes, but torch sees the order it wants
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(1.0)
            else:
                scheduler.step()
    except (TypeError, ValueError, ArithmeticError) as error:
        raise ConfigError(
            f"scheduler {config.name!r}: bad scheduler.args {config.args}: stepping the "
            f"schedule failed ({type(error).__name__}: {error})"
        ) from None


def _build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, total_steps: int, max_epochs: int
) -> dict[str, Any] | None:
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
            milestones = args.pop("milestones", [max_epochs // 2])
            # torch takes any iterable: "abc" or 30 (no list) never lowered the LR.
            if not isinstance(milestones, list) or not all(
                isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in milestones
            ):
                raise ConfigError(
                    f"scheduler multistep: milestones must be a list of epochs (whole numbers "
                    f"above 0), e.g. [30, 60], not {milestones!r}"
                )
            scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=milestones, **args)
        else:  # plateau
            if config.warmup_epochs:
                raise ConfigError("scheduler.warmup_epochs cannot be combined with plateau")
            # Its own default, min, would cut the LR while an accuracy keeps rising.
            args.setdefault("mode", best_direction(config.monitor))
            scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, **args)
            return {"scheduler": scheduler, "interval": "epoch", "monitor": config.monitor}
    except ConfigError:
        raise
    except (TypeError, ValueError, ArithmeticError) as error:  # torch's checks of its arguments
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
