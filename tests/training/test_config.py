import re
from pathlib import Path

import pytest

from text_recognizer.errors import ConfigError
from text_recognizer.training.config import load_config, parse_config, read_yaml, schema_reference
from text_recognizer.training.experiments import load_group
from text_recognizer.training.sweep import load_sweep

MINIMAL = "name: x\ndata: {name: synthetic_chars}\nnetwork: {name: lenet}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.optimizer.name == "adamw"
    assert config.callbacks.checkpoint.monitor == "val/loss"
    assert config.group == "default"


def test_dotted_overrides_are_typed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), ["optimizer.lr=3e-4", "trainer.max_epochs=7"])
    assert config.optimizer.lr == pytest.approx(3e-4)
    assert config.trainer.max_epochs == 7


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer.lrr'; allowed here: name, lr"):
        load_config(write(tmp_path, MINIMAL), ["optimizer.lrr=1"])


def test_bad_value_names_key_value_and_allowed(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"key 'optimizer.name' = 'adamax'.*'adam', 'adamw' or 'sgd'"
    ):
        load_config(write(tmp_path, MINIMAL + "optimizer: {name: adamax}\n"))
    with pytest.raises(
        ConfigError, match=r"key 'optimizer.lr' = -1.0 is invalid: .*greater than 0"
    ):
        load_config(write(tmp_path, MINIMAL), ["optimizer.lr=-1.0"])


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"missing required key 'network'"):
        parse_config({"name": "x", "data": {"name": "emnist"}})


def test_a_shipped_config_named_outside_the_checkout_says_where_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package holds no configs/: the docs' paths work from a checkout only."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"configs/ the docs name is the repository's folder"):
        load_config(Path("configs/chars_lenet.yaml"))
    with pytest.raises(ConfigError, match=r"experiment group configs/chars_group\.yaml .*checkout"):
        load_group(Path("configs/chars_group.yaml"))
    (tmp_path / "configs").mkdir()
    with pytest.raises(ConfigError, match=r"does not exist$"):  # a checkout: no hint
        load_config(Path("configs/chars_lenet_typo.yaml"))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed"))
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        load_config(write(tmp_path, MINIMAL), ["optimizer.lr"])


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    # PyYAML keeps the last of two equal keys without a word: a forgotten `lr:` lower
    # down would silently win over the one being edited.
    twice = MINIMAL + "optimizer:\n  lr: 1.0e-3\n  weight_decay: 0\n  lr: 3.0e-4\n"
    with pytest.raises(ConfigError, match=r"key 'lr' is given twice .*first on line \d+.*keep one"):
        load_config(write(tmp_path, twice))
    # The same key in two different mappings and YAML merge keys stay allowed.
    merged = MINIMAL + "optimizer: &opt\n  lr: 1.0e-3\nextra: {<<: *opt, lr: 2.0e-3}\n"
    assert read_yaml(write(tmp_path, merged))["extra"] == {"lr": 2.0e-3}
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(tmp_path / "latin1.yaml")


def test_schema_reference_documents_every_section() -> None:
    text = schema_reference()
    for section in (
        "`data`",
        "`optimizer`",
        "`callbacks.early_stopping`",
        "`trainer`",
        "`logger.wandb`",
    ):
        assert section in text
    assert "| `lr` | `float` | 0.001 |" in text
    # A choice shows what may be chosen; a section's type is named as its heading names it.
    assert "| `name` | `'adam'`, `'adamw'` or `'sgd'` | 'adamw' |" in text
    assert "| `mode` | `'min'` or `'max'` | 'min' |" in text
    assert "| `init` | `InitConfig | None` | None |" in text


