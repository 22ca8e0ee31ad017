"""CtcLineModel: a float32 loss under bf16 autocast, and learning through Lightning in bf16."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from tests.models.lines import fit_one_batch, line_batch
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.errors import ConfigError
from text_recognizer.models import MODELS, CtcLineModel


def build() -> CtcLineModel:
    model = MODELS.build(
        "ctc",
        {},
        network="crnn",
        network_args={"dropout": 0.0},
        charset_tokens=list(DEFAULT_CHARSET.tokens),
        input_height=32,
        optimizer={"name": "adamw", "lr": 5e-3},
    )
    assert isinstance(model, CtcLineModel)
    return model


def test_loss_is_float32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = build().eval()
    batch = line_batch(["abc", "hello"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, log_probs, _ = model._loss(batch)
    assert loss.dtype == log_probs.dtype == torch.float32
    reference, _, _ = model._loss(batch)
    # bf16 has an 8-bit mantissa: the loss agrees to a few percent, not to float32 precision.
    torch.testing.assert_close(loss, reference, rtol=0.05, atol=0.0)


def test_memorises_lines_with_bf16_mixed_precision(tmp_path: Path) -> None:
    """The precision the shipped line model trains with still learns to CER 0."""
    L.seed_everything(0, verbose=False)
    model = build()
    texts = ["hello", "CTC 42", "fox", "a-b c."]
    metrics = fit_one_batch(model, texts, 250, tmp_path, precision="bf16-mixed")
    assert metrics["val/cer"] == 0.0
    assert metrics["val/wer"] == 0.0
    # The weights stay float32: export and inference need no precision of their own.
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_validation_reads_a_diverged_networks_nan_scores_as_nothing() -> None:
    """The decoders refuse NaN scores; validation must not, so that a diverged run ends as
    early stopping decides (val/loss not finite) instead of in the decoder's error."""
    model = build()
    log_probs = torch.full((3, 6, len(DEFAULT_CHARSET)), -20.0)
    log_probs[:, :, DEFAULT_CHARSET.blank] = 0.0
    log_probs[1, 2, DEFAULT_CHARSET.blank] = -20.0
    log_probs[1, 2, DEFAULT_CHARSET.index("a")] = 0.0  # line 1 reads "a"
    log_probs[0, 4, 3] = float("nan")
    log_probs[2] = float("nan")
    assert model.decode(log_probs, torch.tensor([6, 6, 6])) == ["", "a", ""]


def test_a_network_without_output_lengths_is_refused_when_the_model_is_built() -> None:
    """A character network under model: ctc once built, and failed on the first batch."""
    with pytest.raises(ConfigError, match=r"network 'lenet' has no output_lengths\(widths\)"):
        MODELS.build("ctc", {}, network="lenet", input_height=28)
