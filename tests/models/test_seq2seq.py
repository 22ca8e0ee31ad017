"""Seq2SeqLineModel: teacher forcing, config checks, and memorising lines through Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from tests.models.lines import fit_one_batch, line_batch
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.errors import ConfigError
from text_recognizer.models import MODELS, Seq2SeqLineModel
from text_recognizer.models.loading import load_module

SMALL_NETWORK = {
    "d_model": 64,
    "num_heads": 4,
    "dim_feedforward": 128,
    "num_layers": 1,
    "channels": (16, 16, 32, 64),
    "max_length": 16,
}
PAD, START, END = DEFAULT_CHARSET.pad, DEFAULT_CHARSET.start, DEFAULT_CHARSET.end


def build(network_args: dict[str, Any] | None = None, **model_args: Any) -> Seq2SeqLineModel:
    model = MODELS.build(
        "seq2seq",
        model_args,
        network="transformer",
        network_args=network_args or SMALL_NETWORK,
        charset_tokens=list(DEFAULT_CHARSET.tokens),
        input_height=32,
        optimizer={"name": "adamw", "lr": 2e-3},
    )
    assert isinstance(model, Seq2SeqLineModel)
    return model


def test_teacher_forcing_shifts_targets() -> None:
    model = build()
    targets = torch.tensor([[10, 11, 12], [20, PAD, PAD]])
    inputs, outputs = model.teacher_forcing(targets, torch.tensor([3, 1]))
    assert inputs.tolist() == [[START, 10, 11, 12], [START, 20, PAD, PAD]]
    assert outputs.tolist() == [[10, 11, 12, END], [20, END, PAD, PAD]]


def test_loss_ignores_padding() -> None:
    torch.manual_seed(0)
    model = build().eval()
    images, widths, targets, lengths = line_batch(["abc", "hello"])
    wider = torch.cat([targets, torch.full((2, 4), PAD)], dim=1)
    loss = model._loss((images, widths, targets, lengths))
    torch.testing.assert_close(model._loss((images, widths, wider, lengths)), loss)
    shorter = lengths.clone()
    shorter[1] = 2  # reading only "he" must change the loss
    assert not torch.isclose(model._loss((images, widths, targets, shorter)), loss)


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="beam_size"):
        build(beam_size=0)
    with pytest.raises(ConfigError, match="no argument 'beam'"):
        build(beam=2)
    with pytest.raises(ConfigError, match=r"max_length=20 must be in \[1, 16\]"):
        build(max_length=20)
    with pytest.raises(ConfigError, match=r"network.args.end_index=3"):
        build({**SMALL_NETWORK, "end_index": 5})
    with pytest.raises(ConfigError, match=r"ctc_weight=1.0 must be in \[0, 1\)"):
        build(ctc_weight=1.0)
    with pytest.raises(ConfigError, match=r"network\.args\.ctc_head=true"):
        build({**SMALL_NETWORK, "ctc_head": False}, ctc_weight=0.3)
    build({**SMALL_NETWORK, "ctc_head": False}, ctc_weight=0.0)  # no head, no CTC: fine


def test_auxiliary_ctc_loss_mixes_in_over_each_lines_own_columns() -> None:
    """(1 - w) * cross-entropy + w * CTC, the CTC over each line's real columns only."""
    torch.manual_seed(0)
    model = build(ctc_weight=0.25).eval()
    images, widths, targets, lengths = line_batch(["abc", "a longer line"])
    inputs, outputs = model.teacher_forcing(targets, lengths)
    logits = model(images, inputs, widths)
    ce = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), outputs.flatten(), ignore_index=PAD
    )
    _, _, ctc_logits = model.network.ctc_logits(images, widths)
    columns = model.network.encoder.output_widths(widths)
    assert columns[0] < columns[1] == ctc_logits.shape[1]  # the short line is padded
    ctc = torch.nn.functional.ctc_loss(
        ctc_logits.log_softmax(-1).transpose(0, 1), targets, columns, lengths, blank=0
    )
    loss = model._loss((images, widths, targets, lengths))
    torch.testing.assert_close(loss, 0.75 * ce + 0.25 * ctc)

    # Only the CTC loss reaches the CTC head; without it the head gets no gradient.
    loss.backward()
    assert model.network.ctc_classifier.weight.grad.abs().sum() > 0
    plain = build(ctc_weight=0.0)
    plain._loss((images, widths, targets, lengths)).backward()
    assert plain.network.ctc_classifier.weight.grad is None


