"""The documentation says only what is true: the generated config reference is current, and
every command, option, file, table and config excerpt the pages name exists as written."""

from __future__ import annotations

import inspect
import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from text_recognizer.cli import app
from text_recognizer.training.config import schema_reference

PAGES = [Path("README.md"), *sorted(Path("docs").rglob("*.md"))]
SHELL_FENCES = ("", "bash", "sh", "text", "console")
# Where a documented command line ends: the shell takes over.
SHELL_STOPS = {"|", ">", ">>", "<", ";", "&&", "||", "&", "2>&1"}


def test_config_reference_is_current() -> None:
    """docs/config-reference.md is generated; regenerate it when the schema changes:
    text-recognizer config schema > docs/config-reference.md"""
    assert Path("docs/config-reference.md").read_text().strip() == schema_reference().strip()


def shell_lines(text: str) -> Iterator[str]:
    """Command lines: those of shell and text fences (``$ `` prompts dropped, ``\\``
    continuations joined) and inline code spans that run a command."""
    fence: str | None = None
    pending = ""
    paragraph: list[str] = []
    for line in [*text.splitlines(), ""]:
        if fence is None and line.strip() and not line.startswith("```"):
            paragraph.append(line)  # a code span may go on on the next line
            continue
        prose = " ".join(paragraph)
        paragraph = []
        yield from re.findall(r"`([^`]*(?:text-recognizer |python benchmarks/)[^`]*)`", prose)
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence in SHELL_FENCES:
            line = line.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            yield pending + line
            pending = ""


def documented_commands() -> Iterator[tuple[Path, str, list[str]]]:
    """Each ``text-recognizer ...`` command line in the pages: its words after the program."""
    for page in PAGES:
        for line in shell_lines(page.read_text()):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # prose in a code span, not a command
                continue
            for start, word in enumerate(words):
                if word != "text-recognizer":
                    continue
                command: list[str] = []
                for argument in words[start + 1 :]:
                    if argument in SHELL_STOPS:
                        break
                    command.append(argument)
                yield page, line, command


def test_documented_commands_and_options_exist() -> None:
    """Every subcommand and option a page gives the CLI is one it has (a renamed or removed
    option fails here, not in a reader's shell)."""
    root = typer.main.get_command(app)
    commands = list(documented_commands())
    assert len(commands) > 100  # the pages were read
    problems = []
    for page, line, words in commands:
        command: Any = root
        position = 0
        while hasattr(command, "commands") and position < len(words):
            word = words[position]
            position += 1
            if word.startswith("-"):
                continue  # the program's own options: -v, -q, --help
            if word not in command.commands:
                problems.append(f"{page}: no command {word!r}: {line}")
                break
            command = command.commands[word]
        options = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
        for word in words[position:]:
            option = word.split("=")[0]
            if option.startswith("-") and option != "-" and option not in options:
                problems.append(f"{page}: {command.name} has no option {option}: {line}")
    assert not problems, "\n".join(problems)


def benchmark_source(script: Path) -> str:
    """A benchmark's source and that of the benchmarks it imports its arguments from."""
    source = script.read_text()
    siblings = re.findall(r"^from (\w+) import", source, re.MULTILINE)
    return source + "".join(
        (script.parent / f"{name}.py").read_text()
        for name in siblings
        if (script.parent / f"{name}.py").exists()
    )


def test_documented_benchmark_scripts_and_options_exist() -> None:
    problems = []
    found = 0
    for page in PAGES:
        for line in shell_lines(page.read_text()):
            for match in re.finditer(r"python (benchmarks/\w+\.py)([^|;#`]*)", line):
                found += 1
                script = Path(match.group(1))
                if not script.exists():
                    problems.append(f"{page}: no {script}: {line}")
                    continue
                source = benchmark_source(script)
                words = match.group(2).split()
                for option in {word.split("=")[0] for word in words if word.startswith("--")}:
                    if f'"{option}"' not in source and f"'{option}'" not in source:
                        problems.append(f"{page}: {script} has no option {option}: {line}")
    assert found > 20
    assert not problems, "\n".join(problems)


def test_documented_files_exist() -> None:
    """Paths into the repository (``src/...``, ``tests/...``, ``configs/...``,
    ``benchmarks/...``) and into the package (``text_recognizer/...``)."""
    pattern = r"\b(?:src|tests|configs|benchmarks|text_recognizer)/[\w./-]*\w"
    missing = []
    for page in PAGES:
        for path in set(re.findall(pattern, page.read_text())):
            where = Path("src", path) if path.startswith("text_recognizer/") else Path(path)
            if not where.exists():
                missing.append(f"{page}: {path}")
    assert not missing, "\n".join(missing)


def table_cells(row: str) -> int:
    row = re.sub(r"`[^`]*`", "code", row.replace("\\|", "x"))  # these pipes split no cell
    return len(row.strip().strip("|").split("|"))


def test_tables_are_well_formed() -> None:
    """A table whose separator row has another number of cells than its header is not a
    table to Markdown: it renders as a paragraph of pipes."""
    problems = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        fenced = False
        for number, line in enumerate(lines):
            fenced ^= line.startswith("```")
            if fenced or not re.match(r"^\|?\s*:?-{3,}", line) or number == 0:
                continue
            header = lines[number - 1]
            if not header.lstrip().startswith("|"):
                continue
            if table_cells(line) != table_cells(header):
                problems.append(f"{page}:{number + 1}: separator row and header differ")
    assert not problems, "\n".join(problems)


def yaml_blocks(text: str) -> Iterator[tuple[str, str]]:
    """Each ``yaml`` fence's first line and its whole text."""
    for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
        yield block.splitlines()[0], block


