"""Callbacks and schedules configured from YAML actually fire in a real Lightning run."""

import csv
import logging
from pathlib import Path

import pytest
import torch

from tests.training.test_run import tiny_config
from text_recognizer.errors import ConfigError
from text_recognizer.training.config import SchedulerConfig, parse_config
from text_recognizer.training.optim import build_scheduler
from text_recognizer.training.run import run_experiment


def learning_rates(run_dir: Path) -> list[tuple[int, float]]:
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    column = next(key for key in rows[0] if key.startswith("lr-"))
    return [(int(r["step"]), float(r[column])) for r in rows if r[column]]


def test_early_stopping_ends_the_run(tiny_chars: str) -> None:
    config = tiny_config(
        tiny_chars,
        trainer={"max_epochs": 6, "num_threads": 1},
        callbacks={
            "checkpoint": {"monitor": "val/acc", "mode": "max"},
            # No epoch can improve val/acc by a whole 1.0: the run stops after patience.
            "early_stopping": {
                "monitor": "val/acc",
                "mode": "max",
                "patience": 1,
                "min_delta": 1.0,
            },
            "progress_bar": "none",
        },
    )
    summary = run_experiment(parse_config(config))
    assert summary["epochs"] < 6


def test_per_step_schedule_and_lr_monitor(tiny_chars: str) -> None:
    config = tiny_config(
        tiny_chars, trainer={"max_epochs": 2, "num_threads": 1, "log_every_n_steps": 1}
    )
    lrs = learning_rates(Path(run_experiment(parse_config(config))["run_dir"]))
    values = [lr for _, lr in lrs]
    assert len(set(values)) > 5  # onecycle moves every batch
    assert max(values) == pytest.approx(1e-2, rel=0.05)


def test_per_epoch_schedule_with_warmup(tiny_chars: str) -> None:
    config = tiny_config(
        tiny_chars,
        scheduler={"name": "cosine", "warmup_epochs": 1},
        trainer={"max_epochs": 3, "num_threads": 1, "log_every_n_steps": 1},
    )
    lrs = learning_rates(Path(run_experiment(parse_config(config))["run_dir"]))
    values = [lr for _, lr in lrs]
    assert values[0] == pytest.approx(1e-4)  # 1 % of the LR during the warm-up epoch
    assert len(set(values)) == 3  # constant within an epoch, one value per epoch


def test_swa_runs(tiny_chars: str) -> None:
    config = tiny_config(
        tiny_chars,
        scheduler={"name": "none"},
        callbacks={"swa": {"lr": 1e-3, "start_epoch": 1}, "progress_bar": "none"},
        trainer={"max_epochs": 2, "num_threads": 1},
    )
    # Lightning's SWA adds one epoch to recompute batch-norm statistics for the average.
    assert run_experiment(parse_config(config))["epochs"] == 3


def test_ema_validates_and_checkpoints_the_average(tiny_chars: str) -> None:
    config = tiny_config(
        tiny_chars,
        callbacks={
            "checkpoint": {"monitor": "val/acc", "mode": "max"},
            "ema": {"decay": 0.9, "start_step": 2},
            "progress_bar": "none",
        },
    )
    summary = run_experiment(parse_config(config))
    checkpoint = torch.load(
        Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=True
    )
    # state_dict (what export and evaluate load) is the average; the raw weights ride along.
    average, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert average.keys() == raw.keys()
    assert any(not torch.equal(average[k], raw[k]) for k in average)
    assert int(checkpoint["averaging_state"]["n_averaged"]) == summary["global_step"] - 2
    assert summary["test"]["test/acc"] > 0.9


def test_swa_and_ema_together_are_refused() -> None:
    config = tiny_config("tiny_chars", callbacks={"swa": {}, "ema": {}})
    with pytest.raises(ConfigError, match="swa and ema both average the weights"):
        parse_config(config)


@pytest.mark.parametrize(
    ("name", "args", "interval"),
    [
        ("onecycle", {}, "step"),
        ("cyclic", {"step_size_up": 5}, "step"),
        ("cosine", {}, "epoch"),
        ("step", {"step_size": 2}, "epoch"),
        ("multistep", {"milestones": [1, 2]}, "epoch"),
        ("plateau", {"patience": 1}, "epoch"),
    ],
)
def test_every_scheduler_builds(name: str, args: dict, interval: str) -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    built = build_scheduler(
        optimizer, SchedulerConfig(name=name, args=args), total_steps=20, max_epochs=4
    )
    assert built is not None and built["interval"] == interval


