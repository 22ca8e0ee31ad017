"""The experiment schema: YAML -> OmegaConf merge + dotted overrides -> pydantic validation.

One typed schema for every experiment. Every error names the key, the bad value and
what is allowed, before any data is built or any model trained.
"""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from text_recognizer.errors import ConfigError

#: A run folder's name part: one folder (no "/" or ".."), and no shell quoting needed.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$"
#: What each model logs on the validation split (the names a monitor may watch).
VALIDATION_METRICS = {
    "classifier": ("val/loss", "val/acc"),
    "ctc": ("val/loss", "val/cer", "val/wer"),
    "seq2seq": ("val/loss", "val/cer", "val/wer"),
}
#: What each model logs while training (``train/loss`` per step and per epoch).
TRAINING_METRICS = {
    "classifier": ("train/loss", "train/loss_step", "train/loss_epoch", "train/acc"),
    "ctc": ("train/loss", "train/loss_step", "train/loss_epoch"),
    "seq2seq": ("train/loss", "train/loss_step", "train/loss_epoch"),
}


def _takes_number_not_bool(annotation: Any) -> bool:
    kinds = get_args(annotation) or (annotation,)
    return bool not in kinds and any(kind in (int, float) for kind in kinds)


class Section(BaseModel):
    """A config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_true_or_false_for_numbers(cls, data: Any) -> Any:
        """pydantic takes true and false for the numbers 1 and 0, and YAML reads yes, no, on
        and off as true and false: ``batch_size: yes`` trained in batches of one."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if isinstance(value, bool) and field and _takes_number_not_bool(field.annotation):
                    raise ValueError(
                        f"{name} = {str(value).lower()}: give a number, not true or false "
                        "(YAML reads yes, no, on and off as true and false too)"
                    )
        return data


class DataConfig(Section):
    """Which dataset, its constructor arguments, and how it is batched."""

    name: str = Field(description="dataset name (`text-recognizer data list`)")
    args: dict[str, Any] = Field(default_factory=dict, description="dataset constructor arguments")
    batch_size: int = Field(128, gt=0)
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (spawned)")


class NetworkConfig(Section):
    name: str = Field(description="network name: mlp, lenet, line_cnn, crnn, transformer, ...")
    args: dict[str, Any] = Field(default_factory=dict, description="network constructor arguments")


class ModelConfig(Section):
    name: Literal["classifier", "ctc", "seq2seq"] = Field(
        "classifier",
        description="LightningModule: classifier (characters), ctc or seq2seq (lines)",
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="model arguments (e.g. decoding)"
    )


class OptimizerConfig(Section):
    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, description="SGD only")


class SchedulerConfig(Section):
    name: Literal["none", "onecycle", "cyclic", "cosine", "step", "multistep", "plateau"] = Field(
        "none", description="onecycle/cyclic step per batch; the others per epoch"
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="passed to the torch.optim.lr_scheduler class"
    )
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up before cosine/step/multistep")
    monitor: str = Field(
        "val/loss",
        description="metric ReduceLROnPlateau watches (its args.mode: max for an accuracy, "
        "min for the others, unless given)",
    )


def best_direction(metric: str) -> Literal["min", "max"]:
    """Whether ``metric`` is better high (an accuracy) or low (a loss, CER, WER): the mode a
    monitor gets when its config gives none."""
    return "max" if metric.rsplit("/", 1)[-1].startswith("acc") else "min"


class _Monitor(Section):
    """A section that watches a metric: ``mode`` defaults to the metric's direction, so
    ``monitor: val/acc`` alone keeps the most accurate checkpoint, not the least."""

    @model_validator(mode="before")
    @classmethod
    def _mode_from_metric(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") is None:
            monitor = data.get("monitor", cls.model_fields["monitor"].default)
            if isinstance(monitor, str):
                return {**data, "mode": best_direction(monitor)}
        return data


MODE_DESCRIPTION = "default: max for an accuracy (val/acc), min for a loss, CER or WER"


class EarlyStoppingConfig(_Monitor):
    monitor: str = "val/loss"
    mode: Literal["min", "max"] = Field("min", description=MODE_DESCRIPTION)
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0)


class CheckpointConfig(_Monitor):
    monitor: str = "val/loss"
    mode: Literal["min", "max"] = Field("min", description=MODE_DESCRIPTION)
    last_every_minutes: float | None = Field(
        10.0,
        ge=0,
        description="also write last.ckpt every this many minutes of training, in the "
        "middle of an epoch too, so a killed run resumes where it stopped and loses at most "
        "that much; null: at epoch ends only",
    )


