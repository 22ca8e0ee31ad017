"""The public inference API: ``Recognizer.from_pretrained().recognize(image)``.

Images of any size, polarity and colour mode go in; text and a confidence come out.
A character, a line, or a paragraph: a page's lines are found first
(:func:`~text_recognizer.segmentation.segment_lines`) and each is read as a line.
Lines are cropped to their ink, rid of marks far above or below the text
(``preprocessing.drop_stray_marks``), levelled when tilted (``skew_angle``), sheared to
the lean the model reads best (``slant``) and resized to the model's height.
ONNX Runtime runs the shipped models (fast on a CPU, no training code needed); a
Lightning checkpoint or run folder runs in PyTorch eager mode instead.

Lines are decoded greedily by default; ``beam_size`` > 1 switches to CTC beam search,
optionally guided by a character n-gram LM (``lm="default"``: one counted from the
shipped sentence corpus, built once into the data cache). Where each word was read is
found by aligning the reading with the network's frames
(:mod:`~text_recognizer.decoding.alignment`) and following the line's preprocessing
back to the image. A seq2seq (Transformer) line model writes each line token by token
instead (:class:`Seq2SeqLines`): its own beam search, no LM, no word places.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import cv2
import numpy as np
from PIL import Image

from text_recognizer.charset import BLANK, END, PAD, START, Charset
from text_recognizer.errors import ConfigError, ImageError, with_name
from text_recognizer.images import ImageInput, Pages, image_pixel_limit, load_image
from text_recognizer.paths import MODELS_DIR
from text_recognizer.preprocessing import (
    INK_FRACTION,
    MIN_CONTRAST,
    baseline_row,
    emnist_style,
    ink_contrast,
    map_points,
    normalize_polarity,
    prepare_line_mapped,
    shrunk_to,
    subtract_paper,
    trim_frame,
    trim_page,
)
from text_recognizer.segmentation import (
    TextLine,
    may_hold_lines,
    segment_lines,
    sideways_evidence,
)

if TYPE_CHECKING:
    from text_recognizer.decoding.ngram import CharNgramLm

Kind = Literal["char", "line", "paragraph", "auto"]
KINDS: tuple[Kind, ...] = ("auto", "char", "line", "paragraph")

#: width / height above which ``kind="auto"`` treats an image as a line; below it, an
#: image in which several lines are found is a paragraph, and otherwise a character.
LINE_ASPECT = 2.0
#: The same for the ink's box, where the image is not wide: higher, as a hand-printed
#: letter's ink alone may be wider than twice its height (85 of 10,000 NIST vowels; none
#: above 3.5, and the sample lines' ink is 11 to 20 times as wide as high).
INK_LINE_ASPECT = 3.5

#: Which ways round an image may come (``Recognizer(orientation=...)``): ``"upright"``
#: is read as given; ``"sideways"`` may lie on its side too (a quarter turn either way, a
#: phone photo whose EXIF orientation is lost); ``"any"`` may also be upside down.
Orientation = Literal["upright", "sideways", "any"]
ORIENTATIONS: tuple[Orientation, ...] = ("upright", "sideways", "any")

#: A page lies on its side where the edges of its writing run this many times more up and
#: down than across (``sideways_evidence``): 0.64 at most on 603 upright pages (six
#: layouts of synthetic pages, the samples), 1.56 at least on them turned a quarter turn
#: either way (docs/benchmarks.md).
SIDEWAYS_RATIO = 1.0
#: ...and it holds this many blobs of ink or more: a character holds one to three (a
#: tall "1" or "I" is all edges up and down), a line of writing more.
SIDEWAYS_BLOBS = 4
#: A line (``kind="line"``) lies on its side where its ink is over this many times as tall
#: as wide: no upright line measured is taller than wide (0.85 at least, of 2,608 lines:
#: docs/benchmarks.md).
SIDEWAYS_LINE = 2.0

#: Lines per network run in ``recognize_batch`` (sorted by width first).
LINE_BATCH = 32

#: Horizontal scales a line is read at with ``width_search=True``.
WIDTH_SEARCH = (0.85, 1.0, 1.25)


#: A reading: ``(text, confidence, ...)``, whatever else a caller keeps with it.
R = TypeVar("R", bound=tuple[Any, ...])
#: A line read by the Recognizer: text, confidence, and its words: each with its span
#: (shares of the line's width) and confidence.
_Reading = tuple[str, float, list[tuple[str, float, float, float]]]


def read_at_widths(
    lines: Sequence[np.ndarray],
    read: Callable[[list[np.ndarray]], list[R]],
    factors: Sequence[float] = WIDTH_SEARCH,
) -> list[R]:
    """Read every prepared line at several horizontal scales; keep its most confident reading.

    People write wider or narrower than any font the model learnt from, and a line model
    reads best near the proportions it was trained on. Reading each line squeezed, as
    is and stretched, and keeping the reading the model is surest of, lowered the shipped
    model's CER on nearly every held-out hand and on lines of real characters
    (``docs/benchmarks.md``), for one model run per factor. ``read`` decodes a list of
    ``[H, W]`` float lines into ``(text, confidence, ...)`` tuples; anything after the
    confidence must not depend on the scale (the word spans are shares of the width).
    """
    best: list[R] | None = None
    for factor in factors:
        scaled = [_scale_width(line, factor) for line in lines]
        readings = read(scaled)
        if best is None:
            best = readings
        else:
            best = [
                max(old, new, key=lambda r: r[1]) for old, new in zip(best, readings, strict=True)
            ]
    return best or []


def _scale_width(line: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return line
    width = max(1, round(line.shape[1] * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(line, (width, line.shape[0]), interpolation=interpolation)


@dataclass
class Word:
    """A word of a line and where it is: the corners of the stretch of the line it was read
    from, from its top ink row to its lowest, in the image as given (clockwise from the
    top left; slanted with the writing where the line was sheared upright to be read).
    ``confidence`` is the model's probability of exactly that word from the frames between
    its neighbouring spaces."""

    text: str
    polygon: list[tuple[int, int]]
    confidence: float


@dataclass
class Result:
    """What was read. A paragraph's ``text`` is its lines' joined by newlines, its
    ``confidence`` their mean, and ``lines`` holds each line's own result. A line's
    result, alone or in a page, says where it is in the image: ``polygon``, the corners
    of the frame it was read in (its ink and a margin; clockwise from the top left, turned
    and slanted as the line was levelled and sheared upright to be read), ``box``
    ``(x0, y0, x1, y1)``, the polygon's bounds (``x1``, ``y1`` exclusive, as slices),
    ``baseline``, two points along the foot of its letters, left to right, and its
    ``words`` (:class:`Word`). ``size`` is the image's ``(width, height)`` as read
    (upright, as its EXIF orientation says). ``page`` is the page's number, from 1, in a
    file of several pages (:meth:`Recognizer.recognize_document`); ``None`` for an image
    of one. ``rotation`` is how far the image was turned clockwise to be read, in degrees
    (90, 180 or 270: it lay on its side or upside down, ``Recognizer(orientation=...)``);
    0 where it was read as given. Places are in the image as given either way."""

    text: str
    confidence: float
    kind: str
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    lines: list[Result] = field(default_factory=list)
    box: tuple[int, int, int, int] | None = None
    polygon: list[tuple[int, int]] | None = None
    baseline: list[tuple[int, int]] | None = None
    words: list[Word] = field(default_factory=list)
    size: tuple[int, int] | None = None
    page: int | None = None
    rotation: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what ``recognize --json`` prints), without the
        optional fields that are empty (a character's box and words, the page number of an
        image of one, a rotation of 0) or the alternatives of a page's lines."""

        def drop_empty(out: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in out.items() if v or k not in _OPTIONAL_KEYS}

        out = drop_empty(asdict(self))
        if "lines" in out:  # a page's lines: where each is, what it says
            out["lines"] = [drop_empty(line) for line in out["lines"]]
            for line in out["lines"]:
                del line["alternatives"]
        return out


