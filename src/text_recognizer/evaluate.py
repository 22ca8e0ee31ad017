"""Evaluate a trained or bundled model on a dataset split: metrics plus the worst samples.

``text-recognizer evaluate (RUN_DIR | CKPT | MODEL.onnx | default) --data NAME --split test``

Characters are scored by accuracy, lines by CER and WER (``text_recognizer.metrics``:
total edits over total reference length) and exact-line accuracy. The worst samples are
the most confident mistakes (characters) or the lines with the highest CER, so a report
shows at once where a model fails and how sure it was. Two more figures say how far the
confidence can be trusted: ``confidence_auroc`` (how well it ranks right samples above
wrong ones) and the CER or accuracy of the 80 % of samples it is surest of.

The dataset's images go to the model as they are (they are already in the model's input
format); run folders and checkpoints run in PyTorch, ``.onnx`` and bundled models in ONNX
Runtime, exactly as ``Recognizer`` runs them. Pages (datasets of kind ``paragraph``) are
read by a ``Recognizer`` of the model as ``recognize(page, kind="paragraph")`` reads a
user's, its lines found, then read, several pages at a time (:func:`read_pages`: their
lines share the network's batches). A page's text is its lines joined by newlines, so a
line break missed or added is one character's error; ``lines_found`` against
``lines_truth`` and the share of pages whose every line was found say how much of that is
the finding of lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from tqdm import tqdm

from text_recognizer.charset import Charset
from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.errors import ConfigError, ImageError
from text_recognizer.files import write_text_atomic
from text_recognizer.metrics import cer, confidence_auroc, most_confident, wer

if TYPE_CHECKING:
    from text_recognizer.recognizer import Recognizer

log = logging.getLogger(__name__)

Batch = Sequence[torch.Tensor]
#: A batch of dataset samples -> ``(text, confidence)`` per sample.
Predictor = Callable[[Batch], list[tuple[str, float]]]
SPLITS = ("train", "val", "test")
#: Share of samples scored again on their own, the most confident first: what a reader
#: gets who accepts those and sends the rest to a person (``*_most_confident_80pct``).
CONFIDENT_SHARE = 0.8


def batch_truths(batch: Batch, charset: Charset) -> list[str]:
    """The reference text of each sample: ``(images, targets)`` or a padded line batch."""
    if len(batch) == 2:
        return [charset.tokens[int(t)] for t in batch[1]]
    _, _, targets, lengths = batch
    return [charset.decode(t[:n].tolist()) for t, n in zip(targets, lengths, strict=True)]


@torch.no_grad()
def predict_batch(
    module: torch.nn.Module, batch: Batch, decoder: CtcDecoder | None = None
) -> list[tuple[str, float]]:
    """``(text, confidence)`` per sample from one of our LightningModules (in eval mode).

    Characters: the most probable class and its softmax probability. Lines: the model's
    own ``recognize`` when it has one (seq2seq), else CTC decoding by ``decoder``
    (greedy by default), whose confidence is the probability of the whole line.
    """
    charset: Charset = module.charset  # type: ignore[assignment]
    if len(batch) == 2:
        probs = F.softmax(module(batch[0]), dim=-1)
        confidence, index = probs.max(dim=-1)
        return [(charset.tokens[int(i)], float(c)) for i, c in zip(index, confidence, strict=True)]
    images, widths = batch[0], batch[1]
    if hasattr(module, "recognize"):
        return module.recognize(images, widths)  # type: ignore[operator]
    log_probs = F.log_softmax(module(images, widths), dim=-1)
    return (decoder or CtcDecoder())(log_probs, module.output_lengths(widths), charset)  # type: ignore[operator]


#: Why a seq2seq model takes no ``--lm``.
SEQ2SEQ_NO_LM = (
    "it writes its text token by token with its own beam search (--beam N); a character LM "
    "guides only a CTC model's beam"
)


def _onnx_predictor(model: Any, kind: str, decoder: CtcDecoder) -> Predictor:
    """Adapt an exported model (``recognizer.open_onnx``) to dataset batches."""
    from text_recognizer.recognizer import Seq2SeqLines

    charset = Charset.from_tokens(model.meta["charset"])

    def predict(batch: Batch) -> list[tuple[str, float]]:
        if kind == "char":
            probs = model.char_probs(batch[0].numpy())
            best = probs.argmax(axis=-1)
            return [(charset.tokens[int(i)], float(p[i])) for i, p in zip(best, probs, strict=True)]
        if isinstance(model, Seq2SeqLines):
            return model.read_lines(batch[0].numpy(), batch[1].numpy(), decoder.beam_size)
        log_probs, lengths = model.line_log_probs(batch[0].numpy(), batch[1].numpy())
        return decoder(log_probs, lengths, charset)

    return predict


def _searching_widths(predict: Predictor, factors: tuple[float, ...]) -> Predictor:
    """``predict`` reading every line of a batch at several widths, as the Recognizer does."""
    from text_recognizer.recognizer import pad_lines, read_at_widths

    def read(lines: list[np.ndarray]) -> list[tuple[str, float]]:
        images, widths = pad_lines(lines)
        return predict((torch.from_numpy(images), torch.from_numpy(widths), None, None))  # type: ignore[arg-type]

    def predict_searching(batch: Batch) -> list[tuple[str, float]]:
        images, widths = batch[0].numpy(), batch[1].numpy()
        lines = [images[i, 0, :, : int(w)] for i, w in enumerate(widths)]
        return read_at_widths(lines, read, factors)

    return predict_searching


def load_predictor(
    source: str | Path,
    kind: str,
    decoder: CtcDecoder | None = None,
    width_factors: tuple[float, ...] = (1.0,),
) -> tuple[Predictor, dict[str, Any]]:
    """A predictor for ``kind`` ("char"/"line") samples and what it is (name, input height).

    ``decoder`` decodes a CTC line model's output (greedy by default); more than one
    ``width_factors`` reads each line at those widths (``Recognizer(width_search=...)``).
    """
    predict, info = _load_predictor(source, kind, decoder)
    if width_factors != (1.0,):
        if kind != "line":
            raise ConfigError("width search reads lines; this dataset holds characters")
        predict = _searching_widths(predict, width_factors)
    return predict, info


def _load_predictor(
    source: str | Path, kind: str, decoder: CtcDecoder | None = None
) -> tuple[Predictor, dict[str, Any]]:
    from text_recognizer.recognizer import Recognizer, Seq2SeqLines, open_onnx

    decoder = decoder or CtcDecoder()
    if kind == "char" and decoder.beam_size > 1:
        raise ConfigError("beam search and LMs decode lines; this dataset holds characters")
    path = Path(source)
    if path.suffix == ".ckpt" or path.is_dir():
        from text_recognizer.models.loading import load_module
        from text_recognizer.models.seq2seq import Seq2SeqLineModel

        module = load_module(path)
        if module.kind != kind:
            raise ConfigError(f"{source} is a {module.kind} model; the dataset holds {kind}s")
        if isinstance(module, Seq2SeqLineModel):  # its own beam search, no CTC frames
            if decoder.lm is not None:
                raise ConfigError(f"{source} is a seq2seq model: {SEQ2SEQ_NO_LM}")
            if decoder.beam_size > 1:
                module.beam_size = decoder.beam_size
        info = {"model": str(source), "input_height": module.input_height, "runtime": "torch"}
        return (lambda batch: predict_batch(module, batch, decoder)), info
    if path.suffix == ".onnx":
        model = open_onnx(path)
        if isinstance(model, Seq2SeqLines) and decoder.lm is not None:
            raise ConfigError(f"{source} is a seq2seq model: {SEQ2SEQ_NO_LM}")
    else:  # a bundled model name
        models = Recognizer.from_pretrained(str(source)).models
        if kind not in models:
            raise ConfigError(
                f"bundled model {source!r} has no {kind} model (has: {sorted(models)})"
            )
        model = models[kind]
    if model.meta.get("kind") != kind:
        raise ConfigError(
            f"{source} is a {model.meta.get('kind')} model; the dataset holds {kind}s"
        )
    info = {
        "model": str(source),
        "input_height": int(model.meta["input_height"]),
        "runtime": "onnx",
    }
    return _onnx_predictor(model, kind, decoder), info


def page_reader(source: str | Path, decoder: CtcDecoder, factors: tuple[float, ...]) -> Recognizer:
    """A Recognizer of ``source``'s line model that decodes as ``decoder`` and reads lines at
    ``factors``' widths: pages are read as ``recognize --kind paragraph`` reads them."""
    from text_recognizer.recognizer import Recognizer

    recognizer = Recognizer.from_pretrained(
        source,
        beam_size=decoder.beam_size,
        lm=decoder.lm,
        lm_weight=decoder.lm_weight,
        width_search=factors,
    )
    if "line" not in recognizer.models:
        raise ConfigError(
            f"{source} is a {' and '.join(recognizer.kinds)} model; the dataset holds pages, "
            "which are read line by line: name a line model"
        )
    return recognizer


