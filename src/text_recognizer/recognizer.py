"""The public inference API: ``Recognizer.from_pretrained().recognize(image)``.

Images of any size, polarity and colour mode go in; text and a confidence come out.
ONNX Runtime runs the shipped models (fast on a CPU, no training code needed); a
Lightning checkpoint or run folder runs in PyTorch eager mode instead.

Lines are decoded greedily by default; ``beam_size`` > 1 switches to CTC beam search,
optionally guided by a character n-gram LM (``lm="default"``: one counted from the
shipped sentence corpus, built once into the data cache).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from text_recognizer.charset import Charset
from text_recognizer.errors import ConfigError, ImageError
from text_recognizer.paths import MODELS_DIR
from text_recognizer.preprocessing import emnist_style, normalize_polarity, to_grey

if TYPE_CHECKING:
    from text_recognizer.decoding.ngram import CharNgramLm

ImageInput = str | Path | Image.Image | np.ndarray
Kind = Literal["char", "line", "auto"]

#: Larger images are refused before decoding (a decompression bomb or a mistake).
MAX_PIXELS = 40_000_000
#: width / height above which ``kind="auto"`` treats an image as a line.
LINE_ASPECT = 2.0


@dataclass
class Result:
    text: str
    confidence: float
    kind: str
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_image(source: ImageInput) -> np.ndarray:
    """Read a path, Pillow image or array into uint8 grey; a clear ``ImageError`` otherwise."""
    if isinstance(source, np.ndarray | Image.Image):
        return to_grey(source)
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(
                    f"{path}: {image.width}x{image.height} is larger than {MAX_PIXELS:,} pixels; "
                    "crop or downscale it first"
                )
            image.load()
            return to_grey(image)
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None
    except OSError as error:
        raise ImageError(f"{path}: the image is corrupt or truncated ({error})") from None


def prepare_line(grey: np.ndarray, height: int) -> np.ndarray:
    """Bright-ink grey line -> float32 ``[height, W]`` cropped to the ink, aspect kept."""
    ink = normalize_polarity(grey).astype(np.float32)
    background = float(np.median(ink))
    ink = np.clip(ink - background, 0, None)
    peak = float(ink.max())
    if peak < 16:
        raise ImageError("the image is blank: no ink found")
    rows, cols = np.nonzero(ink > 0.25 * peak)
    margin = max(2, (rows.max() - rows.min()) // 10)
    top, bottom = max(0, rows.min() - margin), min(ink.shape[0], rows.max() + margin + 1)
    left, right = max(0, cols.min() - margin), min(ink.shape[1], cols.max() + margin + 1)
    crop = ink[top:bottom, left:right] / peak
    width = max(height // 2, round(crop.shape[1] * height / crop.shape[0]))
    interpolation = cv2.INTER_AREA if crop.shape[0] > height else cv2.INTER_CUBIC
    return np.clip(cv2.resize(crop, (width, height), interpolation=interpolation), 0, 1)


class Model(Protocol):
    meta: dict[str, Any]

    def char_probs(self, images: np.ndarray) -> np.ndarray: ...

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


class OnnxModel:
    """An exported model: ``model.onnx`` with ``model.json`` beside it."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        meta_file = path.with_suffix(".json")
        if not path.is_file() or not meta_file.is_file():
            raise ConfigError(f"model {path} needs both the .onnx file and its .json beside it")
        self.meta = json.loads(meta_file.read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"images": images})[0]

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        log_probs, lengths = self.session.run(None, {"images": images, "widths": widths})
        return log_probs, lengths


class TorchModel:
    """A Lightning checkpoint or run folder, run in eager mode."""

    def __init__(self, source: Path) -> None:
        from text_recognizer.export import metadata
        from text_recognizer.models.loading import load_module

        self.module = load_module(source)
        self.meta = metadata(self.module)

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return torch.softmax(self.module(torch.from_numpy(images)), -1).numpy()

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            logits = self.module(torch.from_numpy(images), torch.from_numpy(widths))
            lengths = self.module.network.output_lengths(torch.from_numpy(widths))  # type: ignore[operator]
            return torch.log_softmax(logits, -1).numpy(), lengths.numpy()


def open_model(source: str | Path) -> Model:
    path = Path(source)
    if path.suffix == ".onnx":
        return OnnxModel(path)
    if path.suffix == ".ckpt" or path.is_dir():
        return TorchModel(path)
    raise ConfigError(
        f"{source}: expected a bundled model name, a .onnx file, a .ckpt file or a run folder"
    )