#: What ``Result.to_dict`` leaves out where it is empty.
_OPTIONAL_KEYS = frozenset(
    {"lines", "box", "polygon", "baseline", "words", "size", "page", "rotation"}
)


class Model(Protocol):
    """What the Recognizer reads with: an ONNX model or a checkpoint, behind one interface
    (``open_model``); ``meta`` is what the model's ``.json`` says (kind, charset, height)."""

    meta: dict[str, Any]

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``[B, C]`` of characters ``[B, 1, H, W]`` (float, bright ink)."""
        ...

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """CTC log-probabilities ``[B, T, C]`` of right-padded lines ``[B, 1, H, W]`` and
        each line's real frames ``[B]``, from the lines' true ``widths``."""
        ...


def onnx_session(path: Path, threads: int = 0) -> Any:
    """An ONNX Runtime session (CPU) of the model ``path``; a ``ConfigError`` naming the
    file where it holds no readable model (corrupt, truncated, empty, not ONNX)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT's errors are pybind classes (InvalidProtobuf, Fail, ...)
        if path.is_file() and path.stat().st_size == 0:
            reason = "the file is empty"
        else:  # "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from x failed:why"
            reason = str(error).rpartition("failed:")[2].strip().rstrip(".")
        raise ConfigError(
            f"{path} is not a readable ONNX model ({reason or type(error).__name__}): "
            "export it again (text-recognizer export), or restore the file"
        ) from None