#: Pages read together (their lines found, then read in shared batches): 16 pages of 5-10
#: lines fill the line batches, where one page's lines alone leave them part empty.
PAGE_BATCH = 16


def read_pages(
    recognizer: Recognizer,
    pages: Sequence[tuple[np.ndarray, str]],
    desc: str,
    names: Sequence[str] | None = None,
    batch: int = PAGE_BATCH,
) -> tuple[list[tuple[str, float]], list[int]]:
    """``(text, confidence)`` and the number of lines found, per page.

    ``batch`` pages at a time are read by one ``Recognizer.recognize_each`` call: each
    page's lines found as ``recognize(page, kind="paragraph")`` finds them, the lines of
    all of them read in shared batches. A page on which no line is found reads as nothing
    (every character missed), so one blank or unreadable page costs its own text, not the
    evaluation; the warning names it by ``names`` (its file or form).
    """
    predictions: list[tuple[str, float]] = []
    found: list[int] = []
    with tqdm(total=len(pages), desc=desc, unit="page", leave=False, disable=None) as progress:
        for start in range(0, len(pages), batch):
            chunk = [page for page, _ in pages[start : start + batch]]
            outcomes = recognizer.recognize_each(chunk, kind="paragraph")
            for index, outcome in enumerate(outcomes, start):
                if isinstance(outcome, ImageError):
                    which = f" ({names[index]})" if names else ""
                    log.warning("a page read as nothing%s: %s", which, outcome)
                    predictions.append(("", 0.0))
                    found.append(0)
                    continue
                predictions.append((outcome.text, outcome.confidence))
                found.append(len(outcome.lines))
            progress.update(len(chunk))
    return predictions, found


