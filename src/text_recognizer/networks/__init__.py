"""Plain ``nn.Module`` networks, built by name: ``NETWORKS.build("lenet", {...})``.

Every constructor takes ``num_classes`` (injected from the charset) and has defaults
for everything else, so a config only names what it changes. A network of one's own is
added with ``NETWORKS.register("name")(Network)`` before a config names it
(docs/models.md, "Your own network").
"""

from torch import nn

from text_recognizer.networks.crnn import Crnn
from text_recognizer.networks.lenet import LeNet
from text_recognizer.networks.line_cnn import LineCnn
from text_recognizer.networks.mlp import Mlp
from text_recognizer.networks.transformer import TransformerRecognizer
from text_recognizer.registry import Registry

NETWORKS: Registry[nn.Module] = Registry(
    "network",
    own="a network of your own is registered in Python, in the process that trains, "
    "loads or exports it: NETWORKS.register(name)(YourNetwork) (docs/models.md, "
    "'Your own network'); the command line knows only the networks above",
)
NETWORKS.register("mlp")(Mlp)
NETWORKS.register("lenet")(LeNet)
NETWORKS.register("line_cnn")(LineCnn)
NETWORKS.register("crnn")(Crnn)
NETWORKS.register("transformer")(TransformerRecognizer)

__all__ = ["NETWORKS", "Crnn", "LeNet", "LineCnn", "Mlp", "TransformerRecognizer"]