def test_a_run_from_before_the_ctc_head_loads_and_resumes(tmp_path: Path) -> None:
    """A checkpoint without the head (saved before it existed: no ctc_weight or ctc_head in
    its hyperparameters) failed to load (missing keys) for evaluate, recognize, export and
    resume; it loads as the model it was, and its run resumes on cross-entropy alone."""
    torch.manual_seed(0)
    old = build({**SMALL_NETWORK, "ctc_head": False}, ctc_weight=0.0)
    batch = line_batch(["abc", "hello"])
    fit_one_batch(old, [], steps=2, tmp_path=tmp_path, batch=batch)
    path = tmp_path / "old.ckpt"
    old.trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["hyper_parameters"]["ctc_weight"]
    del checkpoint["hyper_parameters"]["network_args"]["ctc_head"]
    torch.save(checkpoint, path)

    loaded = load_module(path)
    assert isinstance(loaded, Seq2SeqLineModel)
    assert loaded.network.ctc_classifier is None and loaded.ctc_weight == 0
    assert loaded.recognize(batch[0], batch[1]) == old.eval().recognize(batch[0], batch[1])

    resumed = build()  # as the run's config builds it now: with the head, ctc_weight 0.3
    trainer = L.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer.fit(resumed, train_dataloaders=loader, ckpt_path=path)  # its optimizer: no head
    assert trainer.global_step == 3 and resumed.ctc_weight == 0


def memorise(
    texts: list[str], network_args: dict[str, Any], steps: int, tmp_path: Path
) -> Seq2SeqLineModel:
    """Train on one fixed batch through Lightning, then check val CER/WER are logged as 0."""
    L.seed_everything(0, verbose=False)
    model = build({**network_args, "dropout": 0.0})
    metrics = fit_one_batch(model, texts, steps, tmp_path)
    batch = line_batch(texts)
    assert metrics["val/cer"] == 0.0, [text for text, _ in model.recognize(batch[0], batch[1])]
    assert metrics["val/wer"] == 0.0
    assert metrics["val/loss"] < 0.1
    return model


def test_memorises_a_few_lines_and_reloads(tmp_path: Path) -> None:
    texts = ["abc", "hello", "Text 42", "xyz", "fox", "a b c"]
    model = memorise(texts, SMALL_NETWORK, steps=120, tmp_path=tmp_path)
    images, widths, _, _ = line_batch(texts)
    results = model.eval().recognize(images, widths)
    assert [text for text, _ in results] == texts
    assert all(0.5 < confidence <= 1.0 for _, confidence in results)

    # The checkpoint rebuilds the same model with no config at hand (weights_only load).
    path = tmp_path / "model.ckpt"
    model.trainer.save_checkpoint(path)
    reloaded = load_module(path)
    assert isinstance(reloaded, Seq2SeqLineModel)
    assert reloaded.hparams["beam_size"] == 1
    assert reloaded.recognize(images, widths) == results
    reloaded.beam_size = 3
    assert [text for text, _ in reloaded.recognize(images, widths)] == texts


@pytest.mark.slow
def test_memorises_eight_lines_with_the_default_network(tmp_path: Path) -> None:
    texts = ["abc", "hello", "Text 42", "xyz", "Quick fox", "lazy dog", "HTR 2024", "a b c"]
    memorise(texts, {}, steps=100, tmp_path=tmp_path)
