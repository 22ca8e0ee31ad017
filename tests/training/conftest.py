from tests.training.fakes import tiny_chars

__all__ = ["tiny_chars"]
