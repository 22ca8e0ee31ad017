"""nox sessions: the same checks as the Makefile, in fresh virtualenvs."""

import nox

nox.options.sessions = ["tests", "lint", "mypy"]
PYTHON = "3.11"


def install(session: nox.Session) -> None:
    # torch first, pinned to the CPU wheel, so no dependency pulls a CUDA build.
    session.install("torch==2.13.0")
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session)
    session.env.update(
        {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    )
    session.run("pytest", "-m", "not slow", "-n", "2", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def mypy(session: nox.Session) -> None:
    install(session)
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    install(session)
    session.run("mkdocs", "build", "--strict")
