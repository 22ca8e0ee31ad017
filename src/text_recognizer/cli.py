"""The ``text-recognizer`` command line: a thin Typer layer over the Python API."""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from text_recognizer import __version__
from text_recognizer.errors import (
    ConfigError,
    ImageError,
    TextRecognizerError,
    require_modules,
    with_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from text_recognizer.data import BaseDataModule
    from text_recognizer.decoding.ngram import CharNgramLm
    from text_recognizer.images import Pages
    from text_recognizer.recognizer import Kind as ReadKind
    from text_recognizer.recognizer import Recognizer, Result
    from text_recognizer.training.experiments import JobResult

app = typer.Typer(
    help="Handwritten text recognition: recognise images, build datasets, train and export models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download, build and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(
    help="Show resolved experiment configs and the config schema.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
experiments_app = typer.Typer(
    help="Plan or run a group of experiments listed in one YAML file.", no_args_is_help=True
)
app.add_typer(experiments_app, name="experiments")


class Kind(str, Enum):
    char = "char"
    line = "line"
    paragraph = "paragraph"
    auto = "auto"


class Orientation(str, Enum):
    """``Recognizer(orientation=...)``: which ways round the images may come."""

    upright = "upright"
    sideways = "sideways"
    any = "any"


console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # a log line per error, greppable
log = logging.getLogger("text_recognizer")


LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def configure_logging(verbosity: int) -> None:
    """-q -> errors only, default -> warnings, -v -> info, -vv -> debug (ours, Lightning's and
    Python's warnings)."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for name in ("text_recognizer", *LIGHTNING_LOGGERS, "py.warnings"):
        logging.getLogger(name).setLevel(level)
    # Python warnings (Lightning's among them) as log lines, so that -q hides them too.
    logging.captureWarnings(True)
    # Lightning's own use of a torch API torch has deprecated: nothing a user can change.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )


def follow_our_logging() -> None:
    """Call after the first import of Lightning, which sets its loggers to INFO and gives
    them a console handler of their own: without this, every Lightning line printed twice,
    at any verbosity. Lightning's loggers get our level and print through our handler."""
    level = logging.getLogger("text_recognizer").level
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def fail(error: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(error))}")  # messages may hold [...]
    return typer.Exit(code=getattr(error, "exit_code", 1))  # 130/143: stopped by a signal


def _version(value: bool) -> None:
    if value:
        console.print(f"text-recognizer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More output (-vv for debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    version: Annotated[
        Optional[bool],  # noqa: UP045 - Typer needs Optional on 3.10
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    configure_logging(-1 if quiet else verbose)


# Where data download / data info put and look for a dataset's files.
DataRootOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(help="Data folder (default: $TEXT_RECOGNIZER_DATA, else ./data)."),
]


# Dataset arguments on the command line, as `data.args` in a config.
DataArgOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--data-arg", help="Dataset argument key=value (repeatable)."),
]


def _data_args(data_arg: list[str] | None) -> dict[str, object]:
    """The ``--data-arg key=value`` values, parsed as YAML as ``--set``'s are."""
    from text_recognizer.training.config import apply_overrides

    for item in data_arg or []:
        if "=" not in item:  # apply_overrides' own message has --set's key.path=value
            raise ConfigError(f"--data-arg {item!r} must look like key=value (path=my_lines)")
    return apply_overrides({}, data_arg or [])


# The seed a synthetic dataset's lines are drawn with, as an experiment's `seed`.
DataSeedOption = Annotated[
    int,
    typer.Option(
        min=0, help="Seed of a synthetic dataset (an experiment's seed: its cache is built)."
    ),
]


def print_as_is(text: str) -> None:
    """Print ``text`` to standard output unchanged: a path may hold ``[...]``, which rich
    would read as markup and drop, and a long cache path must stay on one line to be
    copied, where rich would wrap it at the terminal's width."""
    console.print(text, markup=False, soft_wrap=True)


def _build_dataset(
    name: str, root: Path | None, data_arg: list[str] | None, seed: int = 0
) -> BaseDataModule:
    """``data download`` / ``data info``: the dataset named, with its ``--data-arg`` values."""
    from text_recognizer.data import DATASETS

    args = _data_args(data_arg)
    return DATASETS.build(name, {**args, "root": root} if root else args, seed=seed)


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. emnist, synthetic_chars.")],
    root: DataRootOption = None,
    data_arg: DataArgOption = None,
    seed: DataSeedOption = 0,
) -> None:
    """Download (or build, for synthetic datasets) a dataset's files and caches."""
    try:
        module = _build_dataset(name, root, data_arg, seed)
        module.prepare_data()
    except TextRecognizerError as error:
        raise fail(error) from error
    where = getattr(module, "path", module.root)  # a folder dataset is where its labels are
    print_as_is(f"{name}: ready under {where}")


@data_app.command("info")
def data_info(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    root: DataRootOption = None,
    data_arg: DataArgOption = None,
    seed: DataSeedOption = 0,
) -> None:
    """Prepare a dataset if needed and print its sizes, shapes and balance."""
    try:
        module = _build_dataset(name, root, data_arg, seed)
        module.prepare_data()
        module.setup()  # every split, for the sizes
    except TextRecognizerError as error:
        raise fail(error) from error
    print_as_is(repr(module))