def read_model_json(path: Path) -> dict[str, Any]:
    """The metadata ``path`` (an exported model's ``.json``) holds."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:  # ValueError: bad JSON or not UTF-8
        raise ConfigError(
            f"{path} is not a readable model description ({error}): export the model again"
        ) from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path} is not a model description (no JSON object): export again")
    return meta


#: What an exported model's ``.json`` says that reading needs (``export.metadata``).
REQUIRED_META = ("kind", "charset", "input_height")
#: The ``format`` of the ``.json`` this version reads.
META_FORMAT = "text-recognizer-onnx/1"
#: The inputs each kind of exported graph takes (``export.CharExport``, ``LineExport``;
#: a seq2seq model's encoder takes a line's).
GRAPH_INPUTS = {"char": ["images"], "line": ["images", "widths"]}
#: The inputs of a seq2seq model's decoder-step graph (``export.DecoderStepExport``).
STEP_INPUTS = ["token", "cache", "memory_keys_values", "memory_valid"]
#: How an exported line model's output becomes text: CTC frames, or token by token.
DECODERS = ("ctc", "seq2seq")


def step_graph_path(path: Path) -> Path:
    """Where a seq2seq model exported to ``path`` (its encoder) keeps its decoder step:
    ``model.onnx`` -> ``model.step.onnx``, beside it as the ``.json`` is."""
    return path.with_name(f"{path.stem}.step.onnx")


def check_model_meta(
    meta: dict[str, Any], meta_file: Path, session: Any, scores: Any = None
) -> None:
    """Raise a ``ConfigError`` where the ``.json`` lacks what reading needs, or contradicts
    its graph (``session``; ``scores``, a seq2seq model's step graph, scores the classes);
    ``input_height`` becomes an ``int``."""
    again = "export the model again (text-recognizer export)"
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ConfigError(
            f"{meta_file} lacks {', '.join(missing)}: not the description of an exported "
            f"model; {again}"
        )
    fmt = meta.get("format", META_FORMAT)
    if fmt != META_FORMAT:
        raise ConfigError(
            f"{meta_file} is in format {fmt}, not {META_FORMAT}: written by a newer "
            "text-recognizer? Upgrade it, or export the model with this version"
        )
    kind = meta["kind"]
    if kind not in GRAPH_INPUTS:
        raise ConfigError(f"{meta_file}: kind {kind!r} is none the Recognizer reads (char or line)")
    tokens = meta["charset"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ConfigError(f"{meta_file}: charset must be a list of tokens (strings); {again}")
    try:
        charset = Charset.from_tokens(tokens)
    except ValueError as error:  # repeated tokens
        raise ConfigError(f"{meta_file}: {error}; {again}") from None
    decoder = meta.get("decoder", "ctc")  # exports before seq2seq support said nothing
    if kind == "line" and decoder not in DECODERS:
        raise ConfigError(
            f"{meta_file}: decoder {decoder!r} is none this version reads ({', '.join(DECODERS)})"
            "; upgrade text-recognizer, or export the model with this version"
        )
    if kind == "line" and decoder == "ctc" and BLANK not in charset:
        raise ConfigError(f"{meta_file}: a CTC line model's charset holds {BLANK}; {again}")
    if kind == "line" and decoder == "seq2seq":
        missing = [t for t in (PAD, START, END) if t not in charset]
        if missing:
            raise ConfigError(
                f"{meta_file}: a seq2seq model's charset holds {', '.join(missing)}; {again}"
            )
        longest = meta.get("max_length")
        if isinstance(longest, bool) or not isinstance(longest, int) or longest < 1:
            raise ConfigError(
                f"{meta_file}: max_length (the longest text decoded) must be a whole number, "
                f"1 or more, not {longest!r}; {again}"
            )
    height = meta["input_height"]
    try:
        valid = not isinstance(height, bool) and int(height) == float(height) >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"{meta_file}: input_height must be a whole number of pixels, 1 or more, not "
            f"{height!r}; {again}"
        )
    meta["input_height"] = int(height)
    # The graph: what it takes, how high its images are, how many classes it scores.
    inputs = [arg.name for arg in session.get_inputs()]
    if inputs != GRAPH_INPUTS[kind]:
        raise ConfigError(
            f"{meta_file} says a {kind} model, but its graph takes {', '.join(inputs)}: "
            f"the .onnx and .json are of different models; {again}"
        )
    image_height = session.get_inputs()[0].shape[2:3]
    if image_height and isinstance(image_height[0], int) and image_height[0] != int(height):
        raise ConfigError(
            f"{meta_file} says input_height {int(height)}, but the graph takes images "
            f"{image_height[0]} pixels high; {again}"
        )
    if scores is not None and [arg.name for arg in scores.get_inputs()] != STEP_INPUTS:
        raise ConfigError(
            f"the decoder step beside {meta_file} takes "
            f"{', '.join(arg.name for arg in scores.get_inputs())}, not {', '.join(STEP_INPUTS)}"
            f": not a seq2seq model's step graph; {again}"
        )
    classes = (scores or session).get_outputs()[0].shape[-1:]
    if classes and isinstance(classes[0], int) and classes[0] != len(charset):
        raise ConfigError(
            f"{meta_file}: its charset has {len(charset)} tokens, but the graph scores "
            f"{classes[0]} classes; {again}"
        )


def exported_meta_file(path: Path) -> Path:
    """The ``.json`` beside an exported model ``path``; a ``ConfigError`` where either is
    missing."""
    meta_file = path.with_suffix(".json")
    if not path.is_file():  # said as such: "needs both" sent users looking for a .json
        raise ConfigError(
            f"model {path} does not exist: name an exported .onnx (its .json beside it), a "
            f".ckpt, a run folder or a bundled model ({', '.join(bundled_names())})"
        )
    if not meta_file.is_file():
        raise ConfigError(
            f"model {path} needs its {meta_file.name} beside it (its charset and input "
            "size), which export writes with it: keep the two together"
        )
    return meta_file


class OnnxModel:
    """An exported character or CTC line model: ``model.onnx`` with ``model.json`` beside it."""

    def __init__(self, path: Path, threads: int = 0, meta: dict[str, Any] | None = None) -> None:
        meta_file = exported_meta_file(path)
        self.meta = read_model_json(meta_file) if meta is None else meta
        if self.meta.get("decoder") == "seq2seq":
            raise ConfigError(f"{path} is a seq2seq model: open it with open_model()")
        self.session = onnx_session(path, threads)
        check_model_meta(self.meta, meta_file, self.session)

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"images": images})[0]

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        log_probs, lengths = self.session.run(None, {"images": images, "widths": widths})
        return log_probs, lengths


def _torch_parts() -> tuple[Callable[[Path], Any], Callable[[Any], dict[str, Any]]]:
    """``load_module`` and ``export.metadata``: reading a checkpoint needs the training
    extra, which an ONNX-only install lacks."""
    try:
        from text_recognizer.export import metadata
        from text_recognizer.models.loading import load_module
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"reading a checkpoint or run folder needs PyTorch and Lightning "
            f"({error.name} is not installed): pip install 'text-recognizer[train]', or "
            "read the model exported to ONNX (text-recognizer export)"
        ) from None
    return load_module, metadata


class TorchModel:
    """A character or CTC line model from a Lightning checkpoint or run folder (or its
    loaded module), run in eager mode."""

    def __init__(self, source: Path | Any) -> None:
        load_module, metadata = _torch_parts()
        self.module = load_module(Path(source)) if isinstance(source, (str, Path)) else source
        if self.module.model_name == "seq2seq":
            raise ConfigError(f"{source} is a seq2seq model: open it with open_model()")
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
            lengths = self.module.network.output_lengths(torch.from_numpy(widths))
            return torch.log_softmax(logits, -1).numpy(), lengths.numpy()


class Seq2SeqLines:
    """A line model that writes its text token by token (``model: seq2seq``, the CNN +
    Transformer): it reads whole lines (:meth:`read_lines`) and has no CTC frames, so
    neither a character LM nor word places apply to it."""

    meta: dict[str, Any]

    def read_lines(
        self, images: np.ndarray, widths: np.ndarray, beam_size: int = 1
    ) -> list[tuple[str, float]]:
        """``(text, confidence)`` per line of a padded batch; ``beam_size`` > 1 keeps that
        many hypotheses (the network's own beam search)."""
        raise NotImplementedError

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        raise ConfigError("a seq2seq model reads lines, not characters")

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        raise ConfigError("a seq2seq model writes its text token by token: it has no CTC frames")


class OnnxSeq2SeqModel(Seq2SeqLines):
    """An exported seq2seq line model: the encoder ``model.onnx``, its decoder step
    ``model.step.onnx`` and ``model.json`` beside it, driven by
    :func:`~text_recognizer.decoding.seq2seq.seq2seq_decode`."""

    def __init__(self, path: Path, threads: int = 0, meta: dict[str, Any] | None = None) -> None:
        meta_file, step_file = exported_meta_file(path), step_graph_path(path)
        if not step_file.is_file():
            raise ConfigError(
                f"{path} is a seq2seq model's encoder: its decoder step {step_file.name} must be "
                "beside it (text-recognizer export writes both); export the model again"
            )
        self.meta = read_model_json(meta_file) if meta is None else meta
        self.encoder = onnx_session(path, threads)
        self.step = onnx_session(step_file, threads)
        check_model_meta(self.meta, meta_file, self.encoder, scores=self.step)
        self.charset = Charset.from_tokens(self.meta["charset"])

    def read_lines(
        self, images: np.ndarray, widths: np.ndarray, beam_size: int = 1
    ) -> list[tuple[str, float]]:
        from text_recognizer.decoding.seq2seq import seq2seq_decode, texts_and_confidences

        keys_values, valid = self.encoder.run(None, {"images": images, "widths": widths})

        def step(
            token: np.ndarray, cache: np.ndarray, keys_values: np.ndarray, valid: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
            inputs = {"token": token, "cache": cache, "memory_keys_values": keys_values}
            log_probs, cache = self.step.run(None, {**inputs, "memory_valid": valid})
            return log_probs, cache

        longest = int(self.meta["max_length"])
        tokens, scores = seq2seq_decode(step, keys_values, valid, self.charset, longest, beam_size)
        return texts_and_confidences(tokens.tolist(), scores.tolist(), self.charset)


class TorchSeq2SeqModel(Seq2SeqLines):
    """A seq2seq line model's checkpoint (its loaded module), decoded by its network's
    ``generate`` in PyTorch."""

    def __init__(self, module: Any) -> None:
        _, metadata = _torch_parts()
        self.module = module
        self.meta = metadata(module)
        self.charset = Charset.from_tokens(self.meta["charset"])

    def read_lines(
        self, images: np.ndarray, widths: np.ndarray, beam_size: int = 1
    ) -> list[tuple[str, float]]:
        import torch

        from text_recognizer.decoding.seq2seq import texts_and_confidences

        with torch.inference_mode():
            tokens, scores = self.module.network.generate(
                torch.from_numpy(images),
                torch.from_numpy(widths),
                max_length=int(self.meta["max_length"]),
                beam_size=beam_size,
            )
        return texts_and_confidences(tokens.tolist(), scores.tolist(), self.charset)


def open_onnx(path: Path, threads: int = 0) -> Model:
    """An exported model, as its ``.json`` says: one graph, or a seq2seq model's two."""
    meta_file = path.with_suffix(".json")
    encoder = path.with_name(path.name.removesuffix(".step.onnx") + ".onnx")
    if path.name.endswith(".step.onnx") and not meta_file.is_file() and encoder.is_file():
        raise ConfigError(
            f"{path} is a seq2seq model's decoder step: open the model by its encoder, {encoder}"
        )
    meta = read_model_json(exported_meta_file(path))
    if meta.get("decoder") == "seq2seq":
        return OnnxSeq2SeqModel(path, threads, meta)
    return OnnxModel(path, threads, meta)


def open_checkpoint(source: Path) -> Model:
    """A checkpoint or run folder's model, for PyTorch eager mode."""
    load_module, _ = _torch_parts()
    module = load_module(source)
    if module.model_name == "seq2seq":
        return TorchSeq2SeqModel(module)
    return TorchModel(module)


def bundled_names() -> list[str]:
    """The names ``from_pretrained`` takes for bundled models: ``"default"`` (all of them)
    and each one's (``"char"``, ``"line"``)."""
    return ["default", *sorted(p.stem for p in MODELS_DIR.glob("*.onnx"))]


def check_threads(threads: int) -> None:
    """Refuse a thread count ONNX Runtime would misread (a negative one, a bool, a float)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(
            f"threads must be a whole number, 0 (one per core) or more; got {threads!r}"
        )


def open_model(source: str | Path, threads: int = 0) -> Model:
    """A bundled model by name (``"line"``, ``"char"``), an ONNX file, a checkpoint or a
    run folder; ``threads`` as in :meth:`Recognizer.from_pretrained`."""
    check_threads(threads)
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        return open_onnx(path, threads)
    if path.suffix == ".ckpt" or path.is_dir():
        return open_checkpoint(path)
    bundled = bundled_names()[1:]
    if str(source) in bundled:
        return open_onnx(MODELS_DIR / f"{source}.onnx", threads)
    names = ", ".join(repr(name) for name in ["default", *bundled])
    raise ConfigError(
        f"{source}: not a bundled model ({names}: 'default' is all of them), a .onnx file, "
        "a .ckpt file or a run folder"
    )


class Recognizer:
    """Reads characters and/or lines, with whichever models it was given.

    Args:
        models: one model per kind (``char``, ``line``).
        beam_size: 1 decodes lines greedily; more runs a CTC beam search keeping that
            many prefixes per frame (a seq2seq model's own beam search: that many
            hypotheses per token).
        lm: character LM for the beam search: a :class:`CharNgramLm`, an ARPA file, or a
            sentence source to count one from on first use, then cached: ``"default"``
            (the shipped corpus, ~10 s) or ``"brown"`` (NLTK's Brown corpus).
        lm_weight: weight of the LM's scores against the line model's.
        width_search: read each line at several horizontal scales (``WIDTH_SEARCH``, or
            the factors given) and keep the most confident reading
            (:func:`read_at_widths`): more accurate on hands wider or narrower than the
            training fonts, one model run per factor.
        deskew: level tilted lines before reading them
            (:func:`~text_recognizer.preprocessing.skew_angle`); turn it off only for
            lines known to be level, or to measure what it does.
        deslant: shear every line's strokes to the lean the model reads best
            (:func:`~text_recognizer.preprocessing.slant`); off only to measure what it does.
        orientation: which ways round the images may come (``ORIENTATIONS``).
            ``"sideways"`` (the default) turns a page or line lying on its side (a quarter
            turn either way: a phone photo whose EXIF orientation was lost) back upright,
            reading it turned both ways and keeping the reading the model is surer of; an
            upright image costs a quick look at its shape. ``"any"`` also reads every
            line and page turned half a turn and keeps the surer reading (a page fed to
            the scanner the wrong way round): twice the time. ``"upright"`` reads every
            image as given. Characters are always read as given (a 6 turned is a 9).
            Places (polygons, boxes) are given in the image as it is.
        upside_down: ``orientation="any"``, as earlier versions called it.
        max_image_pixels: the most pixels an image file (or one page of a document) may
            hold; a larger one is refused before it is decoded, as a decompression bomb
            would be. ``None``: :data:`~text_recognizer.images.MAX_PIXELS` (40 million);
            a 600-dpi A3 scan (70 million) needs more.
    """

    def __init__(
        self,
        models: Sequence[Model],
        beam_size: int = 1,
        lm: CharNgramLm | str | Path | None = None,
        lm_weight: float = 1.0,
        width_search: bool | Sequence[float] = False,
        deskew: bool = True,
        deslant: bool = True,
        upside_down: bool = False,
        orientation: Orientation | None = None,
        max_image_pixels: int | None = None,
    ) -> None:
        if not models:
            raise ConfigError("a Recognizer needs at least one model")
        for model in [models] if isinstance(models, str | os.PathLike) else models:
            if not hasattr(model, "meta"):  # a path or name: what from_pretrained opens
                raise ConfigError(
                    f"Recognizer takes opened models, not {model!r}: "
                    "Recognizer.from_pretrained(path) opens a bundled name, .onnx, .ckpt or "
                    "run folder (open_model(path) opens one to combine with others)"
                )
        from text_recognizer.decoding.decoder import CtcDecoder

        self.models = {model.meta["kind"]: model for model in models}
        searched = width_factors(width_search) != (1.0,)  # (1.0,): each line at its width
        if "line" not in self.models and (beam_size != 1 or lm is not None or searched):
            # Refused before an LM is counted (~10 s, 19 MB on first use) for nothing.
            raise ConfigError(
                "beam search, a language model and width search read lines, and the loaded "
                f"models read none (have: {', '.join(sorted(self.models))}): drop them "
                "(--beam, --lm, --width-search on the command line), or load a line model"
            )
        if lm is not None and isinstance(self.models.get("line"), Seq2SeqLines):
            raise ConfigError(
                "a character LM guides the CTC beam search; this line model is seq2seq (it "
                "writes its text token by token, with its own beam search): drop the LM and "
                "keep beam_size (--beam N)"
            )
        self.decoder = CtcDecoder.from_options(beam_size, lm, lm_weight)
        if self.decoder.lm is not None and "line" in self.models:
            # Loaded now: a damaged file is refused here, not on the first line read.
            self.decoder.lm.kenlm(Charset.from_tokens(self.models["line"].meta["charset"]))
        self.width_factors = width_factors(width_search)
        self.deskew = deskew
        self.deslant = deslant
        self.orientation = check_orientation(orientation, upside_down)
        self.max_image_pixels = image_pixel_limit(max_image_pixels)

    @property
    def upside_down(self) -> bool:
        """Whether lines and pages are also read turned half a turn (``orientation="any"``)."""
        return self.orientation == "any"

    @property
    def lm(self) -> CharNgramLm | None:
        """The character LM guiding the beam search; None where lines are read without one."""
        return self.decoder.lm

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path = "default", threads: int = 0, **decoding: Any
    ) -> Recognizer:
        """``"default"`` loads every bundled model; otherwise one model (see ``open_model``).

        ``threads``: how many threads ONNX Runtime runs one model call on; 0 is one per
        core. 1 lets several readers (processes, or a server beside other work) share a
        machine without each claiming every core. A checkpoint runs on PyTorch's threads.
        ``decoding`` (``beam_size``, ``lm``, ``lm_weight``, ``width_search``, ``deskew``,
        ``deslant``, ``orientation``, ``upside_down``, ``max_image_pixels``) goes to the
        constructor.
        """
        if str(name_or_path) == "default":
            check_threads(threads)
            bundled = sorted(MODELS_DIR.glob("*.onnx"))
            if not bundled:
                raise ConfigError(f"no bundled models in {MODELS_DIR}; reinstall the package")
            return cls([open_onnx(path, threads) for path in bundled], **decoding)
        return cls([open_model(name_or_path, threads)], **decoding)

    @property
    def kinds(self) -> list[str]:
        """What the loaded models read (``"char"``, ``"line"``); a ``kind`` needing another
        is refused before anything is read."""
        return sorted(self.models)

    def check_kind(self, kind: str) -> None:
        """Refuse, before anything is read, a kind that is none or whose model is not loaded."""
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        needed = "line" if kind == "paragraph" else kind
        if needed != "auto" and needed not in self.models:
            raise ConfigError(f"no {needed} model loaded (have: {', '.join(self.kinds)})")

    def _kind_for(self, grey: np.ndarray, kind: Kind) -> tuple[str, list[TextLine] | None]:
        """The kind to read ``grey`` as, and its lines where telling the kind found them."""
        lines = None
        if kind == "auto":
            kind, lines = self._auto_kind(grey)
        self.check_kind(kind)
        return kind, lines

    def _auto_kind(self, grey: np.ndarray) -> tuple[Kind, list[TextLine] | None]:
        if "line" not in self.models:
            return "char", None
        height, width = grey.shape
        # The image's shape first (cheap); then its ink's: one line photographed or
        # scanned with wide margins is no wider than a character's image.
        wide = width / max(height, 1) > LINE_ASPECT or _ink_aspect(grey) > INK_LINE_ASPECT
        if wide and not may_hold_lines(grey):
            return "line", None  # the common case, told cheaply: one line
        lines = _found_lines(grey)
        if not lines:
            return ("line" if wide or "char" not in self.models else "char"), None
        if not wide:
            return "paragraph", lines
        # A wide image may be a short paragraph, or one line cut in bands by mistake (2 of
        # the 2,000 synthetic test lines): read it both ways, keep the surer reading.
        as_line = self._read_lines([grey])[0].confidence
        parts = self._read_lines([line.image for line in lines])
        if np.mean([r.confidence for r in parts]) > as_line:
            return "paragraph", lines
        return "line", None

    def recognize(self, image: ImageInput, kind: Kind = "auto") -> Result:
        """Read one image (of a multi-page TIFF or a PDF, its first page, with a warning:
        :meth:`recognize_document` reads every page)."""
        return self.recognize_batch([image], kind)[0]

    def recognize_document(self, source: ImageInput | Pages, kind: Kind = "auto") -> list[Result]:
        """Read every page of a file, in order: a multi-page TIFF (what scanners and fax
        machines write) or a PDF (with the ``pdf`` extra) gives one result per page, each
        with its ``page`` number; any other image a list of the one result
        :meth:`recognize` gives.

        Each page's kind is told on its own (``kind="auto"``). The first page that cannot
        be read (blank, no line found) raises its ``ImageError``, which names the page
        (``scan.tif page 3: ...``); :meth:`recognize_pages` goes on past it. To bound what
        an untrusted file may cost, pass :class:`~text_recognizer.images.Pages`
        opened with ``max_pages`` and ``max_pixels`` (its pages are then held to its own
        ``max_image_pixels``)."""
        results = []
        for outcome in self.recognize_pages(source, kind):
            if isinstance(outcome, ImageError):
                raise outcome
            results.append(outcome)
        return results

    def recognize_pages(
        self, source: ImageInput | Pages, kind: Kind = "auto"
    ) -> Iterator[Result | ImageError]:
        """Each page of a file read in turn, as :meth:`recognize_document` reads them, with
        one page in memory at a time; a page that cannot be read gives its ``ImageError``
        in its place, so that one blank page (a duplex scan's empty back) costs none of
        the others. A file that cannot be opened raises when the first page is asked for
        (:class:`Pages` raises as it is opened, over its limits too); ``source``, if
        :class:`Pages`, is left open."""
        self.check_kind(kind)
        pages = (
            source
            if isinstance(source, Pages)
            else Pages(source, max_image_pixels=self.max_image_pixels)
        )
        try:
            for number in range(1, len(pages) + 1):
                try:
                    result = self._recognize([pages.load(number)], kind, loaded=True)[0]
                except ImageError as error:
                    yield with_name(error, pages.page_name(number))
                    continue
                yield replace(result, page=number if len(pages) > 1 else None)
        finally:
            if pages is not source:
                pages.close()

    def recognize_batch(self, images: Iterable[ImageInput], kind: Kind = "auto") -> list[Result]:
        """Read many images (a list, or any iterable of them); characters and lines
        (paragraphs' too) are batched separately.

        Lines go through the network ``LINE_BATCH`` at a time, sorted by width, each
        padded to the widest of its batch; the padding shifts the scores of a line's last
        frames a little, so a line may read slightly differently than alone (the CER over
        a set stays the same). ``recognize`` one image at a time where every reading must
        not depend on the others."""
        self.check_kind(kind)
        return self._recognize(_image_list(images, "recognize_batch"), kind)

    def recognize_each(
        self, images: Iterable[ImageInput], kind: Kind = "auto"
    ) -> list[Result | ImageError]:
        """Read many images as :meth:`recognize_batch` does (the lines of all of them in
        shared batches), where an image that cannot be read (blank, no line found) gives
        its ``ImageError`` in its place and costs none of the others; an image given as a
        file is named in its error.

        Many pages read this way, several at a time, read faster than one by one: their
        lines fill the network's batches (``docs/benchmarks.md``); a line may read slightly
        differently than with its own page's lines alone, as :meth:`recognize_batch` says."""
        self.check_kind(kind)
        readings: list[list[_Prepared] | ImageError] = []
        for image in _image_list(images, "recognize_each"):
            name = str(image) if isinstance(image, str | Path) else None
            try:
                readings.append(self._prepare(image, kind, name))
            except ImageError as error:
                readings.append(error)
        results = iter(self._read_readings([r for r in readings if isinstance(r, list)]))
        return [r if isinstance(r, ImageError) else next(results) for r in readings]

    def _recognize(
        self, images: Sequence[ImageInput], kind: Kind, loaded: bool = False
    ) -> list[Result]:
        """``recognize_batch``; ``loaded``: the images are pages as ``load_image`` reads
        them (``Pages.load``), not converted and checked again (that costs a float64
        copy of the page, 0.1 s on 12 million pixels)."""
        count = len(images)
        names = [_name(image, i, count) for i, image in enumerate(images)]
        return self._read_readings(
            [
                self._prepare(image, kind, name, loaded)
                for image, name in zip(images, names, strict=True)
            ]
        )

    def _read_readings(self, readings: list[list[_Prepared]]) -> list[Result]:
        """One result an image of what :meth:`_prepare` made of each."""
        # Each image as given (or turned upright where it lies on its side), then (with
        # ``orientation="any"``, or on its side) its lines or page turned half a turn from
        # that, from the same decoding.
        prepared = [given for given, *_ in readings]
        turned = [(i, rest[0]) for i, (_, *rest) in enumerate(readings) if rest]
        if not turned:
            return self._read(prepared)
        # Read in the same batch; each image's surer reading is kept.
        results = self._read(prepared + [item for _, item in turned])
        for (i, _), result in zip(turned, results[len(prepared) :], strict=True):
            if result.confidence > results[i].confidence:
                results[i] = result
        return results[: len(prepared)]

    def _read(self, prepared: list[_Prepared]) -> list[Result]:
        chars = [item.char for item in prepared if item.char is not None]
        char_results = iter(self._read_chars(np.stack(chars)) if chars else [])
        # Every line of every paragraph goes into one batch with the lone lines.
        lines = [line for item in prepared for line in item.lines]
        places = [(to_image, item.size) for item in prepared for to_image in item.to_image]
        line_results = iter(self._read_prepared(lines, places) if lines else [])
        results = []
        for item in prepared:
            if item.kind == "char":
                result = next(char_results)
            elif item.kind == "line":
                result = next(line_results)
            else:
                parts = [next(line_results) for _ in item.lines]
                result = Result(
                    "\n".join(part.text for part in parts),
                    float(np.mean([part.confidence for part in parts])),
                    "paragraph",
                    lines=parts,
                )
            # np.rot90 turns counter-clockwise: a quarter turn of it is 270 degrees clockwise.
            results.append(replace(result, size=item.size, rotation=-90 * item.turns % 360))
        return results

    def _prepare(
        self, image: ImageInput, kind: Kind, name: str | None, loaded: bool = False
    ) -> list[_Prepared]:
        """One image made ready for its network: a line or page lying on its side turned a
        quarter turn both ways, and with ``orientation="any"`` an upright one as given and
        turned half a turn (a character only as given: its 6 and 9 are each other's
        turned); an error names the image (``name``) so that one bad image in a batch can
        be found."""
        try:
            grey = (
                image
                if loaded and isinstance(image, np.ndarray)
                else load_image(image, self.max_image_pixels)
            )
            which, found_lines = self._kind_for(grey, kind)
            read, turns = grey, 0
            if self._lies_sideways(grey, kind, which):
                sideways = _turned(grey, 1)
                upright, upright_lines = self._kind_for(sideways, kind)
                if upright != "char":  # no line either way round: a character, as given
                    read, turns, which, found_lines = sideways, 1, upright, upright_lines
            prepared = [self._prepare_grey(read, which, found_lines, turns)]
            if which != "char" and (turns or self.orientation == "any"):
                half = turns + 2  # the other way round: both ways up are read
                prepared.append(self._prepare_grey(_turned(grey, half), which, None, half))
            return prepared
        except ImageError as error:
            if name is None or str(error).startswith(f"{name}: "):  # a file names itself
                raise
            raise ImageError(f"{name}: {error}") from None

    def _prepare_grey(
        self,
        grey: np.ndarray,
        which: str,
        found_lines: list[TextLine] | None,
        turns: int = 0,
    ) -> _Prepared:
        """``grey`` read as ``which`` (its page's lines already found where
        ``found_lines``); ``turns``: it is the image as given turned that many quarter
        turns counter-clockwise (``np.rot90``)."""
        size = (grey.shape[1], grey.shape[0])[:: -1 if turns % 2 else 1]  # as given
        if which == "char":
            bright_ink = normalize_polarity(trim_frame(grey)[0])
            char = _emnist_style(bright_ink, int(self.models["char"].meta["input_height"]))
            return _Prepared("char", size, char=char)  # a character is never turned
        if which == "line":
            ((line, mapping),) = self._prepare_lines([grey])
            lines, to_image = [line], [np.linalg.inv(mapping)]
        else:
            page = self._page_lines(grey, found_lines)
            lines = [line for _, (line, _) in page]
            # A word's place: prepared line -> the line cut from the page -> the image.
            to_image = [found.to_image @ np.linalg.inv(mapping) for found, (_, mapping) in page]
        if turns % 4:  # places found in the turned image, turned back into the one given
            back = _turned_back((size[1], size[0]), turns)
            to_image = [back @ matrix for matrix in to_image]
        return _Prepared(which, size, lines, to_image, turns=turns % 4)

    def _lies_sideways(self, grey: np.ndarray, kind: Kind, which: str) -> bool:
        """Whether ``grey``, asked to be read as ``kind`` and told to be a ``which`` as
        given, is a line or page lying on its side.

        A line is told by its ink's shape, taller than wide; a page by the edges of its
        writing, blurred to the letters' scale, running up and down
        (:func:`~text_recognizer.segmentation.sideways_evidence`). With ``kind="auto"``, a
        line as given was wide; a character as given is a line on its side where its ink
        is tall, in several blobs (a line holds too few rows of letters for their edges to
        tell), and no line runs across it (else it would be a page as given).
        """
        if self.orientation == "upright" or kind == "char" or "line" not in self.models:
            return False
        height, width = grey.shape
        told_wide = kind == "auto" and which == "line" and "char" in self.models
        if told_wide or width > LINE_ASPECT * height:
            return False  # wide: a line, or a page of long lines, upright
        if kind == "line":
            aspect = _ink_aspect(grey)
            return 0 < aspect < 1 / SIDEWAYS_LINE
        evidence = sideways_evidence(grey)
        if evidence.blobs < SIDEWAYS_BLOBS or evidence.ink_aspect > LINE_ASPECT:
            return False  # a character, or ink as wide as a line's as given
        if evidence.edge_ratio > SIDEWAYS_RATIO:
            return True
        if evidence.ink_aspect >= 1 / INK_LINE_ASPECT:
            return False
        return which == "char" if kind == "auto" else not _found_lines(grey)

    def _page_lines(
        self, grey: np.ndarray, found_lines: list[TextLine] | None = None
    ) -> list[tuple[TextLine, tuple[np.ndarray, np.ndarray]]]:
        """A page's lines (cut now, unless ``kind="auto"`` cut them already), each with its
        prepared image; a band with no line in it (a stray mark, a rule's remains) is left out."""
        lines = []
        for found in segment_lines(grey).lines if found_lines is None else found_lines:
            try:
                lines.append((found, self._prepare_lines([found.image])[0]))
            except ImageError:
                continue
        if not lines:
            raise ImageError("no line of text found in the image")
        return lines

    def _read_chars(self, batch: np.ndarray) -> list[Result]:
        """``[N, size, size]`` uint8 characters (``_emnist_style``) -> one result each."""
        model = self.models["char"]
        charset = Charset.from_tokens(model.meta["charset"])
        probs = model.char_probs((batch.astype(np.float32) / 255.0)[:, None])
        results = []
        for row in probs:
            top = np.argsort(row)[::-1][:3]
            alternatives = [(charset.tokens[i], float(row[i])) for i in top]
            results.append(Result(alternatives[0][0], alternatives[0][1], "char", alternatives))
        return results

    def _read_lines(self, greys: list[np.ndarray]) -> list[Result]:
        return self._read_prepared([line for line, _ in self._prepare_lines(greys)])

    def _prepare_lines(self, greys: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each line prepared for the network, with the matrix from ``grey`` to it."""
        height = int(self.models["line"].meta["input_height"])
        return [prepare_line_mapped(g, height, self.deskew, self.deslant) for g in greys]

    def _read_prepared(
        self,
        lines: list[np.ndarray],
        places: Sequence[tuple[np.ndarray, tuple[int, int]]] | None = None,
    ) -> list[Result]:
        """Read prepared lines; with ``places`` (each line's matrix to the image as given,
        and that image's size) the results say where each word is."""
        from text_recognizer.decoding.alignment import locate_words
        from text_recognizer.decoding.greedy import as_log_probs

        model = self.models["line"]
        charset = Charset.from_tokens(model.meta["charset"])

        def read(lines: list[np.ndarray]) -> list[_Reading]:
            # Batches of lines of similar width carry little padding to compute: 128 demo
            # lines read at 5.0 ms each, 7.1 one by one (docs/benchmarks.md).
            order = np.argsort([line.shape[1] for line in lines], kind="stable")
            readings: list[_Reading] = [("", 0.0, [])] * len(lines)
            for start in range(0, len(order), LINE_BATCH):
                chunk = order[start : start + LINE_BATCH]
                batch, widths = pad_lines([lines[i] for i in chunk])
                if isinstance(model, Seq2SeqLines):  # no frames: no word places
                    texts = model.read_lines(batch, widths, self.decoder.beam_size)
                    for i, (text, confidence) in zip(chunk, texts, strict=True):
                        readings[i] = (text, confidence, [])
                    continue
                log_probs, lengths = model.line_log_probs(batch, widths)
                decoded = self.decoder(log_probs, lengths, charset)
                if places is not None:
                    log_probs, lengths = as_log_probs(log_probs, lengths)
                for row, (i, (text, confidence)) in enumerate(zip(chunk, decoded, strict=True)):
                    words = []
                    if places is not None:
                        words = locate_words(log_probs[row, : lengths[row]], text, charset)
                    readings[i] = (text, confidence, words)
            return readings

        decoded = read_at_widths(lines, read, self.width_factors)
        if places is None:
            return [Result(text, confidence, "line") for text, confidence, _ in decoded]
        results = []
        for line, (text, confidence, spans), (to_image, size) in zip(
            lines, decoded, places, strict=True
        ):
            height, width = line.shape
            ink = line > INK_FRACTION * float(line.max())
            words = [
                Word(
                    word,
                    map_points(to_image, _word_box(ink, start * width, end * width), size),
                    sure,
                )
                for word, start, end, sure in spans
            ]
            # The line itself: the prepared line's frame (its ink and a margin, levelled)
            # and the foot of its letters, back in the image.
            base = baseline_row(ink)
            outline = map_points(
                to_image, [*_band(0, width, height), (0, base), (width - 1, base)], size
            )
            polygon, baseline = outline[:4], outline[4:]
            results.append(
                Result(
                    text,
                    confidence,
                    "line",
                    box=_bounds(polygon),
                    polygon=polygon,
                    baseline=baseline,
                    words=words,
                )
            )
        return results


@dataclass(frozen=True)
class _Prepared:
    """One image ready for its network: a character's input, or its lines' with the
    matrices that take each back to the image; ``size`` is the image's (width, height)."""

    kind: str
    size: tuple[int, int]
    lines: list[np.ndarray] = field(default_factory=list)
    to_image: list[np.ndarray] = field(default_factory=list)  # prepared line -> image
    char: np.ndarray | None = None
    turns: int = 0  # quarter turns counter-clockwise (np.rot90) it was read at


def _band(
    start: float, end: float, height: int, top: float = 0.0, bottom: float | None = None
) -> list[tuple[float, float]]:
    """The corners of columns ``start`` to ``end`` (pixel edges) of a prepared line, rows
    ``top`` to ``bottom`` (all by default), as pixel centres, clockwise from the top left."""
    left, right = start, max(start, end - 1)
    bottom = height - 1 if bottom is None else bottom
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def _word_box(ink: np.ndarray, start: float, end: float) -> list[tuple[float, float]]:
    """A word's columns of a prepared line's ink mask, from its top ink row to its lowest,
    a pixel beyond each: an "a" gets a box its own height, a "b" one with its ascender."""
    columns = ink[:, max(0, int(start)) : max(int(start) + 1, int(np.ceil(end)))]
    rows = np.flatnonzero(columns.any(axis=1))
    if len(rows) == 0:
        return _band(start, end, ink.shape[0])
    top, bottom = max(0, rows[0] - 1), min(ink.shape[0] - 1, rows[-1] + 1)
    return _band(start, end, ink.shape[0], top, bottom)


def _turned(grey: np.ndarray, turns: int) -> np.ndarray:
    """``grey`` turned ``turns`` quarter turns counter-clockwise."""
    return np.ascontiguousarray(np.rot90(grey, turns)) if turns % 4 else grey


def _turned_back(shape: tuple[int, int], turns: int) -> np.ndarray:
    """The 3 x 3 matrix from the pixels of an image of ``shape`` (rows, columns) turned
    ``turns`` quarter turns counter-clockwise (``np.rot90``) back to the image's."""
    matrix = np.eye(3)
    height, width = shape
    for _ in range(turns % 4):
        # A pixel (x, y) of the image turned once more was at (width - 1 - y, x) before.
        matrix = matrix @ np.array([[0.0, -1, width - 1], [1, 0, 0], [0, 0, 1]])
        height, width = width, height
    return matrix


def check_orientation(orientation: str | None, upside_down: bool = False) -> Orientation:
    """The orientation ``orientation`` and the older ``upside_down`` flag ask for together:
    ``upside_down`` is ``"any"``; neither given, ``"sideways"``."""
    if orientation is None:
        return "any" if upside_down else "sideways"
    if orientation not in ORIENTATIONS:
        raise ConfigError(
            f"orientation must be one of {', '.join(ORIENTATIONS)}; got {orientation!r}"
        )
    if upside_down and orientation != "any":
        raise ConfigError(
            f"upside_down is orientation 'any', which contradicts orientation {orientation!r}: "
            "give one of them"
        )
    return orientation


def _bounds(polygon: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
    xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _image_list(images: Iterable[ImageInput], method: str) -> list[ImageInput]:
    """``images`` as a list; an ``ImageError`` where one image was passed instead (a path
    would be read character by character, an array row by row)."""
    single = (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image)
    if isinstance(images, single) or hasattr(images, "read"):
        hint = "; a stack of N images: list(array)" if isinstance(images, np.ndarray) else ""
        raise ImageError(
            f"{method} takes a list of images, not one {type(images).__name__}: pass "
            f"[image], or call recognize(image){hint}"
        )
    if isinstance(images, Pages):
        raise ImageError(f"{method} takes a list of images; recognize_document reads a Pages")
    if not isinstance(images, Iterable):
        raise ImageError(f"{method} takes a list of images, not {type(images).__name__}")
    return list(images)


def _name(image: ImageInput, index: int, count: int) -> str | None:
    """How an error names an image: its path, else its place in a batch of several."""
    if isinstance(image, str | Path):
        return str(image)
    return f"image {index + 1} of {count}" if count > 1 else None


def _emnist_style(bright_ink: np.ndarray, size: int) -> np.ndarray:
    try:
        return emnist_style(bright_ink, size)
    except ImageError:  # blank: its message asks for bright ink, which the image already is
        contrast = ink_contrast(bright_ink)
        raise ImageError(
            f"the image is blank: no ink found (contrast {contrast:.0f} grey levels, "
            f"need {MIN_CONTRAST})"
        ) from None


def width_factors(width_search: bool | Sequence[float]) -> tuple[float, ...]:
    """The scales ``width_search`` means: (1.0,) when off, ``WIDTH_SEARCH`` when True."""
    if width_search is True:
        return WIDTH_SEARCH
    if width_search is False:
        return (1.0,)
    wrong = ConfigError(
        "width_search must be True, False or a list of horizontal scales (e.g. "
        f"[0.85, 1.0, 1.25]); got {width_search!r}"
    )
    if isinstance(width_search, str):  # "yes": its letters are no scales
        raise wrong
    try:
        factors = tuple(float(f) for f in width_search)
    except (TypeError, ValueError):
        raise wrong from None
    if not factors or min(factors) <= 0:
        raise ConfigError(f"width_search factors must be positive, got {list(factors)}")
    return factors


def pad_lines(lines: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Float lines ``[H, W_i]`` -> a zero-padded batch ``[N, 1, H, max W]`` and the widths."""
    widths = np.array([line.shape[1] for line in lines], dtype=np.int64)
    batch = np.zeros((len(lines), 1, lines[0].shape[0], int(widths.max())), dtype=np.float32)
    for i, line in enumerate(lines):
        batch[i, 0, :, : line.shape[1]] = line
    return batch, widths


#: ``_ink_aspect`` works on the image shrunk to this longer side: a shape needs no detail
#: (on a 3000x4000 page at full size it took 0.7 s of the 1.7 s read).
INK_ASPECT_SIDE = 256


def _ink_aspect(grey: np.ndarray) -> float:
    """Width / height of the box holding the ink (all but its outermost 1 % each way, so
    that a speck in a margin does not stretch it); 0 for a blank image."""
    grey = shrunk_to(grey, INK_ASPECT_SIDE)
    ink = subtract_paper(normalize_polarity(trim_page(grey)[0]).astype(np.float32))
    if float(ink.max()) < MIN_CONTRAST:
        return 0.0
    rows, cols = np.nonzero(ink > INK_FRACTION * float(ink.max()))
    top, bottom = np.percentile(rows, [1, 99])
    left, right = np.percentile(cols, [1, 99])
    return float((right - left + 1) / (bottom - top + 1))


def _found_lines(grey: np.ndarray) -> list[TextLine]:
    """The lines ``kind="auto"`` may read the image as: at least two found, each wider
    than twice its height (the parts of a character are not); else none."""
    try:
        lines = segment_lines(grey).lines
    except ImageError:
        return []
    boxes = [line.box for line in lines]
    wide = all(x1 - x0 > LINE_ASPECT * (y1 - y0) for x0, y0, x1, y1 in boxes)
    return lines if len(lines) >= 2 and wide else []
