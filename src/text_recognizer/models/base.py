"""What every text-recognizer LightningModule shares: its network, charset and optimiser.

Everything needed to rebuild the module (network name and arguments, charset tokens,
optimiser and schedule) is saved as hyperparameters, so ``load_from_checkpoint`` works
with no config at hand and a model always decodes with the charset it was trained on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import torch
from torchmetrics.text import CharErrorRate as _TorchmetricsCer
from torchmetrics.text import WordErrorRate as _TorchmetricsWer

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.errors import ConfigError
from text_recognizer.metrics import char_errors, word_errors
from text_recognizer.networks import NETWORKS
from text_recognizer.training.config import OptimizerConfig, SchedulerConfig
from text_recognizer.training.optim import build_optimizer, build_scheduler


def _as_list(texts: str | list[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else texts


class CharErrorRate(_TorchmetricsCer):
    """torchmetrics' ``CharErrorRate`` (same states, sync and compute) with a fast update."""

    errors: torch.Tensor
    total: torch.Tensor

    def update(self, preds: str | list[str], target: str | list[str]) -> None:
        errors, total = char_errors(_as_list(preds), _as_list(target))
        self.errors += errors
        self.total += total


class WordErrorRate(_TorchmetricsWer):
    """torchmetrics' ``WordErrorRate`` (same states, sync and compute) with a fast update."""

    errors: torch.Tensor
    total: torch.Tensor

    def update(self, preds: str | list[str], target: str | list[str]) -> None:
        errors, total = word_errors(_as_list(preds), _as_list(target))
        self.errors += errors
        self.total += total


def _scoring_every_token(network: str, network_args: dict[str, Any], tokens: int) -> dict[str, Any]:
    """``network_args`` with ``num_classes`` filled in from the charset where the network
    takes it: built directly (not from a config, which fills it in), the network once kept
    its default of 83 classes whatever the charset, which export then refused."""
    given = network_args.get("num_classes")
    if given is not None and given != tokens:
        raise ConfigError(
            f"network_args num_classes={given}, but the charset has {tokens} tokens: the "
            "network scores each token of it; leave num_classes out (it is the charset's size)"
        )
    return {**NETWORKS.accepted(network, {"num_classes": tokens}), **network_args}


class RecognitionModule(L.LightningModule):
    """A network (built by name from ``NETWORKS``), the charset it reads and its
    optimiser, saved with the checkpoint so that it loads with no config at hand; the
    subclasses add the loss, metrics and decoding."""

    #: The name under which ``MODELS`` registers the subclass; stored in checkpoints.
    model_name: ClassVar[str] = ""
    #: What it reads: single characters or whole lines (chooses preprocessing and decoding).
    kind: ClassVar[str] = "char"

    def __init__(
        self,
        network: str,
        network_args: dict[str, Any] | None = None,
        charset_tokens: list[str] | None = None,
        input_height: int = 28,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        freeze_batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.charset = Charset.from_tokens(charset_tokens or DEFAULT_CHARSET.tokens)
        self.input_height = input_height
        network_args = _scoring_every_token(network, network_args or {}, len(self.charset))
        self.hparams["network_args"] = network_args  # rebuilt, exported, as it is built
        self.network = NETWORKS.build(network, network_args)
        self.optimizer_config = OptimizerConfig.model_validate(optimizer or {})
        self.scheduler_config = SchedulerConfig.model_validate(scheduler or {})
        self.freeze_batchnorm = freeze_batchnorm

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def train(self, mode: bool = True) -> RecognitionModule:
        """With ``freeze_batchnorm``, batch norms stay in eval mode while the rest trains."""
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for module in self.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def on_train_start(self) -> None:
        # Lightning never calls train() on a fresh module (it starts in train mode) and
        # restores each submodule's own mode after validation: freeze once, here.
        self.train()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["model_name"] = self.model_name

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.parameters(), self.optimizer_config)
        scheduler = build_scheduler(
            optimizer,
            self.scheduler_config,
            total_steps=int(self.trainer.estimated_stepping_batches),
            max_epochs=int(self.trainer.max_epochs or 1),
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


LineBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class LineModule(RecognitionModule):
    """A line reader: logs loss, CER and WER per split from what the subclass decodes.

    Subclasses implement ``evaluation_outputs(batch) -> (loss, predicted texts)``.
    """

    kind: ClassVar[str] = "line"

    def __init__(self, network: str, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        # Total edits / total reference length, per split (rapidfuzz-backed torchmetrics).
        self.error_rates = torch.nn.ModuleDict(
            {f"{split}_cer": CharErrorRate() for split in ("val", "test")}
            | {f"{split}_wer": WordErrorRate() for split in ("val", "test")}
        )

    def evaluation_outputs(self, batch: LineBatch) -> tuple[torch.Tensor, list[str]]:
        raise NotImplementedError

    def _evaluate(self, batch: LineBatch, split: str) -> torch.Tensor:
        loss, predictions = self.evaluation_outputs(batch)
        _, _, targets, target_lengths = batch
        references = [
            self.charset.decode(t[:n].tolist())
            for t, n in zip(targets, target_lengths, strict=True)
        ]
        size = len(references)
        cer, wer = self.error_rates[f"{split}_cer"], self.error_rates[f"{split}_wer"]
        cer(predictions, references)
        wer(predictions, references)
        # Averaged over DDP ranks at epoch end (the metric objects sync themselves).
        self.log(
            f"{split}/loss", loss, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True
        )
        self.log(f"{split}/cer", cer, on_epoch=True, prog_bar=True, batch_size=size)  # type: ignore[arg-type]
        self.log(f"{split}/wer", wer, on_epoch=True, batch_size=size)  # type: ignore[arg-type]
        return loss

    def validation_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")