@data_app.command("import-page")
def data_import_page(
    sources: Annotated[
        list[Path],
        typer.Argument(help="PAGE XML files, or folders searched for them (an export's folder)."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Folder for the line images and their labels.tsv (new, or without one).",
        ),
    ],
) -> None:
    """Cut the transcribed lines of PAGE XML pages (Transkribus, eScriptorium, or
    recognize --page-xml corrected) into a folder that --data folder reads."""
    from text_recognizer.data.page_lines import import_page_lines

    try:
        report = import_page_lines(sources, out)
    except TextRecognizerError as error:
        raise fail(error) from error
    print_as_is(report.summary())
    print_as_is(
        f"Measure a model on them: text-recognizer evaluate default --data folder "
        f"--data-arg path={out} --split all"
    )


@data_app.command("list")
def data_list() -> None:
    """List the dataset names a config may use."""
    from text_recognizer.data import DATASETS

    for name in DATASETS.names():
        console.print(name)


@config_app.command("show")
def config_show(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    set_: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--set", help="Dotted override, e.g. --set optimizer.lr=3e-4 (repeatable)."),
    ] = None,
) -> None:
    """Print the experiment config with defaults filled in and overrides applied."""
    from text_recognizer.training.config import dump_config, load_config

    try:
        print(dump_config(load_config(experiment, set_ or [])), end="")
    except TextRecognizerError as error:
        raise fail(error) from error


@config_app.command("schema")
def config_schema() -> None:
    """Print the documented schema of every experiment key (Markdown)."""
    from text_recognizer.training.config import schema_reference

    print(schema_reference())


# Line decoding options, the same for `recognize` and `evaluate`.
BeamOption = Annotated[
    int, typer.Option(min=1, help="Lines: 1 decodes greedily; N > 1 runs a CTC beam search of N.")
]
LmOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        help="Lines: character LM for the beam search: 'default' (counted from the shipped "
        "corpus on first use), 'brown' (from NLTK's Brown corpus) or an ARPA file."
    ),
]
LmWeightOption = Annotated[float, typer.Option(help="Weight of the LM's scores.")]
WidthSearchOption = Annotated[
    bool,
    typer.Option(
        help="Lines: read each line at 0.85x, 1x and 1.25x its width and keep the most "
        "confident reading (more accurate on unusually narrow or wide hands, 3x the time)."
    ),
]
OrientationOption = Annotated[
    Optional[Orientation],  # noqa: UP045
    typer.Option(
        help="Which ways round images may come: sideways (the default: a line or page "
        "lying on its side, a quarter turn either way, is turned upright; an upright "
        "one costs a quick look), any (also upside down: each line and page is read "
        "turned half a turn too, the surer reading kept; 2x the time), upright (read "
        "as given).",
        show_default=False,
    ),
]
UpsideDownOption = Annotated[
    bool,
    typer.Option(
        "--upside-down",
        help="Short for --orientation any: also read each line and page turned half a "
        "turn and keep the surer reading (pages scanned the wrong way round); 2x the time.",
    ),
]
ThreadsOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="Threads ONNX Runtime runs each model call on (0: one per core); 1 leaves the "
        "other cores to other work.",
    ),
]
DeslantOption = Annotated[
    bool,
    typer.Option(
        help="Lines: shear a line leaning far left or right to the lean the model reads best."
    ),
]

MaxImageMegapixelsOption = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option(
        min=0.001,
        help="An image (or a document's page) of more megapixels is refused before it is "
        "decoded, as a decompression bomb would be; default: 40 (a 600-dpi A3 scan is 70).",
        show_default=False,
    ),
]


def image_pixels(megapixels: float | None) -> int | None:
    """``--max-image-megapixels`` in pixels (None: the default). Pillow opens no image past
    twice its ``MAX_IMAGE_PIXELS`` (179 million): asked for more, this process (the CLI's
    own) lifts Pillow's cap to it, as our own limit, checked first, guards the same."""
    if megapixels is None:
        return None
    pixels = round(megapixels * 1_000_000)
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and pixels > 2 * Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = pixels // 2 + 1
    return pixels


def open_recognizer(
    model: str,
    beam: int,
    lm: str | CharNgramLm | None,
    lm_weight: float,
    width_search: bool,
    deslant: bool,
    threads: int = 0,
    upside_down: bool = False,
    orientation: Orientation | None = None,
    max_image_megapixels: float | None = None,
) -> Recognizer:
    """The Recognizer that ``recognize`` and ``serve`` read with; a bad option fails cleanly."""
    from text_recognizer.recognizer import Recognizer, check_orientation

    asked = orientation.value if orientation is not None else None
    try:
        chosen = check_orientation(asked, upside_down)
    except ConfigError:  # the one clash, said in the options' names, not the arguments'
        raise fail(
            ConfigError(
                f"--upside-down is --orientation any, which contradicts --orientation "
                f"{asked}: give one of them"
            )
        ) from None
    try:
        return Recognizer.from_pretrained(
            model,
            threads=threads,
            orientation=chosen,
            beam_size=beam,
            lm=lm,
            lm_weight=lm_weight,
            width_search=width_search,
            deslant=deslant,
            max_image_pixels=image_pixels(max_image_megapixels),
        )
    except TextRecognizerError as error:
        raise fail(error) from error


