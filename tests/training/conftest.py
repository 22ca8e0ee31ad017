from tests.training.fakes import tiny_chars, tiny_lines

__all__ = ["tiny_chars", "tiny_lines"]