class SwaConfig(Section):
    lr: float = Field(1e-4, gt=0)
    start_epoch: float | int = Field(0.8, description="fraction of max_epochs, or an epoch index")


class EmaConfig(Section):
    """An exponential moving average of the weights, used for validation, checkpoints and export."""

    decay: float = Field(
        0.999, gt=0, lt=1, description="weight of the old average per step (horizon 1/(1-decay))"
    )
    start_step: int = Field(0, ge=0, description="first step (0-based) that updates the average")


class CallbacksConfig(Section):
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    lr_monitor: bool = True
    progress_bar: Literal["auto", "rich", "tqdm", "none"] = Field(
        "auto",
        description="auto: tqdm on a terminal, none otherwise; without a bar, -v logs a line "
        "per validation",
    )
    swa: SwaConfig | None = None
    ema: EmaConfig | None = None
    fit_to_max_time: bool = Field(
        False,
        description="when trainer.max_time would stop the run before a onecycle schedule "
        "ends, shorten the schedule and the run to end by then (projected every 300 steps)",
    )

    @model_validator(mode="after")
    def _one_weight_average(self) -> CallbacksConfig:
        if self.swa is not None and self.ema is not None:
            raise ValueError("swa and ema both average the weights: set one of them to null")
        return self


class TrainerConfig(Section):
    """Lightning Trainer settings (a subset; the names are Lightning's)."""

    max_epochs: int = Field(10, ge=1)
    max_steps: int = Field(-1, description="stop after this many steps; -1: no limit")
    max_time: str | None = Field(None, description='wall-time limit "DD:HH:MM:SS"')
    accelerator: str = "auto"
    devices: int | str = Field(1, description='how many (-1: all), or which ("0,1"), or auto')
    strategy: str = "auto"
    num_nodes: int = Field(1, ge=1)
    precision: Literal["auto", "32-true", "32", "bf16-mixed", "16-mixed", "64-true"] = Field(
        "32-true",
        description="bf16-mixed: bfloat16 autocast, 1.2-2.2x faster training on AVX512-BF16 "
        "CPUs and >10x slower on CPUs without bfloat16 instructions; auto: bf16-mixed where "
        "the CPU or GPU has them, else 32-true",
    )
    deterministic: bool = True
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = Field(1, ge=1)
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    limit_test_batches: int | float = 1.0
    val_check_interval: int | float = 1.0
    log_every_n_steps: int = Field(50, ge=1)
    num_threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU")

    @field_validator("max_time", mode="before")
    @classmethod
    def _max_time_as_written(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads 1:00:00:00 (no leading zero) as a base-60 number.
            raise ValueError(
                f'a number ({value}); write "DD:HH:MM:SS" with two-digit days (01:00:00:00) '
                "or in quotes: YAML reads an unquoted 1:00:00:00 as a number in base 60"
            )
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) != 4 or not all(part.isdigit() for part in parts):
                raise ValueError(f'{value!r}: write "DD:HH:MM:SS", e.g. 00:02:30:00 for 2.5 hours')
            if not any(int(part) for part in parts):
                raise ValueError(f"{value} trains nothing: give a time, or null for no limit")
        return value

    @model_validator(mode="after")
    def _check_counts(self) -> TrainerConfig:
        if isinstance(self.devices, int) and (self.devices == 0 or self.devices < -1):
            raise ValueError(f"devices = {self.devices}: use 1 or more, or -1 for all")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps = {self.max_steps}: use 1 or more, or -1 for no limit")
        if self.limit_train_batches <= 0:
            raise ValueError(
                f"limit_train_batches = {self.limit_train_batches} trains nothing: use a count "
                "of batches (1 or more) or a fraction of the epoch in (0, 1]"
            )
        for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            value = getattr(self, key)
            if value < 0 or (isinstance(value, float) and value > 1):
                raise ValueError(
                    f"{key} = {value}: use a count of batches (a whole number) or a fraction "
                    "of them in [0, 1]"
                )
        interval = self.val_check_interval
        if interval <= 0 or (isinstance(interval, float) and interval > 1):
            raise ValueError(
                f"val_check_interval = {interval}: use a fraction of an epoch in (0, 1] or a "
                "count of training batches (a whole number, 1 or more)"
            )
        if self.gradient_clip_val is not None and self.gradient_clip_val < 0:
            raise ValueError(
                f"gradient_clip_val = {self.gradient_clip_val}: use a norm above 0, or null"
            )
        return self