@app.command()
def recognize(
    images: Annotated[
        list[Path], typer.Argument(help="Image files to read; '-' reads one from standard input.")
    ],
    model: Annotated[
        str,
        typer.Option(
            help="Bundled model (default: all; line; char), or a .onnx/.ckpt path or run folder."
        ),
    ] = "default",
    kind: Annotated[
        Kind,
        typer.Option(
            help="char, line, paragraph (a page of lines: each line is found, then read), "
            "or auto (wide: a line; else several lines found: a paragraph; else a char)."
        ),
    ] = Kind.auto,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
    beam: BeamOption = 1,
    lm: LmOption = None,
    lm_weight: LmWeightOption = 1.0,
    width_search: WidthSearchOption = False,
    deslant: DeslantOption = True,
    threads: ThreadsOption = 0,
    orientation: OrientationOption = None,
    upside_down: UpsideDownOption = False,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="Images read together (e.g. 256): their lines go through the network 32 at "
            "a time, sorted by width (~30 % faster on many lines); a doubtful line may then "
            "read slightly differently than alone.",
        ),
    ] = 1,
    page_xml: Annotated[
        Path | None,
        typer.Option(
            "--page-xml",
            file_okay=False,
            help="Also write each image's reading as PAGE XML into this folder (DIR/<image "
            "name>.xml: lines with their polygons, baselines, words, text and confidence), "
            "as Transkribus, eScriptorium and Kraken read it.",
        ),
    ] = None,
    max_image_megapixels: MaxImageMegapixelsOption = None,
) -> None:
    """Read handwritten characters, lines or paragraphs from images.

    Prints a row per image, tab-separated: the image, the text read and its confidence
    (the model's probability of that text); a page gets a row per line, named
    image:1, image:2, ... --json gives an object per image with where each line and
    word is. The demo command reads the bundled sample images beside their truth.
    """
    if page_xml is not None:
        _check_page_xml_names(images)
        from text_recognizer.files import check_folder_writable

        try:  # before any image is read, not after the first
            check_folder_writable(page_xml, "PAGE XML", "--page-xml")
        except ConfigError as error:
            raise fail(error) from error
    if kind == Kind.char:
        _check_no_line_options(beam, lm, width_search, deslant, upside_down, orientation)
    recognizer = open_recognizer(
        model,
        beam,
        lm,
        lm_weight,
        width_search,
        deslant,
        threads,
        upside_down,
        orientation,
        max_image_megapixels,
    )
    try:
        recognizer.check_kind(kind.value)
    except TextRecognizerError as error:
        raise fail(error) from error
    failures = 0
    written: dict[str, tuple[Path, int | None]] = {}  # PAGE file -> the image and page in it
    for reading in _read_in_batches(recognizer, images, kind.value, batch):
        path, result, page = reading.path, reading.outcome, reading.page
        if page_xml is not None and not isinstance(result, TextRecognizerError):
            result = _write_page_xml(page_xml, reading, result, written)
        if isinstance(result, TextRecognizerError):
            failures += 1
            if as_json:
                where = {"image": str(path)} if page is None else {"image": str(path), "page": page}
                print(json.dumps({**where, "error": str(result)}))
            else:
                err_console.print(f"[red]{escape(str(result))}[/]")  # it names the file
            continue
        name = str(path) if page is None else f"{path} page {page}"
        if as_json:
            print(json.dumps({"image": str(path), **result.to_dict()}))
        elif result.lines:  # a paragraph: one row per line, numbered from 1
            for number, line in enumerate(result.lines, 1):
                print(f"{name}:{number}\t{line.text}\t{line.confidence:.3f}")
        else:  # plain print: rows stay one per line and "[b]" is not read as markup
            print(f"{name}\t{result.text}\t{result.confidence:.3f}")
    if failures:
        raise typer.Exit(code=1)


def _check_no_line_options(
    beam: int,
    lm: str | None,
    width_search: bool,
    deslant: bool,
    upside_down: bool,
    orientation: Orientation | None,
) -> None:
    """``--kind char`` with options that only change how lines are read: refused, as they
    would change nothing (and ``--lm default`` would count its LM, ~10 s, for nothing)."""
    given = [
        option
        for option, used in (
            ("--beam", beam != 1),
            ("--lm", lm is not None),
            ("--width-search", width_search),
            ("--no-deslant", not deslant),
            ("--upside-down", upside_down),
            ("--orientation any", orientation == Orientation.any),
        )
        if used
    ]
    if given:
        raise fail(
            ConfigError(
                f"{', '.join(given)} {'change' if len(given) > 1 else 'changes'} how lines "
                "and pages are read, and --kind char reads each image as one character, as "
                f"given: drop {'them' if len(given) > 1 else 'it'}, or let --kind auto tell "
                "characters from lines"
            )
        )


