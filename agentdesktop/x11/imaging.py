"""
Turning a grabbed frame into what a model receives: a bicubic resize and a
PNG (or JPEG, WebP) encoding.  Pure and blocking: no X connection, no
reactor; L{agentdesktop.x11.session.screenshot} calls it in the screen
worker thread.

Where the time went (docs/benchmarks.md has the numbers): Pillow's own
bicubic resize of 1920x1080 to 1280x720 costs about 22 ms of CPU, and its
PNG encoder about 20 ms (quiet screen) to 64 ms (busy screen) even at
compression level 1, most of it choosing a row filter for every row.  So:

- The resize is the same convolution (Catmull-Rom, Pillow's BICUBIC kernel,
  its support widened by the scale factor so that downscaling averages
  rather than aliases) computed with SIMD by C{cykooz_resizer}
  (fast_image_resize): about 3.5 ms.
- The PNG is written here: filter type None on every row (on screen
  content it compresses about as well as Pillow's adaptive choice, and
  costs nothing) and one zlib stream from ISA-L's deflate (C{isal}) at
  level 1, as large as zlib's level 1 at a fifth of its time.
"""

from __future__ import annotations

import io
import struct

from cykooz_resizer import FilterType, ResizeAlg, ResizeOptions, Resizer
from isal import isal_zlib
from PIL import Image

#: ISA-L's compression level (0-3); 1 compresses busy screens as well as
#: zlib's level 1, and 2 or 3 gain under 1 %.
PNG_LEVEL = 1

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_resizer = Resizer()
_BICUBIC = ResizeOptions(resize_alg=ResizeAlg.convolution(FilterType.catmull_rom))


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """
    IMAGE (mode RGB) resized to SIZE with a bicubic (Catmull-Rom)
    convolution; IMAGE itself when it already has that size.
    """
    if image.size == size:
        return image
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = Image.new("RGB", size)
    _resizer.resize_pil(image, out, _BICUBIC)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", isal_zlib.crc32(data, isal_zlib.crc32(kind))
    )


def scanlines(image: Image.Image) -> bytes:
    """
    IMAGE's pixels as PNG scanlines: each row prefixed with its filter
    type byte, 0 (None).
    """
    data = image.tobytes()
    stride = image.width * len(image.getbands())
    rows = memoryview(data)
    return b"\x00" + b"\x00".join([rows[i : i + stride] for i in range(0, len(data), stride)])


def png(image: Image.Image) -> bytes:
    """
    IMAGE (mode RGB, RGBA or L) as a PNG: 8 bits per sample, not
    interlaced, every row unfiltered, one IDAT chunk.
    """
    colourType = {"L": 0, "RGB": 2, "RGBA": 6}.get(image.mode)
    if colourType is None:
        image = image.convert("RGB")
        colourType = 2
    width, height = image.size
    header = struct.pack(">IIBBBBB", width, height, 8, colourType, 0, 0, 0)
    idat = isal_zlib.compress(scanlines(image), PNG_LEVEL)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _IEND))


def encode(image: Image.Image, fmt: str, quality: int | None) -> bytes:
    """IMAGE encoded as C{png}, C{jpeg} or C{webp} (QUALITY for the latter two)."""
    if fmt == "png":
        return png(image)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=quality if quality is not None else 80)
    elif fmt == "webp":
        image.save(out, "WEBP", quality=quality if quality is not None else 80, method=0)
    else:
        raise ValueError(fmt)
    return out.getvalue()