class InitConfig(Section):
    """Start from trained network weights instead of random ones: fine-tuning."""

    weights: str = Field(
        description="default (the bundled model of the kind being trained), an exported "
        ".onnx (its .json beside it), a .ckpt, or a run folder; the network section must "
        "describe the same network, and the dataset use the same charset and height"
    )
    freeze_batchnorm: bool = Field(
        True,
        description="keep batch norms in eval mode (statistics as trained; their scale and "
        "shift still learn): a small fine-tuning set gives noisy batch statistics. Required "
        "for .onnx weights, whose batch norms are folded into the convolutions",
    )


class WandbConfig(Section):
    project: str = "text-recognizer"
    entity: str | None = None
    prediction_images: int = Field(8, ge=0, description="validation images logged per epoch")


class LoggerConfig(Section):
    tensorboard: bool = True
    wandb: WandbConfig | None = None


class ExperimentConfig(Section):
    """A whole experiment: what to train, on what, how, and where its run goes."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="experiment name: the run folder is runs/<group>/<name>/<time>",
    )
    group: str = Field("default", pattern=NAME_PATTERN)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataConfig
    network: NetworkConfig
    init: InitConfig | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    logger: LoggerConfig = Field(default_factory=LoggerConfig)

    @model_validator(mode="after")
    def _check_swa_start(self) -> ExperimentConfig:
        """Lightning refuses 0 with a traceback, and an epoch past the run never averages:
        with batch norms it then trains an extra epoch, past a one-cycle schedule's end."""
        swa, epochs = self.callbacks.swa, self.trainer.max_epochs
        if swa is not None:
            start = swa.start_epoch
            if (isinstance(start, float) and not 0 <= start <= 1) or (
                isinstance(start, int) and not 1 <= start <= epochs
            ):
                raise ValueError(
                    f"callbacks.swa.start_epoch = {start}: give the epoch averaging starts at, "
                    f"1 to trainer.max_epochs ({epochs}), or a fraction of max_epochs in [0, 1]"
                )
        return self

    @model_validator(mode="after")
    def _check_monitors(self) -> ExperimentConfig:
        """A metric the model does not log would fail only after an epoch of training."""
        logged = VALIDATION_METRICS[self.model.name] + TRAINING_METRICS[self.model.name]
        watched = {
            "callbacks.checkpoint.monitor": self.callbacks.checkpoint.monitor,
            "scheduler.monitor": self.scheduler.monitor
            if self.scheduler.name == "plateau"
            else None,
        }
        if self.callbacks.early_stopping is not None:
            watched["callbacks.early_stopping.monitor"] = self.callbacks.early_stopping.monitor
        for key, metric in watched.items():
            if metric is not None and metric not in logged:
                raise ValueError(
                    f"{key} = {metric!r}: a {self.model.name} model logs {', '.join(logged)}"
                )
            validated = self.trainer.limit_val_batches != 0
            if metric is not None and metric.startswith("val/") and not validated:
                raise ValueError(
                    f"trainer.limit_val_batches = 0 validates nothing, and {key} watches "
                    f"{metric}: validate on some batches, or watch a train/ metric"
                )
        return self


