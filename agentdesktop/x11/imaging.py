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
  (fast_image_resize): about 3.5 ms.  It reads the grabbed frame in the
  shared memory segment where the X server put it (no BGRX to RGB
  conversion of the full frame, no copy), and the B, G, R order is
  reversed once, on the small image, while packing its rows.
- The PNG is written here: filter type None on every row (on screen
  content it compresses about as well as Pillow's adaptive choice, and
  costs nothing) and one zlib stream from ISA-L's deflate (C{isal}) at
  level 1, as large as zlib's level 1 at a fifth of its time.
"""

from __future__ import annotations

import io
import struct

from cykooz_resizer import FilterType, ResizeAlg, ResizeOptions
from cykooz_resizer.rust_lib import PilImageWrapper, RustResizer
from isal import isal_zlib
from PIL import Image

#: ISA-L's compression level (0-3); 1 compresses busy screens as well as
#: zlib's level 1, and 2 or 3 gain under 1 %.
PNG_LEVEL = 1

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_resizer = RustResizer()
#: Catmull-Rom, with no alpha weighting: the fourth band of a frame is
#: padding, and an RGB image has none.
_BICUBIC = ResizeOptions(
    resize_alg=ResizeAlg.convolution(FilterType.catmull_rom), use_alpha=False
).rust_options


def frame(data: memoryview | bytes, size: tuple[int, int]) -> Image.Image:
    """
    DATA, rows of 32-bit B, G, R, padding pixels as the X server gives
    them, as an image without a copy: mode RGBA, whose bands hold B, G, R
    and the padding.  It shares DATA's memory: use it while DATA is valid.
    """
    return Image.frombuffer("RGBA", size, data, "raw", "RGBA", 0, 1)  # type: ignore[arg-type]


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """
    IMAGE (mode RGB, or a L{frame}) resized to SIZE with a bicubic
    (Catmull-Rom) convolution, in the same mode; IMAGE itself when it
    already has that size.
    """
    if image.size == size:
        return image
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    out = Image.new(image.mode, size)
    _resizer.resize_pil(PilImageWrapper(image), PilImageWrapper(out), _BICUBIC)
    return out


def screenshot(image: Image.Image, size: tuple[int, int], fmt: str, quality: int | None) -> bytes:
    """A L{frame} resized to SIZE and encoded as FMT (see L{encode})."""
    small = resize(image, size)
    # Packing the frame's B, G, R bands in reverse order gives R, G, B.
    rgb = small.tobytes("raw", "BGR")
    if fmt == "png":
        return pngRows(rgb, size, 2)
    return encode(Image.frombytes("RGB", size, rgb), fmt, quality)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", isal_zlib.crc32(data, isal_zlib.crc32(kind))
    )


def pngRows(data: bytes, size: tuple[int, int], colourType: int) -> bytes:
    """
    A PNG of the 8-bit pixels in DATA, rows of SIZE[0] pixels of colour
    type COLOURTYPE (0 grey, 2 RGB, 6 RGBA): not interlaced, every row
    unfiltered (filter type 0), one IDAT chunk.
    """
    width, height = size
    stride = len(data) // height if height else 0
    rows = memoryview(data)
    scanlines = b"\x00" + b"\x00".join([rows[i : i + stride] for i in range(0, len(data), stride)])
    header = struct.pack(">IIBBBBB", width, height, 8, colourType, 0, 0, 0)
    idat = isal_zlib.compress(scanlines, PNG_LEVEL)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _IEND))


def png(image: Image.Image) -> bytes:
    """IMAGE (any mode; other than L, RGB and RGBA converted to RGB) as a PNG."""
    colourType = {"L": 0, "RGB": 2, "RGBA": 6}.get(image.mode)
    if colourType is None:
        image = image.convert("RGB")
        colourType = 2
    return pngRows(image.tobytes(), image.size, colourType)


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