def line_counts(truths: Sequence[str], found: Sequence[int]) -> dict[str, float]:
    """How many lines were found on the pages against how many they hold."""
    expected = [truth.count("\n") + 1 for truth in truths]
    return {
        "lines_found": float(sum(found)),
        "lines_truth": float(sum(expected)),
        "pages_all_lines_found": float(
            np.mean([f == e for f, e in zip(found, expected, strict=True)])
        ),
    }


@dataclass
class Sample:
    index: int
    truth: str
    prediction: str
    confidence: float
    cer: float
    name: str | None = None  # the source image, where the dataset knows it


@dataclass
class EvaluationReport:
    """What ``evaluate`` measured, and on what (model, data, split, decoder, seed), so that
    a figure can be reproduced; ``worst`` holds the samples read worst."""

    model: str
    data: str
    split: str
    kind: str
    num_samples: int
    metrics: dict[str, float]
    worst: list[Sample] = field(default_factory=list)
    data_args: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    decoder: str = "greedy"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what ``evaluate -o report.json`` writes)."""
        return asdict(self)

    def write_json(self, path: Path) -> None:
        """Write the report whole or not at all (a stopped or failed write keeps an earlier
        report as it was), in UTF-8 whatever the locale's encoding: transcriptions may
        hold any character."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False))


def score(
    truths: Sequence[str],
    predictions: Sequence[tuple[str, float]],
    kind: str,
    worst: int,
    names: Sequence[str] | None = None,
) -> tuple[dict[str, float], list[Sample]]:
    """Metrics over the whole split and the ``worst`` samples, worst first."""
    texts = [text for text, _ in predictions]
    exact = float(np.mean([p == t for p, t in zip(texts, truths, strict=True)]))
    samples = [
        Sample(i, t, p, c, Levenshtein.distance(p, t) / max(len(t), 1), names[i] if names else None)
        for i, (t, (p, c)) in enumerate(zip(truths, predictions, strict=True))
    ]
    confidences = [c for _, c in predictions]
    surest = most_confident(confidences, CONFIDENT_SHARE)
    if kind == "char":
        metrics = {
            "accuracy": exact,
            "errors": float(sum(p != t for p, t in zip(texts, truths, strict=True))),
            "accuracy_most_confident_80pct": float(
                np.mean([texts[i] == truths[i] for i in surest])
            ),
        }
        # The most confident mistakes are the most telling.
        ranked = sorted(
            (s for s in samples if s.prediction != s.truth), key=lambda s: -s.confidence
        )
    else:  # lines, and pages (their lines joined by newlines)
        metrics = {
            "cer": cer(texts, truths),
            "wer": wer(texts, truths),
            f"{kind}_accuracy": exact,
            "cer_most_confident_80pct": cer(
                [texts[i] for i in surest], [truths[i] for i in surest]
            ),
        }
        ranked = sorted((s for s in samples if s.cer > 0), key=lambda s: (-s.cer, -s.confidence))
    auroc = confidence_auroc(confidences, [p == t for p, t in zip(texts, truths, strict=True)])
    if auroc is not None:  # undefined when every sample is right, or every one wrong
        metrics["confidence_auroc"] = auroc
    return metrics, ranked[:worst]


