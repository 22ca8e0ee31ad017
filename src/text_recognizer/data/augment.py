"""Image augmentations for bright-ink-on-dark uint8 images, driven by a numpy ``Generator``.

Each function takes ``(image, rng, ...)`` and returns a new uint8 array of the same shape,
so they compose freely and the same seed always gives the same result. They work on any
``[H, W]`` image: single characters here, whole text lines in the line datasets. Strengths
are in pixels or degrees of the image they are given, so callers render at the resolution
where a "pen" of a given width makes sense and augment there.

Why these: a font draws every 'a' identically; real writers vary the slant (shear),
the angle (rotation), the proportions (anisotropic scale), the pen (stroke width),
and the shape itself (elastic distortion); scans add blur and noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _as_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def affine(
    image: np.ndarray,
    rng: np.random.Generator,
    max_rotation: float = 10.0,
    max_shear: float = 0.3,
    scale_range: tuple[float, float] = (0.85, 1.15),
    aspect_range: tuple[float, float] = (-0.2, 0.2),
) -> np.ndarray:
    """Rotate (degrees), shear (horizontal, tan of the slant angle) and scale about the centre.

    ``aspect_range`` bounds the log of the width/height stretch: (-0.2, 0.2) makes letters
    up to 22% narrower or wider; an asymmetric range moves the average (fonts are often
    narrower than real handwriting). The output keeps the input's shape: leave a margin if
    the ink must not be cut.
    """
    height, width = image.shape
    angle = math.radians(rng.uniform(-max_rotation, max_rotation))
    shear = rng.uniform(-max_shear, max_shear)
    scale = rng.uniform(*scale_range)
    aspect = math.exp(rng.uniform(*aspect_range))
    scale_x, scale_y = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shearing = np.array([[1.0, -shear], [0.0, 1.0]])  # positive shear leans the top right
    scaling = np.diag([scale_x, scale_y])
    matrix = rotation @ shearing @ scaling
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre - matrix @ centre
    transform = np.hstack([matrix, offset[:, None]]).astype(np.float32)
    return cv2.warpAffine(image, transform, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


def stroke_width(
    image: np.ndarray, rng: np.random.Generator, pixels: tuple[float, float] = (-1.0, 2.0)
) -> np.ndarray:
    """Thicken (dilate, positive) or thin (erode, negative) strokes by a number of pixels
    per side drawn from ``pixels``. An erosion that would erase the ink is skipped.
    """
    amount = rng.uniform(*pixels)
    radius = round(abs(amount))
    if radius == 0:
        return image.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    operation = cv2.dilate if amount > 0 else cv2.erode
    thinned = operation(image, kernel)
    if amount < 0 and thinned.max() < image.max() // 2:  # erased the ink: keep the original
        return image.copy()
    return thinned


def thin_strokes(
    image: np.ndarray, rng: np.random.Generator, pixels: tuple[float, float] = (0.25, 1.0)
) -> np.ndarray:
    """Thin every stroke by a number of pixels in all drawn from ``pixels`` (fractions too),
    keeping grey levels: a finer pen.

    A fine pen scanned and scaled to the model's height leaves strokes about a pixel wide
    and fainter than the paper's contrast; eroding at this resolution would break them up
    instead. The erosion runs at four times the resolution, so sub-pixel amounts fade the
    stroke edges the way downsampling a fine pen does. Any dtype ``cv2`` resizes.
    """
    scale = 4
    radius = round(rng.uniform(*pixels) * scale / 2)  # per side, at the high resolution
    if radius <= 0:
        return image.copy()
    height, width = image.shape
    big = cv2.resize(image, (width * scale, height * scale), interpolation=cv2.INTER_LINEAR)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.resize(cv2.erode(big, kernel), (width, height), interpolation=cv2.INTER_AREA)


def elastic(
    image: np.ndarray, rng: np.random.Generator, alpha: float = 4.0, sigma: float = 6.0
) -> np.ndarray:
    """Simard et al. (2003) elastic distortion: smooth random displacement of every pixel.

    ``alpha`` is the typical displacement in pixels, ``sigma`` (pixels) the smoothness:
    larger sigma bends whole strokes, smaller sigma wobbles them.
    """
    height, width = image.shape
    fields = []
    for _ in range(2):
        field = cv2.GaussianBlur(
            rng.uniform(-1.0, 1.0, size=(height, width)).astype(np.float32), (0, 0), sigma
        )
        fields.append(field * (alpha / (float(np.abs(field).max()) + 1e-6)))
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(
        image,
        grid_x + fields[0],
        grid_y + fields[1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def blur(image: np.ndarray, rng: np.random.Generator, max_sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur with a sigma drawn from [0, ``max_sigma``] pixels (out-of-focus scans)."""
    sigma = rng.uniform(0.0, max_sigma)
    if sigma < 0.1:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigma)


def noise(image: np.ndarray, rng: np.random.Generator, max_std: float = 12.0) -> np.ndarray:
    """Additive Gaussian noise with a standard deviation drawn from [0, ``max_std``] levels."""
    std = rng.uniform(0.0, max_std)
    return _as_uint8(image.astype(np.float32) + rng.normal(0.0, std, size=image.shape))


def binarize(
    image: np.ndarray, rng: np.random.Generator, levels: tuple[int, int] = (80, 176)
) -> np.ndarray:
    """Threshold at a random grey level: the hard, jagged edges of bilevel scans (NIST, fax)."""
    threshold = int(rng.integers(levels[0], levels[1] + 1))
    if image.max() <= threshold:
        return image.copy()
    return np.where(image > threshold, 255, 0).astype(np.uint8)


def ink_intensity(
    image: np.ndarray, rng: np.random.Generator, range_: tuple[float, float] = (0.6, 1.0)
) -> np.ndarray:
    """Scale the ink's brightness (faint pencil to dark marker)."""
    return _as_uint8(image.astype(np.float32) * rng.uniform(*range_))