@pytest.mark.parametrize("total_steps", [4, 5, 10, 19])
def test_a_short_one_cycle_still_warms_up_and_anneals(total_steps: int) -> None:
    """A small fine-tuning folder gives few steps: pct_start 0.1 of 10 steps used to leave a
    warm-up of zero steps, and OneCycleLR divided by it."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    config = SchedulerConfig(name="onecycle", args={"pct_start": 0.1})
    built = build_scheduler(optimizer, config, total_steps=total_steps, max_epochs=1)
    assert built is not None
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        built["scheduler"].step()
    assert max(rates) == pytest.approx(1e-3) and rates[0] < 1e-4 and rates[-1] < 1e-4


def test_a_one_cycle_too_short_to_have_phases_is_refused() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    with pytest.raises(ConfigError, match="needs at least 4 training steps; this run has 3"):
        build_scheduler(optimizer, SchedulerConfig(name="onecycle"), 3, 1)


def test_bad_scheduler_args_are_named() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    with pytest.raises(ConfigError, match=r"scheduler 'step': bad scheduler\.args"):
        build_scheduler(optimizer, SchedulerConfig(name="step", args={"gamma_typo": 1}), 20, 4)
    with pytest.raises(ConfigError, match="warmup_epochs cannot be combined with plateau"):
        build_scheduler(optimizer, SchedulerConfig(name="plateau", warmup_epochs=1), 20, 4)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("onecycle", {"pct_start": 2}, "Expected float between 0 and 1 pct_start"),
        ("onecycle", {"pct_start": "abc"}, "could not convert string to float"),
        ("plateau", {"mode": "maxx"}, "mode maxx is unknown"),
        # These two build, and failed when first stepped: at the end of an epoch (the
        # tenth, for a step size of 10), a traceback after that much training.
        ("cosine", {"T_max": 0}, r"stepping the schedule failed \(ZeroDivisionError"),
        ("step", {"step_size": 10, "gamma": "abc"}, r"stepping the schedule failed \(TypeError"),
    ],
)
def test_scheduler_values_torch_cannot_use_are_config_errors_before_training(
    name: str, args: dict, message: str
) -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    with pytest.raises(ConfigError, match=rf"scheduler '{name}': bad scheduler\.args .*{message}"):
        build_scheduler(optimizer, SchedulerConfig(name=name, args=args), 20, 12)
    assert optimizer.param_groups[0]["lr"] == 1e-3  # the rehearsal steps a stand-in


@pytest.mark.parametrize("milestones", ["abc", 30, [30, "60"], [0], [True]])
def test_multistep_milestones_that_never_lower_the_lr_are_config_errors(milestones: object) -> None:
    """torch takes any iterable: "abc" (or a number, no list) was taken, and the LR never fell."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    config = SchedulerConfig(name="multistep", args={"milestones": milestones})
    with pytest.raises(ConfigError, match=r"milestones must be a list of epochs"):
        build_scheduler(optimizer, config, 20, 12)


@pytest.mark.parametrize(
    ("monitor", "args", "mode"),
    [("val/acc", {}, "max"), ("val/loss", {}, "min"), ("val/cer", {}, "min"),
     ("val/acc", {"mode": "min"}, "min")],
)  # fmt: skip
def test_plateau_watches_an_accuracy_for_a_rise(monitor: str, args: dict, mode: str) -> None:
    """ReduceLROnPlateau's own default, min, cut the LR of a model whose val/acc kept rising."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    config = SchedulerConfig(name="plateau", monitor=monitor, args=args)
    built = build_scheduler(optimizer, config, 20, 4)
    assert built is not None and built["scheduler"].mode == mode


def forecast_case(limit_s: float) -> tuple[object, object, object]:
    """A MaxTimeForecast, a Timer with ``limit_s`` of budget, and a trainer at step 0 of 100."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import Timer

    from text_recognizer.training.callbacks import MaxTimeForecast

    clock = SimpleNamespace(elapsed=0.0)
    timer = Timer(duration={"seconds": limit_s})
    timer.time_elapsed = lambda stage="train": clock.elapsed  # type: ignore[method-assign]
    timer.time_remaining = lambda stage="train": limit_s - clock.elapsed  # type: ignore[method-assign]
    trainer = SimpleNamespace(callbacks=[timer], global_step=0, estimated_stepping_batches=100)
    trainer.clock = clock
    trainer.lr_scheduler_configs = []
    trainer.fit_loop = SimpleNamespace(epoch_loop=SimpleNamespace(max_steps=-1))
    return MaxTimeForecast(every=10), timer, trainer