def test_shipped_configs_are_valid() -> None:
    configs = sorted(Path("configs").glob("*.yaml"))
    assert configs, "no configs shipped"
    for path in configs:
        if "group" in path.stem or "sweep" in path.stem:
            continue
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_time=banana", r"trainer\.max_time"),
        ("trainer.devices=0", "devices = 0: use 1 or more"),
        ("seed=-1", "'seed' = -1"),
        ("trainer.limit_train_batches=0", "trains nothing"),
        ("name=../../etc", "'name' = '../../etc'"),
        ("group=a/b", "'group' = 'a/b'"),
        ("callbacks.checkpoint.monitor=val/cer", "a classifier model logs val/loss, val/acc"),
        ("callbacks.early_stopping.monitor=val/accuracy", "logs val/loss, val/acc"),
        ("network.args.channels=[16", "cannot apply overrides"),
        # Lightning refused these with a traceback, ZeroDivisionError among them, or (the
        # monitor with no validation, a negative clip) after an epoch or silently.
        ("trainer.max_steps=-5", "max_steps = -5: use 1 or more, or -1"),
        ("trainer.max_steps=0", "max_steps = 0: use 1 or more"),
        ("trainer.limit_train_batches=1.5", "limit_train_batches = 1.5: use a count"),
        ("trainer.limit_val_batches=-1", "limit_val_batches = -1: use a count"),
        ("trainer.limit_val_batches=0", "validates nothing, and callbacks.checkpoint.monitor"),
        ("trainer.val_check_interval=0", "val_check_interval = 0: use a fraction"),
        ("trainer.val_check_interval=2.0", "val_check_interval = 2.0: use a fraction"),
        ("trainer.gradient_clip_val=-1", "gradient_clip_val = -1.0: use a norm above 0"),
        # max_time 0 crashed after "training" with "cannot write the run: Checkpoint file
        # not found ... free space"; 1:00:00:00 is YAML's base-60 number 216000.
        ("trainer.max_time=00:00:00:00", "trains nothing: give a time, or null"),
        ("trainer.max_time=1:00:00:00", "a number .216000.; write .DD:HH:MM:SS. with two-digit"),
        ("trainer.max_time=45min", "'45min': write .DD:HH:MM:SS., e.g. 00:02:30:00"),
        # pydantic took true as 1: a batch of one.
        ("data.batch_size=yes", "batch_size = true: give a number, not true or false"),
        ("seed=true", "seed = true: give a number"),
        # A list over a section was OmegaConf's TypeError traceback.
        ("data=[1, 2]", r"override 'data=\[1, 2\]': data is a section of keys here; set the"),
        ("=3", "must look like key.path=value"),
        # Lightning's traceback; past the run's end an extra epoch crashed the schedule.
        ("callbacks.swa.start_epoch=0", r"swa.start_epoch = 0: give the epoch averaging starts"),
        ("callbacks.swa.start_epoch=11", r"start_epoch = 11: .*1 to trainer.max_epochs \(10\)"),
        ("callbacks.swa.start_epoch=1.5", r"start_epoch = 1.5: .*a fraction of max_epochs"),
        ("a..b=3", "must look like key.path=value"),
    ],
)
def test_values_lightning_or_numpy_would_fail_on_late_are_refused_up_front(
    tmp_path: Path, override: str, message: str
) -> None:
    """Each of these once failed with a traceback, some after a whole epoch of training."""
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, MINIMAL), [override])


def test_a_list_where_the_config_has_a_list_merges_but_a_mapping_is_refused(
    tmp_path: Path,
) -> None:
    config = MINIMAL.replace("{name: lenet}", "{name: lenet, args: {channels: [8, 16]}}")
    path = write(tmp_path, config)
    assert load_config(path, ["network.args.channels=[4, 8]"]).network.args["channels"] == [4, 8]
    with pytest.raises(ConfigError, match=r"network\.args\.channels is a list here; give a list"):
        load_config(path, ["network.args.channels={a: 1}"])


def test_well_formed_max_times_and_yaml_anchors_are_read(tmp_path: Path) -> None:
    text = MINIMAL + (
        "trainer: {max_time: 01:00:00:00}\n"
        "callbacks:\n  checkpoint: &watch {monitor: val/acc, mode: max}\n"
        "  early_stopping: {<<: *watch, patience: 2}\n"
    )
    config = load_config(write(tmp_path, text), ["trainer.max_time='1:00:00:00'"])
    assert config.trainer.max_time == "1:00:00:00"
    assert config.callbacks.early_stopping is not None
    assert config.callbacks.early_stopping.monitor == "val/acc"
    assert config.callbacks.early_stopping.patience == 2


