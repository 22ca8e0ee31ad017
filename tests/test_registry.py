from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from text_recognizer.errors import ConfigError
from text_recognizer.networks import NETWORKS


def test_build_by_name_with_defaults() -> None:
    net = NETWORKS.build("lenet", {}, num_classes=10)
    assert net.classifier[-1].out_features == 10


def test_unknown_name_lists_allowed() -> None:
    with pytest.raises(ConfigError, match=r"unknown network 'resnet9000'.*lenet"):
        NETWORKS.build("resnet9000")


def test_unknown_argument_named() -> None:
    with pytest.raises(ConfigError, match=r"no argument 'widht'.*allowed: .*dropout"):
        NETWORKS.build("lenet", {"widht": 3})


def test_an_argument_to_what_takes_none_says_so() -> None:
    from text_recognizer.models import MODELS

    # Everything the classifier takes is filled in by the training code: the list was empty.
    injected = {name: None for name in MODELS.parameters("classifier")}
    with pytest.raises(
        ConfigError, match=r"model 'classifier' has no argument 'beam'; it takes none$"
    ):
        MODELS.build("classifier", {"beam": 3}, **injected)


def test_bad_value_named_and_strings_coerced() -> None:
    with pytest.raises(ConfigError, match="'dropout' = 'lots'"):
        NETWORKS.build("lenet", {"dropout": "lots"})
    net = NETWORKS.build("mlp", {"dropout": "0.5"}, num_classes=5)
    assert net.layers[3].p == 0.5


def test_a_value_the_code_sets_given_among_the_arguments_says_where_it_is_set() -> None:
    """``--data-arg seed=11`` (synthetic_paragraphs' docs list ``seed``) or
    ``data.args.batch_size`` crashed: the constructor got two values for one parameter."""
    from text_recognizer.data import DATASETS

    with pytest.raises(ConfigError, match=r"'seed' is not given among .*evaluate --seed\)$"):
        DATASETS.build("synthetic_paragraphs", {"seed": 11}, seed=0, batch_size=64)
    with pytest.raises(ConfigError, match=r"'batch_size' .*: set data\.batch_size in a config"):
        DATASETS.build("synthetic_lines", {"batch_size": 3}, seed=0, batch_size=64)
    assert DATASETS.build("synthetic_lines", {"seed": 3}).seed == 3  # not set by the code here


def test_a_bad_item_of_a_value_of_several_types_is_named_as_the_config_writes_it() -> None:
    """The first union member's error was shown: "'lines_per_page.int' = [2, 'x'] is
    invalid: Input should be a valid integer", for a list that may be one."""
    from text_recognizer.data import DATASETS

    with pytest.raises(
        ConfigError, match=r"argument 'lines_per_page\.1' = 'x' is invalid: .*valid integer"
    ):
        DATASETS.build("synthetic_paragraphs", {"lines_per_page": [2, "x"]})
    with pytest.raises(ConfigError, match=r"argument 'spacing' = 'abc' is invalid: .*number"):
        DATASETS.build("synthetic_paragraphs", {"spacing": "abc"})
    with pytest.raises(ConfigError, match=r"argument 'width_stretch\.1' = 'abc' is invalid"):
        DATASETS.build("synthetic_lines", {"width_stretch": [0.6, "abc"]})


def test_a_network_of_ones_own_trains_from_a_config_and_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What docs/models.md ("Your own network") shows: registered from Python, named in a
    YAML config, trained, read back; opened where it is not registered, the error says
    how to register it, where it once only listed the built-in networks."""
    from tests.training.fakes import TinyChars
    from text_recognizer.data import DATASETS
    from text_recognizer.recognizer import Recognizer
    from text_recognizer.training.run import train_from_config

    monkeypatch.setattr(DATASETS, "_entries", {**DATASETS._entries, "tiny_chars": TinyChars})
    monkeypatch.setattr(NETWORKS, "_entries", dict(NETWORKS._entries))

    @NETWORKS.register("my_mlp")
    class MyMlp(nn.Module):
        def __init__(self, num_classes: int, input_size: int = 28, hidden: int = 64) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Flatten(),
                nn.Linear(input_size**2, hidden),
                nn.ReLU(),
                nn.Linear(hidden, num_classes),
            )

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.layers(images)

    config = tmp_path / "mine.yaml"
    config.write_text(
        "name: mine\ngroup: tests\n"
        "data: {name: tiny_chars, args: {size: 256}, batch_size: 16}\n"
        "network: {name: my_mlp, args: {hidden: 32}}\n"
        "optimizer: {lr: 1.0e-2}\n"
        "callbacks: {progress_bar: none}\n"
        "trainer: {max_epochs: 2, num_threads: 1}\n"
    )
    summary = train_from_config(config)
    assert summary["test"]["test/acc"] > 0.9
    bar = np.zeros((28, 28), np.uint8)
    bar[9:13, 4:24] = 255
    run = Path(summary["run_dir"])
    assert Recognizer.from_pretrained(run).recognize(bar, kind="char").text in "ABCD"
    del NETWORKS._entries["my_mlp"]  # another process: one that has not registered it
    with pytest.raises(ConfigError, match=r"unknown network 'my_mlp'.*NETWORKS\.register\(name\)"):
        Recognizer.from_pretrained(run)
