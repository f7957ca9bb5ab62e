"""Open images as RGB and resize them without changing the scale ratio.

ImageNet holds a few grayscale, CMYK and PNG-disguised-as-JPEG files; all of
them must reach the backbone as 3-channel RGB, and a broken file must fail with
its name rather than as a cryptic PIL error deep inside a data loader.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from src.errors import ScaleprobeError

__all__ = ["load_rgb_image", "resize_square"]

_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def load_rgb_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file, decode it fully and return it in RGB mode.

    The file's format is detected from its content, not its extension, so a PNG
    saved as ``.JPEG`` works.  Grayscale, CMYK, palette and alpha images are
    converted to RGB (alpha is dropped, not composited: the annotation boxes
    refer to the stored pixels).  EXIF orientation is deliberately not applied,
    because the boxes were drawn on the pixels as stored.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    PIL.Image.Image
        A decoded image in mode ``"RGB"``, independent of the (closed) file.

    Raises
    ------
    ScaleprobeError
        If the file is missing, empty, truncated, not an image, or larger than
        PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, kept as is).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return _to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ScaleprobeError(
            f"{path}: image exceeds PIL's decompression-bomb limit "
            f"(Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}): {err}"
        ) from None
    except FileNotFoundError:
        raise ScaleprobeError(f"{path}: image file does not exist") from None
    except (OSError, SyntaxError, ValueError) as err:
        size = _file_size(path)
        detail = "empty (0 bytes)" if size == 0 else f"unreadable or truncated ({err})"
        raise ScaleprobeError(f"{path}: image is {detail}; expected a JPEG/PNG file") from None


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """Resize the whole image to ``size`` x ``size`` pixels.

    Never crops: a crop would change which fraction of the image the object
    covers, that is, the scale ratio the probes regress on, whereas stretching
    the whole image scales the box and the image by the same factors per axis
    and leaves ``r`` unchanged.  Bilinear filtering; Pillow widens the filter
    support when shrinking, so downscaling is antialiased.

    Parameters
    ----------
    image : PIL.Image.Image
        Any image (usually from :func:`load_rgb_image`).
    size : int
        Target side length in pixels, ``>= 1``.

    Returns
    -------
    PIL.Image.Image
        A new ``size`` x ``size`` image in the same mode.

    Raises
    ------
    ScaleprobeError
        If ``size`` is not a positive integer.

    Examples
    --------
    >>> resize_square(Image.new("RGB", (300, 200)), 64).size
    (64, 64)
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ScaleprobeError(f"size={size!r} is not allowed; expected an integer >= 1")
    side = int(size)
    return image.resize((side, side), resample=Image.Resampling.BILINEAR)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in _HIGH_DEPTH_MODES:
        # PIL's "I"/"F" -> "L" conversion clips at 255; rescale 16-bit data instead.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