def _write_page_xml(
    folder: Path, reading: _Reading, result: Result, written: dict[str, tuple[Path, int | None]]
) -> Result | TextRecognizerError:
    """Write ``result`` as ``folder/<image name>.xml``, a page of several as
    ``<image name>_page<N>.xml`` (N padded so the files sort in page order); a file
    already written for another image or page is an error, never overwritten. A file
    that cannot be written (its name too long, a folder of that name in the way) is that
    image's error: the other images are still read and written."""
    from text_recognizer.page_xml import write_page_xml

    path, page = reading.path, reading.page
    name = _xml_stem(path)
    stem = name if page is None else f"{name}_page{page:0{len(str(reading.pages))}d}"
    what = f"{path} page {page}" if page else str(path)
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:  # bytes no encoding was given for: XML holds only text
        return ImageError(
            f"{what}: its file name is not UTF-8 text, so no PAGE XML file can name it as "
            "its image: rename the file"
        )
    source = (path if path == STDIN else path.resolve(), page)
    earlier = written.setdefault(f"{stem}.xml", source)
    if earlier != source:
        before = f"{earlier[0]} page {earlier[1]}" if earlier[1] else str(earlier[0])
        return ImageError(
            f"{what}: its PAGE XML file, {folder / stem}.xml, holds {before} already; "
            "read them with --page-xml into different folders"
        )
    try:
        write_page_xml(folder / f"{stem}.xml", result, path.name)
    except OSError as error:
        return ImageError(
            f"{what}: cannot write its PAGE XML file, {folder / stem}.xml "
            f"({error.strerror or type(error).__name__})"
        )
    return result


def _check_page_xml_names(images: list[Path]) -> None:
    """Two images of one name would write one PAGE XML file: refused before any work."""
    seen: dict[str, Path] = {}
    for image in images:
        stem = _xml_stem(image)
        if stem in seen and seen[stem].resolve() != image.resolve():
            raise fail(
                ValueError(
                    f"{seen[stem]} and {image} would both be written as {stem}.xml: "
                    "read them with --page-xml into different folders"
                )
            )
        seen[stem] = image


def _xml_stem(image: Path) -> str:
    """The PAGE XML file's name for an image, without ``.xml``: standard input's is
    ``stdin`` (``-.xml`` would read as an option to ``rm`` and most tools)."""
    return "stdin" if image == STDIN else image.stem


#: The image name that reads standard input (``cat scan.png | text-recognizer recognize -``).
STDIN = Path("-")


class _Reading(NamedTuple):
    """What ``recognize`` prints for an image, or for one page of a file of several."""

    path: Path
    outcome: Result | TextRecognizerError
    page: int | None = None  # the page's number, in a file of several pages
    pages: int = 1  # how many pages the file has


def _read_in_batches(
    recognizer: Recognizer,
    images: list[Path],
    kind: ReadKind,
    size: int,
    stdin: bytes | None = None,
) -> Iterator[_Reading]:
    """Each image with its result or its error, in order, ``size`` images per
    ``recognize_batch`` call; every page of a multi-page file, each with its number. A
    batch that fails is read again one image at a time, so that only the bad image is
    lost. ``-`` stands for ``stdin``'s bytes. Each file is opened once; only a TIFF or a
    PDF of one page read in batches of several is opened again when its batch is read
    (kept open, every image waiting for its batch would hold a file)."""
    if stdin is None and STDIN in images:
        stdin = sys.stdin.buffer.read()
    pending: list[Path] = []
    for path in images:
        source = stdin if path == STDIN and stdin is not None else path
        pages = _open_document(source, size, recognizer.max_image_pixels)
        if pages is None:
            pending.append(path)
            if len(pending) == size:
                yield from _read_batch(recognizer, pending, kind, stdin)
                pending = []
            continue
        yield from _read_batch(recognizer, pending, kind, stdin)
        pending = []
        with pages:
            yield from _read_pages(recognizer, path, pages, kind)
    yield from _read_batch(recognizer, pending, kind, stdin)


def _open_document(source: Path | bytes, size: int, max_image_pixels: int) -> Pages | None:
    """``source`` opened where it may hold several pages (a TIFF or a PDF) and is read
    from this one open: where it has several, or is read alone (``size`` 1). Else None:
    it is read as any image is, by ``recognize_batch``, which says what is wrong with it.
    Each page is held to ``max_image_pixels``, as the recognizer holds an image."""
    from text_recognizer.images import Pages, may_hold_pages

    if not may_hold_pages(source):
        return None
    try:
        pages = Pages(source, max_image_pixels=max_image_pixels)
    except TextRecognizerError:
        return None
    if len(pages) == 1 and size > 1:
        pages.close()
        return None
    return pages


def _read_pages(
    recognizer: Recognizer, path: Path, pages: Pages, kind: ReadKind
) -> Iterator[_Reading]:
    """Each page of the open file ``path``, numbered where it has several (whose errors
    name their page); a file of one page as any image is read."""
    several = len(pages) > 1
    name = "" if several else str(path)
    try:
        for page, outcome in enumerate(recognizer.recognize_pages(pages, kind), 1):
            if isinstance(outcome, TextRecognizerError):
                outcome = with_name(outcome, name)
            yield _Reading(path, outcome, page if several else None, len(pages))
    except TextRecognizerError as error:
        yield _Reading(path, with_name(error, name))


