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


class Scratch:
    """
    Memory one thread reuses from screenshot to screenshot: the resized
    image and the PNG rows.  Fresh megabytes for each screenshot cost
    page faults (a quarter of the worker's time, measured), since the
    allocator hands them back to the kernel between screenshots.
    """

    def __init__(self) -> None:
        self._images: dict[tuple[str, tuple[int, int]], Image.Image] = {}
        self._rows = bytearray()
        #: A resizer keeps working buffers of its own: one per thread.
        self.resizer = RustResizer()

    def image(self, mode: str, size: tuple[int, int]) -> Image.Image:
        """An image of MODE and SIZE, the same one each time (contents undefined)."""
        key = (mode, size)
        if key not in self._images:
            if len(self._images) >= 4:
                self._images.clear()
            self._images[key] = Image.new(mode, size)
        return self._images[key]

    def rows(self, size: int) -> memoryview:
        """SIZE bytes, zero where nothing wrote since they were first given."""
        if len(self._rows) < size:
            self._rows = bytearray(size)
        return memoryview(self._rows)[:size]


def resize(
    image: Image.Image, size: tuple[int, int], scratch: Scratch | None = None
) -> Image.Image:
    """
    IMAGE (mode RGB, or a L{frame}) resized to SIZE with a bicubic
    (Catmull-Rom) convolution, in the same mode, into SCRATCH's image (a
    new one without SCRATCH); IMAGE itself when it already has that size.
    """
    if image.size == size:
        return image
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    scratch = scratch or Scratch()
    out = scratch.image(image.mode, size)
    scratch.resizer.resize_pil(PilImageWrapper(image), PilImageWrapper(out), _BICUBIC)
    return out


def screenshot(
    image: Image.Image, size: tuple[int, int], fmt: str, quality: int | None,
    scratch: Scratch | None = None,
) -> bytes:
    """A L{frame} resized to SIZE and encoded as FMT (see L{encode})."""
    scratch = scratch or Scratch()
    small = resize(image, size, scratch)
    # Packing the frame's B, G, R bands in reverse order gives R, G, B.
    if fmt == "png":
        return pngImage(small, "BGR", 3, 2, scratch)
    rows = scratch.rows(size[0] * size[1] * 4)
    _pack(small, "BGRA", 4, rows, filterBytes=False)
    rgbx = Image.frombuffer("RGBX", size, rows, "raw", "RGBX", 0, 1)  # type: ignore[arg-type]
    return encode(rgbx, fmt, quality)


def _pack(
    image: Image.Image, rawmode: str, bands: int, out: memoryview, filterBytes: bool
) -> None:
    """
    IMAGE's rows packed as RAWMODE (BANDS bytes a pixel) into OUT, each
    after a PNG filter type byte 0 if FILTERBYTES; in strips of about
    64 KiB, so that no large buffer is allocated.
    """
    width, height = image.size
    stride = width * bands
    pitch = stride + 1 if filterBytes else stride
    step = max(1, 65536 // (width * 4))
    for top in range(0, height, step):
        strip = memoryview(
            image.crop((0, top, width, min(height, top + step))).tobytes("raw", rawmode))
        at = top * pitch
        for row in range(0, len(strip), stride):
            if filterBytes:
                out[at] = 0
                at += 1
            out[at : at + stride] = strip[row : row + stride]
            at += stride


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", isal_zlib.crc32(data, isal_zlib.crc32(kind))
    )


def pngImage(
    image: Image.Image, rawmode: str, bands: int, colourType: int, scratch: Scratch
) -> bytes:
    """
    IMAGE as a PNG of COLOURTYPE (0 grey, 2 RGB, 6 RGBA), its rows packed
    as RAWMODE (BANDS bytes a pixel) into SCRATCH: 8 bits a sample, not
    interlaced, every row unfiltered (filter type 0), one IDAT chunk.
    """
    width, height = image.size
    rows = scratch.rows(height * (width * bands + 1))
    _pack(image, rawmode, bands, rows, filterBytes=True)
    header = struct.pack(">IIBBBBB", width, height, 8, colourType, 0, 0, 0)
    idat = isal_zlib.compress(rows, PNG_LEVEL)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _IEND))


def png(image: Image.Image) -> bytes:
    """IMAGE (any mode; other than L, RGB and RGBA converted to RGB) as a PNG."""
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    bands = len(image.mode)
    return pngImage(image, image.mode, bands, {1: 0, 3: 2, 4: 6}[bands], Scratch())


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