class Recognizer:
    """Reads characters and/or lines, with whichever models it was given.

    Args:
        models: one model per kind (``char``, ``line``).
        beam_size: 1 decodes lines greedily; more runs a CTC beam search keeping that
            many prefixes per frame.
        lm: character LM for the beam search: a :class:`CharNgramLm`, an ARPA file, or a
            sentence source to count one from on first use, then cached: ``"default"``
            (the shipped corpus, ~10 s) or ``"brown"`` (NLTK's Brown corpus).
        lm_weight: weight of the LM's scores against the line model's.
    """

    def __init__(
        self,
        models: Sequence[Model],
        beam_size: int = 1,
        lm: CharNgramLm | str | Path | None = None,
        lm_weight: float = 1.0,
    ) -> None:
        if not models:
            raise ConfigError("a Recognizer needs at least one model")
        if beam_size < 1:
            raise ConfigError(f"beam_size must be 1 (greedy) or more, got {beam_size}")
        if lm is not None and beam_size == 1:
            raise ConfigError("a language model needs beam search: pass beam_size > 1 (e.g. 10)")
        self.models = {model.meta["kind"]: model for model in models}
        self.beam_size = beam_size
        self.lm = _open_lm(lm)
        self.lm_weight = lm_weight

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", **decoding: Any) -> Recognizer:
        """``"default"`` loads every bundled model; otherwise one model file or run folder.

        ``decoding`` (``beam_size``, ``lm``, ``lm_weight``) goes to the constructor.
        """
        if str(name_or_path) == "default":
            bundled = sorted(MODELS_DIR.glob("*.onnx"))
            if not bundled:
                raise ConfigError(f"no bundled models in {MODELS_DIR}; reinstall the package")
            return cls([OnnxModel(path) for path in bundled], **decoding)
        return cls([open_model(name_or_path)], **decoding)

    @property
    def kinds(self) -> list[str]:
        return sorted(self.models)

    def _kind_for(self, grey: np.ndarray, kind: Kind) -> str:
        if kind == "auto":
            if len(self.models) == 1:
                return next(iter(self.models))
            height, width = grey.shape
            kind = "line" if width / max(height, 1) > LINE_ASPECT else "char"
        if kind not in self.models:
            raise ConfigError(f"no {kind} model loaded (have: {', '.join(self.kinds)})")
        return kind

    def recognize(self, image: ImageInput, kind: Kind = "auto") -> Result:
        return self.recognize_batch([image], kind)[0]

    def recognize_batch(self, images: Sequence[ImageInput], kind: Kind = "auto") -> list[Result]:
        """Read many images; characters and lines are batched separately."""
        greys = [load_image(image) for image in images]
        kinds = [self._kind_for(grey, kind) for grey in greys]
        results: list[Result | None] = [None] * len(greys)
        for which, run in (("char", self._read_chars), ("line", self._read_lines)):
            indices = [i for i, k in enumerate(kinds) if k == which]
            if indices:
                for i, result in zip(indices, run([greys[i] for i in indices]), strict=True):
                    results[i] = result
        return [r for r in results if r is not None]

    def _read_chars(self, greys: list[np.ndarray]) -> list[Result]:
        model = self.models["char"]
        charset = Charset.from_tokens(model.meta["charset"])
        size = int(model.meta["input_height"])
        batch = np.stack([emnist_style(normalize_polarity(g), size) for g in greys])
        probs = model.char_probs((batch.astype(np.float32) / 255.0)[:, None])
        results = []
        for row in probs:
            top = np.argsort(row)[::-1][:3]
            alternatives = [(charset.tokens[i], float(row[i])) for i in top]
            results.append(Result(alternatives[0][0], alternatives[0][1], "char", alternatives))
        return results

    def _read_lines(self, greys: list[np.ndarray]) -> list[Result]:
        from text_recognizer.decoding import beam_search_decode, greedy_ctc_decode

        model = self.models["line"]
        charset = Charset.from_tokens(model.meta["charset"])
        height = int(model.meta["input_height"])
        lines = [prepare_line(g, height) for g in greys]
        widths = np.array([line.shape[1] for line in lines], dtype=np.int64)
        batch = np.zeros((len(lines), 1, height, int(widths.max())), dtype=np.float32)
        for i, line in enumerate(lines):
            batch[i, 0, :, : line.shape[1]] = line
        log_probs, lengths = model.line_log_probs(batch, widths)
        if self.beam_size == 1:
            decoded = greedy_ctc_decode(log_probs, lengths, charset)
        else:
            decoded = beam_search_decode(
                log_probs, lengths, charset, self.beam_size, self.lm, self.lm_weight
            )
        return [Result(text, confidence, "line") for text, confidence in decoded]


def _open_lm(lm: CharNgramLm | str | Path | None) -> CharNgramLm | None:
    from text_recognizer.data.sources.corpus import SOURCES
    from text_recognizer.decoding.ngram import CharNgramLm

    if lm is None or isinstance(lm, CharNgramLm):
        return lm
    if str(lm) in SOURCES:  # "default" or "brown": counted from that sentence source
        return CharNgramLm.from_corpus(str(lm))
    return CharNgramLm(lm)