def _read_batch(
    recognizer: Recognizer, chunk: list[Path], kind: ReadKind, stdin: bytes | None
) -> Iterator[_Reading]:
    """``chunk`` read in one ``recognize_batch`` call; one at a time where that fails."""
    if not chunk:
        return
    sources = [stdin if path == STDIN and stdin is not None else path for path in chunk]
    try:
        results = recognizer.recognize_batch(sources, kind=kind)
    except TextRecognizerError as error:
        if len(chunk) == 1:
            yield _Reading(chunk[0], with_name(error, str(chunk[0])))
            return
        for path in chunk:
            yield from _read_batch(recognizer, [path], kind, stdin)
        return
    for path, result in zip(chunk, results, strict=True):
        yield _Reading(path, result)


@app.command()
def demo(
    model: Annotated[str, typer.Option(help="Bundled model name or model path.")] = "default",
) -> None:
    """Recognise the bundled sample images and print predictions beside the truth."""
    from text_recognizer.demo import run_demo

    try:
        table, summary = run_demo(model)
    except TextRecognizerError as error:
        raise fail(error) from error
    out = Table(title="text-recognizer demo: bundled samples")
    for column in table[0]:
        out.add_column(column)
    for row, after in zip(table[1:], [*table[2:], None], strict=True):
        # A rule under each kind's samples; a page's lines stay together.
        ends = after is not None and after[1] not in ("", row[1] or "paragraph")
        out.add_row(*(escape(cell) for cell in row), end_section=ends)  # a reading may hold "[b]"
    console.print(out)
    console.print(summary)