def run_data(source: str | Path) -> tuple[str, dict[str, Any], int] | None:
    """The dataset (name, arguments, seed) a run folder or its checkpoint was trained on."""
    from text_recognizer.training.config import load_config

    path = Path(source)
    run_dir = path if path.is_dir() else path.parent.parent if path.suffix == ".ckpt" else None
    if run_dir is None or not (run_dir / "config.yaml").is_file():
        return None
    config = load_config(run_dir / "config.yaml")
    return config.data.name, config.data.args, config.seed


def check_evaluation(
    source: str | Path,
    data: str | None,
    data_args: dict[str, Any] | None = None,
    beam_size: int = 1,
    lm: object = None,
) -> str:
    """Refuse what can be refused before an evaluation costs anything, and return the
    dataset's name (``data``, else the run's own).

    A model that does not exist, no dataset to score on, and a beam search or an LM for
    characters (which are read by their likeliest class) are said at once: the command
    line counts its character LM (~40 s for ``--lm default``) before evaluating, and a
    dataset may build its cache. The kinds are told from descriptions only (a dataset's
    name and arguments, a run's config, an exported model's ``.json``); where they cannot
    be, the loaded model and dataset are checked again later.
    """
    from text_recognizer.recognizer import bundled_names

    if not Path(source).exists() and str(source) not in bundled_names():
        raise ConfigError(
            f"{source} does not exist: name a run folder, a .ckpt, an exported .onnx (its "
            f".json beside it) or a bundled model ({', '.join(bundled_names())})"
        )
    trained_on = run_data(source)
    data = data or (trained_on[0] if trained_on else None)
    if data is None:
        raise ConfigError(f"{source} is not a run folder: name the dataset to evaluate on (--data)")
    if beam_size == 1 and lm is None:
        return data
    chars = (
        f"{data} holds characters"
        if dataset_kind(data, data_args or {}) == "char"
        else f"{source} is a character model"
        if model_kind(source) == "char"
        else None
    )
    if chars is not None:
        raise ConfigError(
            f"beam search and LMs decode lines, and {chars} (each read as its likeliest "
            "class): leave out the beam search and the LM (--beam, --lm)"
        )
    return data


def dataset_kind(data: str, args: dict[str, Any]) -> str | None:
    """What dataset ``data`` built with ``args`` holds ("char", "line", "paragraph"), told
    without building it; None for a dataset there is none of (said when it is built)."""
    from text_recognizer.data import DATASETS

    if data not in DATASETS:
        return None
    kind = _kind_arg(data, args)  # a folder's is an argument
    return str(kind) if kind is not None else getattr(DATASETS.get(data), "kind", None)


def model_kind(source: str | Path) -> str | None:
    """What model ``source`` reads, told from its description without loading it: an
    exported or bundled model's ``.json``, a run's config (the kind of its dataset). None
    where it cannot be told, or the bundled ``default``, which reads every kind."""
    from text_recognizer.paths import MODELS_DIR

    path = Path(source)
    if path.suffix.lower() == ".onnx":
        meta_file = path.with_suffix(".json")
    elif not path.exists() and (MODELS_DIR / f"{source}.json").is_file():
        meta_file = MODELS_DIR / f"{source}.json"
    else:
        trained_on = run_data(source)
        return dataset_kind(trained_on[0], trained_on[1]) if trained_on else None
    try:
        kind = json.loads(meta_file.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):  # said as such when the model is opened
        return None
    return kind if isinstance(kind, str) else None


def _kind_arg(data: str, args: dict[str, Any]) -> Any:
    """The ``kind`` argument ``args`` give dataset ``data`` (a folder's), or its default."""
    from text_recognizer.data import DATASETS

    parameter = DATASETS.parameters(data).get("kind")
    return args.get("kind", None if parameter is None else parameter.default)