def test_a_file_that_is_no_experiment_says_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds a list, not a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="experiments plan/run"):
        load_config(Path("configs/chars_group.yaml"))
    with pytest.raises(ConfigError, match="text-recognizer sweep"):
        load_config(Path("configs/chars_sweep.yaml"))


def test_top_level_keys_starting_with_x_or_dot_hold_anchors(tmp_path: Path) -> None:
    """A key that only held an anchor (`defaults: &d {...}`) was refused as an unknown key,
    so a file could share a block between sections only by anchoring a real one."""
    text = (
        "x-watch: &watch {monitor: val/acc, mode: max}\n"
        ".fast: &fast {lr: 3.0e-3}\n" + MINIMAL + "optimizer: {<<: *fast, name: sgd}\n"
        "callbacks:\n  checkpoint: *watch\n  early_stopping: {<<: *watch, patience: 2}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.optimizer.lr == pytest.approx(3e-3) and config.optimizer.name == "sgd"
    assert config.callbacks.checkpoint.monitor == "val/acc"
    assert config.callbacks.early_stopping is not None
    assert config.callbacks.early_stopping.mode == "max"
    # Without the prefix: the key is named with its line and how to keep it.
    with pytest.raises(
        ConfigError, match=r"line 1: 'defaults' is not one of this file's keys .*x-defaults: &d"
    ):
        load_config(write(tmp_path, "defaults: &d {lr: 1.0}\n" + MINIMAL + "optimizer: *d\n"))
    # Group and sweep files follow the same rule.
    (tmp_path / "base.yaml").write_text(MINIMAL)
    group = tmp_path / "group.yaml"
    group.write_text(
        "x-short: &short {trainer.max_epochs: 1}\ngroup: g\nbase: base.yaml\n"
        "experiments:\n  - {name: a, set: *short}\n"
    )
    assert load_group(group).experiments[0].set == {"trainer.max_epochs": 1}
    group.write_text(group.read_text().replace("x-short", "short"))
    with pytest.raises(ConfigError, match=r"'short' is not one of this file's keys \(group, base"):
        load_group(group)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "x-range: &range [1.0e-4, 1.0e-2]\nsweep: s\nbase: base.yaml\n"
        "search: {optimizer.lr: {loguniform: *range}}\n"
    )
    assert load_sweep(sweep).search == {"optimizer.lr": {"loguniform": [1e-4, 1e-2]}}
    # An anchored real key stays an ordinary key; an unknown one that only uses an alias is
    # an unknown key, not an anchor holder.
    assert read_yaml(write(tmp_path, "a: &a 1\nb: *a\n")) == {"a": 1, "b": 1}
    aliased = MINIMAL.replace("network: {name: lenet}", "network: &n {name: lenet}\nnet: *n")
    with pytest.raises(ConfigError, match=r"unknown key 'net'; allowed here"):
        load_config(write(tmp_path, aliased))
    # A top-level merge key takes a holder's keys.
    merged = "x-id: &id {name: x, group: g}\n<<: *id\n" + MINIMAL.replace("name: x\n", "")
    assert load_config(write(tmp_path, merged)).group == "g"


def test_interpolations_resolve_and_one_that_names_nothing_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`${HOME}` (a shell's variable, OmegaConf's key) was OmegaConf's traceback."""
    monkeypatch.setenv("LINES_HOME", "/data")
    text = MINIMAL.replace("{name: synthetic_chars}", "{name: synthetic_chars, batch_size: 64}")
    text += "trainer: {log_every_n_steps: '${data.batch_size}'}\n"
    path = write(tmp_path, text)
    config = load_config(path, ["data.args.path=${oc.env:LINES_HOME}/lines"])
    assert config.trainer.log_every_n_steps == 64
    assert config.data.args["path"] == "/data/lines"
    assert load_config(path, ["data.args.path=$HOME/x"]).data.args["path"] == "$HOME/x"
    with pytest.raises(
        ConfigError, match=r"overrides: key 'data.args.path' cannot be resolved: .*'HOME'.*oc.env"
    ):
        load_config(path, ["data.args.path=${HOME}/x"])
    with pytest.raises(ConfigError, match=re.escape(f"{path}: key 'optimizer.lr' cannot be")):
        load_config(write(tmp_path, MINIMAL + "optimizer: {lr: '${nope}'}\n"))