def _section_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The schema class that owns the key at ``loc`` (to list its allowed keys)."""
    model: type[BaseModel] = ExperimentConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return model
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return model
        model = nested[0]
    return model


def format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"] if not str(p).startswith("function-")]
        key = ".".join(loc) or "<root>"
        if item["type"] == "extra_forbidden":
            section = _section_at(item["loc"][:-1])
            allowed = ", ".join(section.model_fields) if section else "?"
            lines.append(f"unknown key {key!r}; allowed here: {allowed}")
        elif item["type"] == "missing":
            lines.append(f"missing required key {key!r}")
        elif isinstance(item.get("input"), dict):  # a section's own check: its keys together
            where = "the config" if key == "<root>" else f"section {key!r}"
            lines.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"key {key!r} = {item.get('input')!r} is invalid: {message}")
    return "invalid experiment config:\n  " + "\n  ".join(lines)


def parse_config(raw: dict[str, Any]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


#: Top-level keys that only hold YAML anchors for aliases elsewhere in the file (as
#: docker-compose's ``x-`` and GitLab CI's ``.`` keys): read, then left out.
ANCHOR_KEY_PREFIXES = ("x-", ".")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error:
    PyYAML keeps the last silently, so a second ``lr:`` lower down would win unseen.
    It also remembers which keys' values define an anchor (``key: &name``), which PyYAML
    forgets."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.anchor_under: dict[int, str] = {}  # id(key node) -> the anchor its value defines

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        anchor = None if isinstance(event, yaml.AliasEvent) else getattr(event, "anchor", None)
        if anchor is not None and isinstance(index, yaml.Node):  # a mapping's value
            self.anchor_under[id(index)] = anchor
        return super().compose_node(parent, index)


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may repeat keys on purpose
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:  # an unhashable key: construct_mapping says so itself
            continue
        if first is not key_node:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} is given twice in one mapping (first on line "
                f"{first.start_mark.line + 1}); keep one",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def read_yaml(path: Path, keys: Iterable[str] | None = None) -> Any:
    """A YAML file's contents (``{}`` when empty); not YAML or a key given twice is a
    ``ConfigError`` with the line.

    Top-level keys starting with ``x-`` or ``.`` hold anchors for aliases elsewhere
    (``x-common: &common {...}``) and are left out. Given the file's ``keys``, another
    top-level key that holds an anchor is refused saying so, rather than as an unknown key.
    """
    try:
        with Path(path).open(encoding="utf-8") as stream:  # named, so errors give the file
            loader = _UniqueKeyLoader(stream)
            try:
                node = loader.get_single_node()
                loaded = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    if found := _colon_without_space(loaded):
        raise ConfigError(f"{path}: {_no_space_message(found)}")
    if not isinstance(loaded, dict) or not isinstance(node, yaml.MappingNode):
        return loaded or {}
    if keys is not None:
        known = list(keys)
        for key_node, _ in node.value:
            key, anchor = key_node.value, loader.anchor_under.get(id(key_node))
            holder = isinstance(key, str) and key.startswith(ANCHOR_KEY_PREFIXES)
            if anchor is not None and key not in known and not holder:
                raise ConfigError(
                    f"{path}, line {key_node.start_mark.line + 1}: {key!r} is not one of "
                    f"this file's keys ({', '.join(known)}); a top-level key that only holds a "
                    f"YAML anchor must start with x- or . to be left out: x-{key}: &{anchor} ..."
                )
    return {
        key: value
        for key, value in loaded.items()
        if not (isinstance(key, str) and key.startswith(ANCHOR_KEY_PREFIXES))
    }


def no_such_file(what: str, path: Path) -> ConfigError:
    """A config file that is not there. The docs' ``configs/...`` paths are the repository's
    folder, which an installed package does not hold: said where no ``./configs`` is."""
    hint = ""
    if Path(path).parts[:1] == ("configs",) and not Path("configs").is_dir():
        hint = (
            " (the configs/ the docs name is the repository's folder, not part of the "
            "installed package: run from a checkout, or give the path of a copy)"
        )
    return ConfigError(f"{what} {path} does not exist{hint}")


def load_config(path: Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment, apply ``a.b=c`` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise no_such_file("experiment config", path)
    loaded = read_yaml(path, ExperimentConfig.model_fields)
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path} holds a {type(loaded).__name__}, not a mapping of keys (name:, data:, "
            "network:, ...); see `text-recognizer config schema`"
        )
    for key, command in (("experiments", "experiments plan/run"), ("search", "sweep")):
        if key in loaded and "network" not in loaded:
            raise ConfigError(
                f"{path} is not an experiment but a {'group' if key == 'experiments' else 'sweep'}"
                f" file (it has '{key}'): use `text-recognizer {command} {path}`"
            )
    return parse_config(apply_overrides(_resolved(OmegaConf.create(loaded), path), overrides))


def _colon_without_space(value: Any) -> str | None:
    """A key in ``value`` that YAML made of ``key:value`` written without a space after the
    colon (``{num_train:512}`` is the key ``num_train:512`` with no value), if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None and isinstance(key, str) and re.fullmatch(r"[\w.-]+:[^\s:]\S*", key):
                return key
            if found := _colon_without_space(item):
                return found
    elif isinstance(value, list):
        for item in value:
            if found := _colon_without_space(item):
                return found
    return None


