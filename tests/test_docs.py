from pathlib import Path

from text_recognizer.training.config import schema_reference


def test_config_reference_is_current() -> None:
    """docs/config-reference.md is generated; regenerate it when the schema changes:
    text-recognizer config schema > docs/config-reference.md"""
    assert Path("docs/config-reference.md").read_text().strip() == schema_reference().strip()