def is_within(shown: Any, actual: Any) -> bool:
    """Everything ``shown`` says is in ``actual`` (an excerpt may leave keys out)."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_within(value, actual[key]) for key, value in shown.items()
        )
    return bool(shown == actual)


def test_config_files_shown_in_the_pages_match_them() -> None:
    """A YAML block headed ``# configs/NAME.yaml`` shows that file's values (all of them, or
    some with ``(excerpt)``)."""
    shown = 0
    for page in PAGES:
        for first, block in yaml_blocks(page.read_text()):
            match = re.match(r"# (configs/[\w.]+\.yaml)", first)
            if not match:
                continue
            shown += 1
            actual = yaml.safe_load(Path(match.group(1)).read_text())
            values = yaml.safe_load(block)
            assert is_within(values, actual), f"{page}: {match.group(1)} is not as shown"
            if "(excerpt)" not in first:
                assert values.keys() == actual.keys(), f"{page}: {match.group(1)}: its keys"
    assert shown >= 4


# Each dataset page's `| argument | default | meaning |` table, and the constructor
# arguments it leaves to its prose.
DATASET_TABLES = {
    "emnist": ("docs/datasets/emnist.md", set()),
    "emnist_lines": ("docs/datasets/emnist_lines.md", {"char_module"}),  # "From Python only"
    "folder": ("docs/datasets/folder.md", {"root"}),  # a folder is never cached
    "iam_lines": ("docs/datasets/iam_lines.md", set()),
    "iam_paragraphs": ("docs/datasets/iam_paragraphs.md", set()),
    "synthetic_chars": ("docs/datasets/synthetic.md", set()),
    "synthetic_lines": ("docs/datasets/synthetic_lines.md", set()),
    "synthetic_paragraphs": ("docs/datasets/synthetic_paragraphs.md", set()),
}


def table_keys(text: str, header: str) -> set[str]:
    """The backticked names in the first column of the table under ``header``."""
    lines = text.splitlines()
    start = lines.index(header) + 2
    keys: set[str] = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        keys.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return keys


@pytest.mark.parametrize("name", sorted(DATASET_TABLES))
def test_dataset_argument_tables_list_the_constructor_arguments(name: str) -> None:
    from text_recognizer.data import DATASETS

    page, in_prose = DATASET_TABLES[name]
    documented = table_keys(Path(page).read_text(), "| argument | default | meaning |")
    arguments = set(inspect.signature(DATASETS.get(name)).parameters)
    assert documented <= arguments, f"{page} documents {documented - arguments}"
    left_out = arguments - in_prose - documented
    assert not left_out, f"{page} leaves out {left_out}"


def test_sweep_keys_table_lists_the_schema() -> None:
    from text_recognizer.training.sweep import SweepConfig

    text = Path("docs/training.md").read_text()
    table = text[text.index("| key | default | meaning |") :].split("\n\n")[0]
    documented = set(re.findall(r"`(\w+)`", table))  # first columns, and grace_epochs
    fields = set(SweepConfig.model_fields)
    assert fields <= documented, f"docs/training.md leaves out {fields - documented}"


def test_documented_configs_and_overrides_are_valid() -> None:
    """``train`` and ``config show`` commands name a shipped config and ``--set`` keys the
    schema has, but for the mistakes the training guide shows being caught."""
    from text_recognizer.errors import ConfigError
    from text_recognizer.training.config import load_config

    shown_mistakes = {"optimizer.name=adamax", "trainer.epochs=3"}
    checked, problems = 0, []
    for page, line, words in documented_commands():
        words = words[1:] if words[:2] == ["config", "show"] else words
        configs = [word for word in words[1:2] if word.endswith(".yaml")]
        if words[:1] not in (["train"], ["show"]) or not configs or "--resume" in words:
            continue
        sets = [value for option, value in itertools.pairwise(words) if option == "--set"]
        checked += 1
        try:
            load_config(Path(configs[0]), sets)
        except ConfigError as error:
            if not shown_mistakes & set(sets):
                problems.append(f"{page}: {line}\n{error}")
        else:
            if shown_mistakes & set(sets):
                problems.append(f"{page}: not refused: {line}")
    assert checked > 15
    assert not problems, "\n".join(problems)


def test_documented_config_errors_are_the_ones_printed() -> None:
    """The training guide's transcript of caught mistakes: each ``error:`` line as the
    command prints it (a line ending in ``...`` is a prefix)."""
    from text_recognizer.errors import ConfigError
    from text_recognizer.training.config import load_config

    text = Path("docs/training.md").read_text()
    transcripts = re.findall(r"\$ text-recognizer train (\S+) --set (\S+)\n((?:[ e].*\n)+)", text)
    assert len(transcripts) == 2
    for config, override, printed in transcripts:
        with pytest.raises(ConfigError) as caught:
            load_config(Path(config), [override])
        message = f"error: {caught.value}".splitlines()
        for shown, actual in zip(printed.splitlines(), message, strict=True):
            if shown.endswith("..."):
                assert actual.startswith(shown[:-3]), (shown, actual)
            else:
                assert actual == shown


def test_sentence_example_prints_what_the_generator_draws() -> None:
    from text_recognizer.data.sentences import SentenceGenerator

    text = Path("docs/datasets/sentences.md").read_text()
    shown = re.search(r"sentences\.generate\(\)\s+# '(.*)'", text)
    assert shown, "docs/datasets/sentences.md: the example's first piece"
    sentences = SentenceGenerator(max_length=32, source="default", seed=0)
    assert sentences.generate() == shown.group(1)
