"""LightningModules by config name: they hold loss, metrics and decoding only."""

from lightning import LightningModule

from text_recognizer.models.base import RecognitionModule
from text_recognizer.models.classifier import CharClassifier
from text_recognizer.models.ctc import CtcLineModel
from text_recognizer.models.seq2seq import Seq2SeqLineModel
from text_recognizer.registry import Registry

MODELS: Registry[LightningModule] = Registry("model", set_elsewhere={"network": "set network.name"})
MODELS.register("classifier")(CharClassifier)
MODELS.register("ctc")(CtcLineModel)
MODELS.register("seq2seq")(Seq2SeqLineModel)

__all__ = ["MODELS", "CharClassifier", "CtcLineModel", "RecognitionModule", "Seq2SeqLineModel"]
