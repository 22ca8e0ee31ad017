"""What every text-recognizer LightningModule shares: its network, charset and optimiser.

Everything needed to rebuild the module (network name and arguments, charset tokens,
optimiser and schedule) is saved as hyperparameters, so ``load_from_checkpoint`` works
with no config at hand and a model always decodes with the charset it was trained on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import torch

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.networks import NETWORKS
from text_recognizer.training.config import OptimizerConfig, SchedulerConfig
from text_recognizer.training.optim import build_optimizer, build_scheduler


class RecognitionModule(L.LightningModule):
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.charset = Charset.from_tokens(charset_tokens or DEFAULT_CHARSET.tokens)
        self.input_height = input_height
        self.network = NETWORKS.build(network, network_args or {})
        self.optimizer_config = OptimizerConfig.model_validate(optimizer or {})
        self.scheduler_config = SchedulerConfig.model_validate(scheduler or {})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

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
