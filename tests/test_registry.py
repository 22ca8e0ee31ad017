import pytest

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


def test_bad_value_named_and_strings_coerced() -> None:
    with pytest.raises(ConfigError, match="'dropout' = 'lots'"):
        NETWORKS.build("lenet", {"dropout": "lots"})
    net = NETWORKS.build("mlp", {"dropout": "0.5"}, num_classes=5)
    assert net.layers[3].p == 0.5