@pytest.mark.parametrize(
    ("section", "monitor", "mode"),
    [("checkpoint", "val/acc", "max"), ("checkpoint", "train/acc", "max"),
     ("checkpoint", "val/loss", "min"), ("early_stopping", "val/acc", "max"),
     ("early_stopping", "train/loss", "min")],
)  # fmt: skip
def test_a_monitor_without_a_mode_is_minimised_or_maximised_as_its_metric_needs(
    tmp_path: Path, section: str, monitor: str, mode: str
) -> None:
    """`monitor: val/acc` alone kept the mode min: best.ckpt was the least accurate epoch,
    and early stopping ended the run while the accuracy rose."""
    config = load_config(write(tmp_path, MINIMAL), [f"callbacks.{section}.monitor={monitor}"])
    assert getattr(config.callbacks, section).mode == mode
    given = load_config(
        write(tmp_path, MINIMAL),
        [f"callbacks.{section}.monitor={monitor}", f"callbacks.{section}.mode=min"],
    )
    assert getattr(given.callbacks, section).mode == "min"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("callbacks.checkpoint.monitor=train/losss", "checkpoint.monitor = 'train/losss': a "
         "classifier model logs val/loss, val/acc, train/loss, train/loss_step"),
        ("callbacks.early_stopping.monitor=loss", "early_stopping.monitor = 'loss': a"),
    ],
)  # fmt: skip
def test_a_monitor_the_model_does_not_log_is_refused_before_training(
    tmp_path: Path, override: str, message: str
) -> None:
    """Only val/ names were checked: others failed after the first epoch, early stopping's
    with Lightning's traceback."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, MINIMAL), [override])
    for logged in ("train/loss", "train/loss_epoch", "train/acc", "val/acc"):
        load_config(write(tmp_path, MINIMAL), [override.split("=")[0] + "=" + logged])


def test_a_colon_without_a_space_in_a_flow_mapping_is_named(tmp_path: Path) -> None:
    """`{num_train:512}` is YAML for the key 'num_train:512' with no value: the run failed
    on a dataset argument of that name, which reads like a bug of the dataset."""
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "override 'data.args={num_train:512, num_val: 64}': YAML reads {num_train:512} as "
            "the key 'num_train:512' with no value: write a space after the colon, "
            "{num_train: 512}"
        ),
    ):
        load_config(write(tmp_path, MINIMAL), ["data.args={num_train:512, num_val: 64}"])
    nested = MINIMAL.replace("{name: lenet}", "{name: lenet, args: {channels: [{a:1}]}}")
    with pytest.raises(ConfigError, match=r"exp\.yaml: YAML reads \{a:1\} as the key 'a:1'"):
        load_config(write(tmp_path, nested))
    spaced = load_config(write(tmp_path, MINIMAL), ["data.args={num_train: 512}"])
    assert spaced.data.args == {"num_train": 512}
    assert load_config(write(tmp_path, MINIMAL), ["trainer.max_time=00:01:00:00"])


def test_a_list_item_set_alone_says_to_set_the_whole_list(tmp_path: Path) -> None:
    """`network.args.channels.0=4` said 'network.args.channels.0 is a list here; give a
    list', naming the item as if it were the list."""
    config = MINIMAL.replace("{name: lenet}", "{name: lenet, args: {channels: [8, 16]}}")
    path = write(tmp_path, config)
    for key in ("network.args.channels.0", "network.args.channels[0]"):
        with pytest.raises(
            ConfigError,
            match=re.escape(
                f"cannot apply override '{key}=4': network.args.channels is a list, set as a "
                "whole: network.args.channels=[4, 16]"
            ),
        ):
            load_config(path, [f"{key}=4"])