#: What the HTTP service needs beyond an inference-only install (import names).
SERVING_MODULES = ("fastapi", "uvicorn", "python_multipart", "prometheus_client")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 opens it to other machines.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[
        str, typer.Option(help="Bundled model (default: all; line; char), or a model path.")
    ] = "default",
    beam: BeamOption = 1,
    lm: LmOption = None,
    lm_weight: LmWeightOption = 1.0,
    width_search: WidthSearchOption = False,
    deslant: DeslantOption = True,
    threads: Annotated[
        int,
        typer.Option(
            min=0,
            help="Threads ONNX Runtime runs each model call on, per worker (0: the cores "
            "shared out between the workers).",
        ),
    ] = 0,
    orientation: OrientationOption = None,
    upside_down: UpsideDownOption = False,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.01, help="Larger request bodies are refused (413).")
    ] = 10.0,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Images read at once, each worker with its own copy of the models (~11 MB); "
            "default: one per core.",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        int,
        typer.Option(
            min=0,
            help="Requests that may wait for a free worker, counted from when their upload "
            "starts; more get 503 (Retry-After).",
        ),
    ] = 16,
    max_wait: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Seconds a request may wait for a free worker before it gets 503.",
        ),
    ] = 30.0,
    upload_timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            min=0.01,
            help="Seconds an upload may send nothing (or under 1 KB a second) before it gets "
            "408 and its place is freed; default: --max-wait's.",
            show_default=False,
        ),
    ] = None,
    max_pages: Annotated[
        int,
        typer.Option(
            min=1, help="A file of more pages (a multi-page TIFF) is refused (422) unread."
        ),
    ] = 50,
    max_megapixels: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            min=0.01,
            help="A file whose pages hold more pixels together is refused (422) unread; "
            "default: 200, or --max-image-megapixels where that is more.",
            show_default=False,
        ),
    ] = None,
    max_image_megapixels: MaxImageMegapixelsOption = None,
) -> None:
    """Serve the recognizer over HTTP: web page, JSON API, metrics."""
    if max_megapixels is not None and max_megapixels < (max_image_megapixels or 0):
        raise fail(
            ConfigError(
                f"--max-megapixels {max_megapixels:g} (a file's pages together) is less than "
                f"--max-image-megapixels {max_image_megapixels:g}: an image that may be read "
                "would be refused; raise --max-megapixels too"
            )
        )
    try:
        require_modules(SERVING_MODULES, "the HTTP service needs", "serve")
    except TextRecognizerError as error:
        raise fail(error) from error
    import uvicorn

    from text_recognizer.serving.app import create_app

    _check_address(host, port)  # before loading models, and before saying "serving on"
    # The cores this process may run on (a container's or taskset's share), not the machine's.
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    workers = workers or cores
    if threads == 0 and workers > 1:  # workers each taking every core would contend
        threads = max(1, cores // workers)
    options = (
        lm_weight,
        width_search,
        deslant,
        threads,
        upside_down,
        orientation,
        max_image_megapixels,
    )
    first = open_recognizer(model, beam, lm, *options)
    # One LM for all the workers, loaded once: a search only reads it (flashlight-text's
    # KenLM; each decode keeps its own states), and each copy cost ~15 MB.
    others = [open_recognizer(model, beam, first.lm, *options) for _ in range(workers - 1)]
    recognizers = [first, *others]
    if host not in LOOPBACK:
        err_console.print(
            f"[yellow]warning:[/] listening on {escape(host)}: other machines can reach this "
            "service, and it has no authentication; put it behind a proxy that has"
        )
    shown = f"[{host}]" if ":" in host else host
    pool = "1 worker" if workers == 1 else f"{workers} workers"
    if threads:
        pool += f", {threads} ONNX Runtime thread{'s' if threads > 1 else ''} each"
    else:
        pool += ", ONNX Runtime on every core"
    console.print(f"serving on http://{shown}:{port}/ ({pool}; Ctrl+C stops)")
    verbose = logging.getLogger("text_recognizer").getEffectiveLevel() <= logging.INFO
    app = create_app(
        recognizers,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        queue=queue,
        max_wait=max_wait,
        max_pages=max_pages,
        max_pixels=None if max_megapixels is None else int(max_megapixels * 1_000_000),
        upload_timeout=upload_timeout,
    )
    if verbose:  # uvicorn's own log, every request's line included
        uvicorn.run(app, host=host, port=port, log_level="info")
    else:
        uvicorn.run(app, host=host, port=port, log_level=None, log_config=_quiet_uvicorn_log())


class _ShutdownWait(logging.Filter):
    """Of uvicorn's INFO lines, only its word that Ctrl+C waits for the requests under way
    (an upload may take ``--upload-timeout`` seconds to be given up): without it, Ctrl+C
    seemed to do nothing. A second Ctrl+C cancels what was under way: as asked, so
    without a traceback for each."""

    def filter(self, record: logging.LogRecord) -> bool:
        import asyncio

        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            return False
        message = record.getMessage()
        if record.levelno >= logging.WARNING:  # the lifespan's, as text
            return not message.rstrip().endswith("CancelledError")
        return "CTRL+C to force quit" in message


def _quiet_uvicorn_log() -> dict[str, object]:
    """uvicorn's logging config, its warnings and errors only (no line per request), and
    the line saying that Ctrl+C waits for the requests under way."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["shutdown_wait"] = {"()": _ShutdownWait}
    config["loggers"]["uvicorn.error"] = {"level": "INFO", "filters": ["shutdown_wait"]}
    config["loggers"]["uvicorn.access"]["level"] = "WARNING"
    return config


def _check_address(host: str, port: int) -> None:
    """Fail cleanly where the service could not listen: an unknown host, a port in use."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise fail(OSError(f"cannot listen on {host}: {error.strerror or error}")) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            raise fail(
                OSError(
                    f"cannot listen on {host}:{port}: {error.strerror or error}; "
                    "choose another --port (or stop what is using it)"
                )
            ) from None


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="Experiment YAML file.")] = None,  # noqa: UP045
    set_: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--set", help="Dotted override, e.g. --set optimizer.lr=3e-4 (repeatable)."),
    ] = None,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Run folder (or its last.ckpt) to resume exactly where it stopped; 'last': the "
            "newest run of the given config's experiment (of any experiment without a config)."
        ),
    ] = None,
) -> None:
    """Train a model from an experiment config with Lightning.

    Each run writes runs/<group>/<name>/<timestamp>/ (under $TEXT_RECOGNIZER_RUNS where
    set): config.yaml, checkpoints/best.ckpt and last.ckpt, metrics.csv, TensorBoard
    events and summary.json, whose run_dir is printed at the end. The configs are the
    repository's configs/ (docs/training.md); text-recognizer export RUN -o model.onnx
    makes a run's best checkpoint a model that recognize --model reads.
    """
    from text_recognizer.training.config import load_config
    from text_recognizer.training.experiments import end_with_parent
    from text_recognizer.training.run import latest_run, resume_run, train_from_config

    follow_our_logging()
    end_with_parent()  # a job of `experiments run`: it stops when the group's process dies

    try:
        if resume is not None and str(resume) == "last":
            # The config (and --set group=/name=) only say which experiment; the run keeps its own.
            experiment = load_config(config, set_ or []) if config is not None else None
            resume = latest_run(experiment.group, experiment.name) if experiment else latest_run()
            set_ = [item for item in set_ or [] if item.split("=")[0] not in ("group", "name")]
        if resume is not None:
            summary = resume_run(resume, overrides=set_ or [])
        elif config is not None:
            summary = train_from_config(config, overrides=set_ or [])
        else:
            raise fail(ValueError("give an experiment config, or --resume RUN_DIR"))
    except TextRecognizerError as error:
        raise fail(error) from error
    except OSError as error:  # a full disk, a read-only runs folder
        raise fail(OSError(cannot_write_run(error))) from error
    console.print_json(json.dumps(summary))


def cannot_write_run(error: OSError) -> str:
    """What to do when the run folder cannot be written: free space only helps a full disk."""
    path = error.filename2 or error.filename  # a move names its target second
    where = f" ({path})" if path else ""
    if error.errno == errno.ENOSPC:
        then = "free space there, or set TEXT_RECOGNIZER_RUNS to a folder on another disk"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        then = "set TEXT_RECOGNIZER_RUNS to a folder you can write to"
    else:
        then = "check that folder, or set TEXT_RECOGNIZER_RUNS to another"
    return f"cannot write the run{where}: {error.strerror or error}; {then}"


@experiments_app.command("plan")
def experiments_plan(
    group: Annotated[Path, typer.Argument(help="Experiment group YAML file.")],
) -> None:
    """Print one shell-safe train command per experiment (e.g. for `| parallel -j2`)."""
    from text_recognizer.training.experiments import plan_group

    try:
        planned = plan_group(group)
    except TextRecognizerError as error:
        raise fail(error) from error
    for experiment in planned:
        print(shlex.join(experiment.command()))


