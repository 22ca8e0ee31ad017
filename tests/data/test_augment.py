from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from text_recognizer.data import augment

FUNCTIONS: list[Callable[[np.ndarray, np.random.Generator], np.ndarray]] = [
    augment.affine,
    augment.stroke_width,
    augment.elastic,
    augment.blur,
    augment.noise,
    augment.binarize,
    augment.ink_intensity,
    augment.thin_strokes,
]


def glyph(height: int = 40, width: int = 64) -> np.ndarray:
    image = np.zeros((height, width), np.uint8)
    image[8:32, 20:26] = 255
    image[8:14, 20:44] = 255
    image[30:34, 20:44] = 128  # a faint stroke: thresholds and blurs treat it differently
    return image


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_keeps_shape_dtype_and_is_deterministic(function: Callable[..., np.ndarray]) -> None:
    image = glyph()
    out = function(image, np.random.default_rng(3))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, function(image, np.random.default_rng(3)))
    np.testing.assert_array_equal(image, glyph())  # the input is never modified
    assert out.max() > 0  # the ink survives


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_seeds_give_different_results(function: Callable[..., np.ndarray]) -> None:
    image = glyph()
    outs = {function(image, np.random.default_rng(seed)).tobytes() for seed in range(6)}
    assert len(outs) > 1


def test_affine_identity_when_strength_is_zero() -> None:
    out = augment.affine(
        glyph(), np.random.default_rng(0), 0.0, 0.0, scale_range=(1.0, 1.0), aspect_range=(0.0, 0.0)
    )
    np.testing.assert_array_equal(out, glyph())


def test_stroke_width_changes_the_amount_of_ink() -> None:
    image = glyph()
    amounts = {
        int(
            np.sign(
                int(
                    (augment.stroke_width(image, np.random.default_rng(s), (-3.0, 3.0)) > 127).sum()
                )
                - int((image > 127).sum())
            )
        )
        for s in range(20)
    }
    assert amounts >= {-1, 1}  # both thinner and thicker strokes occur


def test_thin_strokes_fades_a_stroke_by_a_fraction_of_a_pixel_and_thins_it_by_one() -> None:
    image = glyph()
    rng = np.random.default_rng(0)
    half = augment.thin_strokes(image, rng, (0.5, 0.5))
    one = augment.thin_strokes(image, rng, (1.0, 1.0))
    ink = (image > 127).sum()
    assert (one > 127).sum() < (half > 127).sum() < ink  # thinner with the amount
    assert half[20, 21:25].min() == 255  # the stroke's core keeps its ink
    assert 0 < half[20, 20] < 255  # its edge fades instead of vanishing: a sub-pixel amount
    np.testing.assert_array_equal(augment.thin_strokes(image, rng, (0.0, 0.1)), image)
    as_float = augment.thin_strokes(image.astype(np.float32) / 255, rng, (1.0, 1.0))
    assert as_float.dtype == np.float32 and np.abs(as_float * 255 - one).max() < 2