def evaluate(
    source: str | Path,
    data: str | None = None,
    split: str = "test",
    data_args: dict[str, Any] | None = None,
    batch_size: int = 64,
    worst: int = 10,
    limit: int | None = None,
    seed: int | None = None,
    decoder: CtcDecoder | None = None,
    width_search: bool | Sequence[float] = False,
) -> EvaluationReport:
    """Run a model over one split of a dataset (built by name, as in a config).

    A run folder's own dataset (name, arguments and seed) is the default, so
    ``evaluate(run_dir)`` scores exactly the run's test split; ``data``, ``data_args``
    and ``seed`` override it. ``split="all"`` scores every split the dataset has, one
    after another (a folder of your own labelled lines, for example). ``decoder`` decodes
    line models as the Recognizer would with the same options (greedy by default);
    ``width_search`` reads each line at several widths, as ``Recognizer(width_search=...)``.
    """
    from text_recognizer.data import DATASETS
    from text_recognizer.data.module import collate_lines

    if split not in (*SPLITS, "all"):
        raise ConfigError(f"split must be train, val, test or all, not {split!r}")
    decoder = decoder or CtcDecoder()
    data = check_evaluation(source, data, data_args, decoder.beam_size, decoder.lm)
    trained_on = run_data(source)
    # A folder of pages is no folder of lines: the run's line arguments (its augmentations,
    # rehearsal) would be refused for pages the user gave none of.
    same_data = (
        trained_on is not None
        and trained_on[0] == data
        and _kind_arg(data, trained_on[1]) == _kind_arg(data, data_args or {})
    )
    args = {**(trained_on[1] if trained_on and same_data else {}), **(data_args or {})}
    if seed is None:
        seed = trained_on[2] if trained_on and same_data else 0
    datamodule = DATASETS.build(data, args, batch_size=batch_size, seed=seed)
    from text_recognizer.recognizer import width_factors

    factors = width_factors(width_search)
    # The model first: a wrong one is refused before a dataset's cache is built.
    if datamodule.kind == "paragraph":
        recognizer = page_reader(source, decoder, factors)
    else:
        predict, info = load_predictor(source, datamodule.kind, decoder, factors)
        if info["input_height"] != datamodule.input_height:
            height = info["input_height"]
            fix = (  # emnist_lines' lines are 28 px high, whatever its arguments
                f"pass --data-arg input_height={height}"
                if "input_height" in DATASETS.parameters(data)
                else f"score a model made for {data}'s images (trained on them, for one)"
            )
            raise ConfigError(
                f"{source} reads images {height} pixels high but {data} yields "
                f"{datamodule.input_height}: {fix}"
            )
    splits = SPLITS if split == "all" else (split,)
    # Only what the split needs: scoring a test split builds no training cache.
    datamodule.prepare_splits(splits)
    stages = {"all": None, "train": "fit", "val": "validate", "test": "test"}
    datamodule.setup(stages[split])
    if split == "all" and datamodule.data_test is None:
        datamodule.setup("test")  # datasets that build the test split only for "test"
    parts = [getattr(datamodule, f"data_{s}") for s in splits]
    parts = [part for part in parts if part is not None]
    if not parts:
        empty_split = getattr(datamodule, "empty_split", None)  # a folder says why
        why = empty_split(split) if empty_split else None
        if why:
            raise ConfigError(f"{why}; or score every labelled image: --split all")
        raise ConfigError(f"dataset {data} has no {split} split")
    part_names = [getattr(part, "names", None) for part in parts]  # image files, if known
    names = [n for names_ in part_names for n in names_] if all(part_names) else None  # type: ignore[union-attr]
    dataset: Dataset[Any] = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if limit is not None:
        dataset = Subset(dataset, range(min(limit, len(dataset))))  # type: ignore[arg-type]
    truths: list[str] = []
    predictions: list[tuple[str, float]] = []
    if datamodule.kind == "paragraph":
        pages: list[tuple[np.ndarray, str]] = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
        truths = [text for _, text in pages]
        predictions, found = read_pages(recognizer, pages, f"{data}/{split}", names)
    else:
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            collate_fn=collate_lines if datamodule.kind == "line" else None,
        )
        progress = tqdm(loader, desc=f"{data}/{split}", unit="batch", leave=False, disable=None)
        for batch in progress:  # disable=None: a bar on a terminal only
            truths += batch_truths(batch, datamodule.charset)
            predictions += predict(batch)
    if not truths:
        raise ConfigError(f"the {split} split of {data} is empty")
    metrics, worst_samples = score(
        truths, predictions, datamodule.kind, worst, names[: len(truths)] if names else None
    )
    if datamodule.kind == "paragraph":
        metrics.update(line_counts(truths, found))
    decoder_name = "argmax" if datamodule.kind == "char" else str(decoder)
    if len(factors) > 1:
        decoder_name += f", best of widths {'/'.join(f'{f:g}' for f in factors)}"
    return EvaluationReport(
        model=str(source),
        data=data,
        split=split,
        kind=datamodule.kind,
        num_samples=len(truths),
        metrics=metrics,
        worst=worst_samples,
        data_args=args,
        seed=seed,
        decoder=decoder_name,
    )