@experiments_app.command("run")
def experiments_run(
    group: Annotated[Path, typer.Argument(help="Experiment group YAML file.")],
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Experiments run at the same time.")
    ] = 1,
    resume: Annotated[
        bool,
        typer.Option(
            help="Finish a stopped group: finished experiments are kept, stopped ones go on "
            "from their last checkpoint, the rest start."
        ),
    ] = False,
) -> None:
    """Run every experiment of a group, N at a time, then print one table of results.

    Each run gets one GPU when there are any. Exits with 1 if any experiment failed."""
    from text_recognizer.training.experiments import GroupInterruptedError, run_group

    follow_our_logging()

    def say(line: str) -> None:
        err_console.print(line, markup=False)

    quiet = not log.isEnabledFor(logging.WARNING)  # -q: failures only
    try:
        results = run_group(
            group,
            jobs=jobs,
            on_event=(lambda line: None) if quiet else say,
            resume=resume,
            on_problem=say,
        )
    except GroupInterruptedError as error:
        _print_group_table(group, error.results)
        raise fail(error) from None
    except TextRecognizerError as error:
        raise fail(error) from error
    _print_group_table(group, results)
    if any(not result.ok for result in results):
        failed = [result for result in results if not result.ok]
        if any(result.resumable for result in failed):
            err_console.print(
                f"stopped experiments go on from their last checkpoint with: "
                f"text-recognizer experiments run {shlex.quote(str(group))} --resume",
                markup=False,
            )
        raise typer.Exit(code=1)


def _print_group_table(group: Path, results: Sequence[JobResult]) -> None:
    from text_recognizer.training.experiments import summary_rows

    header, *rows = summary_rows(results)
    table = Table(title=f"experiment group {group}")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row, style=None if row[1].startswith("ok") else "red")
    console.print(table)


@app.command()
def sweep(
    path: Annotated[Path, typer.Argument(help="Sweep YAML file (docs/training.md#sweeps).")],
    samples: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Trials (grid: rounds of the grid); default: the file's."),
    ] = None,
    concurrent: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Trials at the same time; default: the file's."),
    ] = None,
    address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="A running Ray cluster (ray://host:10001 or auto); default: local."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Finish a stopped sweep: unfinished and failed trials run again.")
    ] = False,
) -> None:
    """Tune hyperparameters with Ray Tune: grid, random, Bayesian or PBT."""
    try:
        from text_recognizer.training.sweep import (
            UNFINISHED,
            SweepInterruptedError,
            best_command,
            load_sweep,
            resume_command,
            run_sweep,
        )
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAINING_MODULES:
            raise
        # [sweep] brings [train] with it: one install, not [train] and then [sweep].
        raise fail(
            TextRecognizerError(
                f"sweeps need {error.name}, one of the training dependencies, and Ray Tune: "
                "pip install 'text-recognizer[sweep]'"
            )
        ) from None

    follow_our_logging()
    try:
        metric, rows = run_sweep(path, samples, concurrent, address, resume)
    except TextRecognizerError as error:
        raise fail(error) from error
    keys = list(rows[0]["params"]) if rows else []
    table = Table(title=f"sweep {path}, best first")
    for column in ["trial", *keys, f"best {metric}", "epochs", "status"]:
        table.add_column(column, overflow="fold")
    for row in rows:
        best = "-" if row["best"] is None else f"{row['best']:.4f}"
        values = ["-" if row["params"][k] is None else format_param(row["params"][k]) for k in keys]
        table.add_row(row["trial"] or "-", *values, best, str(row["epochs"]), row["status"])
    console.print(table)
    from text_recognizer.paths import runs_dir

    sweep_file = load_sweep(path)  # read by run_sweep already
    # Named when every trial failed too (it was taken from the best trial's run folder):
    # sweep.json holds the tracebacks.
    folder = Path(os.path.relpath(runs_dir() / sweep_file.sweep))
    console.print(f"runs: {folder}/<trial>/<time>/; this table: {folder}/sweep.json")
    unfinished = [row for row in rows if row["status"] in UNFINISHED]
    if not unfinished and (command := best_command(sweep_file, rows)):
        console.print("the best trial's values, trained at full length:", style="bold")
        console.print(command, markup=False, soft_wrap=True)
    if diverged := [row["trial"] for row in rows if row["status"] == "diverged"]:
        err_console.print(
            f"{', '.join(diverged)}: {metric} was never a finite number (NaN or inf): "
            "their values make training diverge",
            markup=False,
        )
    failed = [row for row in rows if row["error"]]
    by_error: dict[str, list[str]] = {}
    for row in failed:
        by_error.setdefault(row["error"], []).append(row["trial"] or "-")
    if failed:  # Ray printed the tracebacks as they came; here each trial's own message
        many = "every trial" if len(failed) == len(rows) else f"{len(failed)} of {len(rows)} trials"
        err_console.print(f"[bold red]{many} failed:[/]")
        for message, trials in by_error.items():
            err_console.print(f"  {', '.join(trials)}: {escape(message)}")
    if unfinished:
        done = len(rows) - len(unfinished)
        what = f"{done} of {len(rows)} trials finished or failed"
        from text_recognizer.training import sweep as sweeps

        sigterm = sweeps.stopped_by == "SIGTERM"
        raise fail(SweepInterruptedError(what, resume_command(path, address), sigterm))
    if failed:
        raise typer.Exit(code=1)