def advance(forecast, trainer, steps: int, seconds_per_step: float) -> None:  # type: ignore[no-untyped-def]
    for _ in range(steps):
        trainer.global_step += 1
        trainer.clock.elapsed += seconds_per_step
        forecast.on_train_batch_end(trainer, None, None, None, 0)


def test_max_time_forecast_warns_once_when_the_schedule_cannot_finish(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forecast, _, trainer = forecast_case(limit_s=60.0)
    trainer.clock.elapsed = 5.0  # data preparation before the first step does not count
    forecast.on_train_start(trainer, None)
    with caplog.at_level("WARNING", logger="text_recognizer.training.callbacks"):
        advance(forecast, trainer, 9, 1.0)
        assert not caplog.text  # too few steps to judge the pace
        advance(forecast, trainer, 20, 1.0)
    assert caplog.text.count("at this pace") == 1
    assert "step 55 of 100" in caplog.text and "trainer.max_time=null" in caplog.text


def test_max_time_forecast_is_silent_when_the_schedule_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forecast, _, trainer = forecast_case(limit_s=120.0)
    forecast.on_train_start(trainer, None)
    with caplog.at_level("WARNING", logger="text_recognizer.training.callbacks"):
        advance(forecast, trainer, 30, 1.0)
    assert not caplog.text


def one_cycle(total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total_steps)


def fit_case(limit_s: float) -> tuple[object, torch.optim.lr_scheduler.OneCycleLR, object]:
    """A fitting MaxTimeForecast started 5 s into ``limit_s``, a 100-step one-cycle schedule."""
    from text_recognizer.training.callbacks import MaxTimeForecast

    _, _, trainer = forecast_case(limit_s)
    forecast = MaxTimeForecast(every=10, fit=True)
    scheduler = one_cycle(100)
    trainer.lr_scheduler_configs = [type("Config", (), {"scheduler": scheduler})()]
    trainer.clock.elapsed = 5.0  # data preparation before the first step does not count
    forecast.on_train_start(trainer, None)
    return forecast, scheduler, trainer


def test_rescale_one_cycle_anneals_by_the_new_end() -> None:
    from text_recognizer.training.callbacks import rescale_one_cycle

    full, short = one_cycle(100), one_cycle(100)
    for _ in range(10):
        full.optimizer.step()
        full.step()
        short.optimizer.step()
        short.step()
    rescale_one_cycle(short, 50)
    for _ in range(39):
        short.optimizer.step()
        short.step()
    for _ in range(89):
        full.optimizer.step()
        full.step()
    assert short.get_last_lr() == pytest.approx(full.get_last_lr())  # both at the floor
    assert short.get_last_lr()[0] < 1e-5
    short.step()  # step 50: a run of 50 optimizer steps steps its scheduler 50 times
    with pytest.raises(ValueError, match="total steps"):
        short.step()


def test_fit_to_max_time_shortens_the_schedule_and_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forecast, scheduler, trainer = fit_case(limit_s=60.0)
    with caplog.at_level("WARNING", logger="text_recognizer.training.callbacks"):
        advance(forecast, trainer, 10, 1.0)
    # 45 s left at 1 s/step: 90 % of them, 40 steps, after the 10 done
    assert forecast.fitted_steps == 50 and scheduler.total_steps == 50
    assert trainer.fit_loop.epoch_loop.max_steps == 50
    assert "now ends at step 50" in caplog.text
    # a resumed run stops at the same step
    resumed, _, again = forecast_case(limit_s=60.0)
    resumed.load_state_dict(forecast.state_dict())
    resumed.on_train_start(again, None)
    assert again.fit_loop.epoch_loop.max_steps == 50


def test_fit_to_max_time_shortens_again_when_the_run_slows_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forecast, scheduler, trainer = fit_case(limit_s=60.0)
    advance(forecast, trainer, 10, 1.0)
    assert forecast.fitted_steps == 50
    advance(forecast, trainer, 10, 1.0)  # on pace: 25 s for the 30 steps left, 35 s left
    assert forecast.fitted_steps == 50
    with caplog.at_level("WARNING", logger="text_recognizer.training.callbacks"):
        advance(forecast, trainer, 10, 2.0)
    # 40 s for 30 steps since the start; 15 s left: 90 % of them, 10 steps, after the 30 done
    assert forecast.fitted_steps == 40 and scheduler.total_steps == 40
    assert trainer.fit_loop.epoch_loop.max_steps == 40
    assert "slowed to 1.33 s/step" in caplog.text and "now ends at step 40" in caplog.text


def test_fit_to_max_time_gives_steps_back_when_the_run_speeds_up() -> None:
    forecast, scheduler, trainer = fit_case(limit_s=60.0)
    advance(forecast, trainer, 10, 1.0)  # a slow spell: fitted to 50 steps
    assert forecast.fitted_steps == 50
    advance(forecast, trainer, 10, 0.25)
    # 12.5 s for 20 steps: the 30 steps left need 19 s of the 42.5 left; 90 % of them
    # reach 61 more steps, within the configured 100
    assert forecast.fitted_steps == 81 and scheduler.total_steps == 81
    assert trainer.fit_loop.epoch_loop.max_steps == 81
    advance(forecast, trainer, 50, 0.25)  # never beyond the configured length
    assert forecast.fitted_steps <= 100


def test_a_fitted_run_validates_at_its_last_step_before_stopping() -> None:
    """The fitted end falls mid-epoch; Lightning's max_steps stop alone skips validation
    there, so the annealed last steps were never scored or checkpointed as the best."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from text_recognizer.training.callbacks import MaxTimeForecast

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.validated_at: list[int] = []

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
            self.log("val/loss", self.layer(batch[0]).pow(2).mean())

        def on_validation_epoch_end(self) -> None:
            if not self.trainer.sanity_checking:
                self.validated_at.append(self.trainer.global_step)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=2)
    forecast = MaxTimeForecast(fit=True)
    forecast.load_state_dict({"fitted_steps": 7})  # as a resumed fitted run would
    module = Tiny()
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=10,
        limit_val_batches=1,
        callbacks=[forecast],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, data, data)
    assert trainer.global_step == 7
    assert module.validated_at == [7]


def test_without_a_progress_bar_each_validation_is_one_info_line(
    tiny_chars: str, caplog: pytest.LogCaptureFixture
) -> None:
    """In a log file (no terminal, so no bar) -v showed nothing between start and end."""
    import logging

    caplog.set_level(logging.INFO, logger="text_recognizer")
    config = tiny_config(tiny_chars, trainer={"max_epochs": 2, "num_threads": 1})
    run_experiment(parse_config(config))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2, step 12", "epoch 2/2, step 24"]
    assert all("val/acc" in line and "best val/acc" in line for line in lines)


@pytest.mark.parametrize(("workers", "warned"), [(0, False), (1, True)])
def test_resuming_lines_augmented_in_loader_workers_warns_that_it_is_not_exact(
    workers: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers draw the augmentation's random numbers from their own generators, which no
    checkpoint holds: resumed at an epoch's end, a run's weights differed from an unbroken
    run's by up to 1.19 with one worker (0.0 with none), and nothing said so."""
    from types import SimpleNamespace

    from tests.training.fakes import TinyLines
    from text_recognizer.training.callbacks import DataPositionCallback

    datamodule = TinyLines(width_stretch=[0.8, 1.25], num_workers=workers)
    trainer = SimpleNamespace(datamodule=datamodule, world_size=1)
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        DataPositionCallback().on_load_checkpoint(
            trainer,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            {"data_position": {"epoch": 1, "batches": 0}},
        )
    assert ("loader workers" in caplog.text) == warned