def _no_space_message(key: str) -> str:
    name, value = key.split(":", 1)
    return (
        f"YAML reads {{{key}}} as the key {key!r} with no value: write a space after the "
        f"colon, {{{name}: {value}}}"
    )


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Merge ``--set a.b=c`` dotted overrides (values parsed as YAML) into ``raw``."""
    for item in overrides:
        key, _, text = item.partition("=")
        if "=" not in item or not all(key.split(".")):
            raise ConfigError(f"override {item!r} must look like key.path=value")
        with contextlib.suppress(yaml.YAMLError):  # reported below, with OmegaConf's words
            if found := _colon_without_space(yaml.safe_load(text)):
                raise ConfigError(f"override {item!r}: {_no_space_message(found)}")
    try:
        merged = OmegaConf.merge(OmegaConf.create(raw), OmegaConf.from_dotlist(list(overrides)))
    except (OmegaConfBaseException, yaml.YAMLError) as error:
        raise ConfigError(f"cannot apply overrides {list(overrides)}: {error}") from None
    except TypeError:  # OmegaConf merges a list and a mapping into one another: it cannot
        raise _mismatched_override(raw, overrides) from None
    return _resolved(merged, "the overrides")


def _resolved(config: Any, where: object) -> dict[str, Any]:
    """``config`` as plain data, its ``${...}`` interpolations filled in; one that names
    nothing (``${HOME}`` for the environment variable) is a ``ConfigError``, not
    OmegaConf's traceback."""
    try:
        return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        reason = str(error).splitlines()[0]
        raise ConfigError(
            f"{where}: key {key!r} cannot be resolved: {reason}. ${{a.b}} stands for the "
            "value of the config's key a.b and ${oc.env:NAME} for the environment variable "
            "NAME; a $ without braces is kept as written"
        ) from None


def _mismatched_override(raw: dict[str, Any], overrides: Sequence[str]) -> ConfigError:
    """Which override gives a list where the config has a mapping, or the other way round."""
    for item in overrides:
        key = item.split("=", 1)[0]
        try:
            OmegaConf.merge(OmegaConf.create(raw), OmegaConf.from_dotlist([item]))
        except TypeError:
            if element := _list_element(raw, item):
                return ConfigError(f"cannot apply override {item!r}: {element}")
            found = OmegaConf.select(OmegaConf.create(raw), key)
            has = "a section of keys" if OmegaConf.is_dict(found) else "a list"
            how = f"set the keys inside it ({key}.KEY=VALUE)" if has != "a list" else "give a list"
            return ConfigError(f"cannot apply override {item!r}: {key} is {has} here; {how}")
        except (OmegaConfBaseException, yaml.YAMLError):
            continue
    return ConfigError(f"cannot apply overrides {list(overrides)}: a list and a mapping clash")


def _list_element(raw: dict[str, Any], item: str) -> str | None:
    """For ``a.list.0=4`` or ``a.list[0]=4``: that a list's items cannot be set one by one,
    and the whole list to give instead."""
    key, _, text = item.partition("=")
    parts = key.replace("[", ".").replace("]", "").split(".")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:depth])
        found = OmegaConf.select(OmegaConf.create(raw), prefix)
        if not OmegaConf.is_list(found):
            continue
        values = OmegaConf.to_container(found)
        index = parts[depth]
        if depth == len(parts) - 1 and index.isdigit() and int(index) < len(values):  # type: ignore[arg-type]
            with contextlib.suppress(yaml.YAMLError):
                values[int(index)] = yaml.safe_load(text)  # type: ignore[index]
        listed = yaml.safe_dump(values, default_flow_style=True).strip()
        return f"{prefix} is a list, set as a whole: {prefix}={listed}"
    return None


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _type_name(annotation: Any) -> str:
    """A field's type for the reference: a choice lists its values (``'min'` or `'max'``),
    other types are named as written (``float | None``), sections by their class name."""
    if get_origin(annotation) is Literal:
        values = [f"`{value!r}`" for value in get_args(annotation)]
        return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
    if annotation is type(None):
        return "`None`"
    if isinstance(annotation, type) and not get_args(annotation):
        return f"`{annotation.__name__}`"
    if isinstance(annotation, types.UnionType):
        return "`" + " | ".join(_type_name(part).strip("`") for part in get_args(annotation)) + "`"
    return f"`{annotation}`".replace("typing.", "")


def schema_reference() -> str:
    """A Markdown reference of every key, its type, default and description."""
    out = ["# Experiment config reference", ""]

    def walk(model: type[BaseModel], prefix: str) -> None:
        out.append(f"## `{prefix or '<root>'}`")
        if model.__doc__:
            out.append(model.__doc__.strip().splitlines()[0])
        out.append("")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        nested: list[tuple[str, type[BaseModel]]] = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            type_name = _type_name(annotation)
            default = (
                "required"
                if field.is_required()
                else repr(field.get_default(call_default_factory=True))
            )
            if isinstance(field.get_default(call_default_factory=True), BaseModel):
                default = "see below"
            out.append(f"| `{name}` | {type_name} | {default} | {field.description or ''} |")
            for candidate in [annotation, *getattr(annotation, "__args__", ())]:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    nested.append((f"{prefix}.{name}" if prefix else name, candidate))
        out.append("")
        for key, sub in nested:
            walk(sub, key)

    walk(ExperimentConfig, "")
    return "\n".join(out)