def format_param(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command()
def evaluate(
    model: Annotated[
        str,
        typer.Argument(
            help="Run folder, .ckpt, .onnx, or a bundled model (default: all; line; char)."
        ),
    ],
    data: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Dataset name (`text-recognizer data list`); default: the run's own."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="train, val, test, or all (every split the dataset has).")
    ] = "test",
    data_arg: DataArgOption = None,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=0, help="Dataset seed (synthetic data); default: the run's, else 0."),
    ] = None,
    worst: Annotated[int, typer.Option(min=0, help="How many worst samples to list.")] = 10,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Evaluate only the first N samples."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the full report as JSON here."),
    ] = None,
    beam: BeamOption = 1,
    lm: LmOption = None,
    lm_weight: LmWeightOption = 1.0,
    width_search: WidthSearchOption = False,
) -> None:
    """Score a model on a dataset split: accuracy or CER/WER, and the worst samples.

    A run folder is scored on its own dataset unless --data says otherwise. Your own
    labelled images: --data folder --data-arg path=DIR --split all. Pages (iam_paragraphs,
    synthetic_paragraphs, or a folder with --data-arg kind=paragraph) are read as
    recognize --kind paragraph reads them, and the lines found are counted."""
    from text_recognizer.decoding.decoder import CtcDecoder
    from text_recognizer.evaluate import check_evaluation
    from text_recognizer.evaluate import evaluate as run_evaluation
    from text_recognizer.files import check_writable

    try:
        if output is not None:
            check_writable(output)  # not after the whole evaluation has run
        args = _data_args(data_arg)
        check_evaluation(model, data, args, beam, lm)  # before an LM is counted (~40 s)
        decoder = CtcDecoder.from_options(beam, lm, lm_weight)
        report = run_evaluation(
            model,
            data,
            split,
            args,
            batch_size=batch_size,
            worst=worst,
            limit=limit,
            seed=seed,
            decoder=decoder,
            width_search=width_search,
        )
    except TextRecognizerError as error:
        raise fail(error) from error
    counts = ("errors", "lines_found", "lines_truth")
    metrics = ", ".join(
        f"{k}={int(v)}" if k in counts else f"{k}={v:.4f}" for k, v in report.metrics.items()
    )
    samples = f"{report.num_samples} {'pages' if report.kind == 'paragraph' else 'samples'}"
    if report.kind != "char":
        samples += f", {report.decoder}"
    print(f"{report.model} on {report.data}/{split} ({samples}): {metrics}")
    if report.worst:
        pages = report.kind == "paragraph"
        named = any(sample.name for sample in report.worst)
        first = "page" if pages else "image" if named else "index"
        what = "pages" if pages else "samples"
        table = Table(title=f"{len(report.worst)} worst {what}", show_lines=pages)
        for column in (first, "truth", "prediction", *(["lines"] if pages else []), "confidence",
                       "CER"):  # fmt: skip
            table.add_column(column, overflow="fold")
        for sample in report.worst:
            # A page's lines one under another, and how many were found of how many; a
            # line's text quoted, so that its spaces show.
            texts = [sample.truth, sample.prediction]
            found = sample.prediction.count("\n") + 1 if sample.prediction else 0
            lines = [f"{found}/{sample.truth.count(chr(10)) + 1}"] if pages else []
            table.add_row(
                sample.name or str(sample.index),
                *(texts if pages else [repr(text) for text in texts]),
                *lines,
                f"{sample.confidence:.3f}",
                f"{sample.cer:.3f}",
            )
        console.print(table)
    if output is not None:
        try:
            report.write_json(output)
        except OSError as error:  # a disk that filled up meanwhile: the figures are above
            raise fail(
                ConfigError(
                    f"cannot write {output} ({error.strerror or type(error).__name__}); the "
                    "figures are printed above: choose another --output to keep them as JSON"
                )
            ) from None
        print(f"wrote {output}")


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="Run folder or .ckpt file.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The .onnx file to write (no suffix: .onnx added; another suffix is "
            "refused), its .json beside it; an existing folder gets model.onnx and "
            "model.json.",
        ),
    ],
) -> None:
    """Export a trained checkpoint to ONNX plus a JSON metadata file."""
    from text_recognizer.export import export_files

    follow_our_logging()

    try:
        *graphs, meta_file = export_files(source, output)
    except TextRecognizerError as error:
        raise fail(error) from error
    console.print(f"wrote {', '.join(map(str, graphs))} and {meta_file}")


#: What ``pip install text-recognizer`` leaves out and ``[train]`` adds (import names).
TRAINING_MODULES = frozenset(
    {"torch", "lightning", "torchmetrics", "h5py", "scipy", "omegaconf", "onnx", "yaml",
     "tensorboard"}
)  # fmt: skip


def run() -> None:
    """The ``text-recognizer`` command. Reading images needs only the inference
    dependencies; a command that needs the training ones says how to get them."""
    try:
        app()
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAINING_MODULES:
            raise
        message = (
            f"this needs {error.name}, one of the training dependencies that an "
            "inference-only install leaves out: pip install 'text-recognizer[train]'"
        )
        err_console.print(f"[bold red]error:[/] {escape(message)}")
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    run()
