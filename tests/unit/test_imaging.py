"""
The screenshot encoding: the PNG writer is lossless and well-formed for
every size and mode, and the SIMD bicubic resize matches Pillow's bicubic
within a stated tolerance.
"""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw, ImageStat
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.x11 import imaging


def noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    bands = [Image.effect_noise(size, 40 + 30 * i).convert("L") for i in range(len(mode))]
    image = Image.merge(mode, bands) if len(bands) > 1 else bands[0]
    return Image.blend(image, Image.linear_gradient("L").convert(mode).resize(size), 0.5)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, each CRC checked with zlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        pos += 12 + length
    return out


def screenText(size: tuple[int, int] = (1920, 1080)) -> Image.Image:
    """A terminal-like screen: black text on white, a coloured bar."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for y in range(0, size[1], 14):
        draw.text((4, y), "The quick brown fox jumps over the lazy dog 0123456789 " * 5,
                  fill=(0, 0, 0))
    draw.rectangle((0, 0, size[0], 20), fill=(40, 90, 200))
    return image


def difference(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    """Mean and largest absolute difference over all channels."""
    diff = ImageChops.difference(a, b)
    return max(ImageStat.Stat(diff).mean), max(hi for _, hi in diff.getextrema())


class PNGTests(SynchronousTestCase):
    @settings(max_examples=12, deadline=None)
    @given(st.integers(1, 70), st.integers(1, 40), st.sampled_from(["RGB", "RGBA", "L"]))
    def test_lossless(self, width: int, height: int, mode: str) -> None:
        """Pillow decodes the PNG to exactly the pixels encoded."""
        image = noise(mode, (width, height))
        decoded = Image.open(io.BytesIO(imaging.png(image)))
        decoded.load()
        self.assertEqual(decoded.mode, mode)
        self.assertEqual(decoded.tobytes(), image.tobytes())

    def test_wellFormed(self) -> None:
        """
        Signature, IHDR (8 bits, no interlace), one zlib IDAT of unfiltered
        rows, IEND; every CRC right (checked here with zlib, not ISA-L).
        """
        image = noise("RGB", (33, 7))
        parts = chunks(imaging.png(image))
        self.assertEqual([k for k, _ in parts], [b"IHDR", b"IDAT", b"IEND"])
        self.assertEqual(parts[0][1], struct.pack(">IIBBBBB", 33, 7, 8, 2, 0, 0, 0))
        raw = zlib.decompress(parts[1][1])
        rows = [raw[i : i + 1 + 33 * 3] for i in range(0, len(raw), 1 + 33 * 3)]
        self.assertEqual([r[0] for r in rows], [0] * 7)
        self.assertEqual(b"".join(r[1:] for r in rows), image.tobytes())

    def test_otherModesConverted(self) -> None:
        image = noise("RGB", (5, 5)).convert("P")
        decoded = Image.open(io.BytesIO(imaging.png(image)))
        self.assertEqual(decoded.mode, "RGB")
        self.assertEqual(decoded.tobytes(), image.convert("RGB").tobytes())

    def test_size(self) -> None:
        """
        On screen content the unfiltered rows cost little: within 1.3 times
        the size of Pillow's PNG at compression level 1 (adaptive filters).
        """
        image = screenText((1280, 720))
        ours = len(imaging.png(image))
        pillow = io.BytesIO()
        image.save(pillow, "PNG", compress_level=1)
        self.assertLess(ours, 1.3 * len(pillow.getvalue()))

    def test_encodeFormats(self) -> None:
        image = noise("RGB", (40, 30))
        self.assertEqual(imaging.encode(image, "png", None)[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(Image.open(io.BytesIO(imaging.encode(image, "jpeg", 80))).format, "JPEG")
        self.assertEqual(Image.open(io.BytesIO(imaging.encode(image, "webp", 80))).format, "WEBP")
        self.assertRaises(ValueError, imaging.encode, image, "gif", None)


class ResizeTests(SynchronousTestCase):
    """
    The resize is Pillow's BICUBIC convolution (Catmull-Rom, support widened
    by the scale) computed with SIMD.  Both round to 8 bits between the
    horizontal and the vertical pass and clip there, in a different order,
    so they differ slightly at hard edges (text): measured on real 1080p
    screens, a mean difference under 0.4 and at most 19 of 255 in a few
    pixels.  The tolerance, a mean of 0.5 and a maximum of 24, still tells
    bicubic from any other filter: Pillow's Lanczos differs from its
    bicubic by a maximum of 31, bilinear by 41 (and by a mean of 3.7 on
    this test's text), a box filter or nearest neighbour far more.
    Upscaling (a zoom into a small region) magnifies the rounding: a mean
    up to 0.53 and a maximum of 27 measured, so there the tolerance is a
    mean of 1.0 and a maximum of 32; Lanczos, bilinear and Hamming then
    differ from bicubic by a mean of 2 to 6.
    """

    def assertBicubic(self, image: Image.Image, size: tuple[int, int]) -> None:
        mean, largest = difference(imaging.resize(image, size), image.resize(size, Image.BICUBIC))
        up = size[0] > image.size[0]
        self.assertLessEqual(mean, 1.0 if up else 0.5)
        self.assertLessEqual(largest, 32 if up else 24)

    def test_text(self) -> None:
        self.assertBicubic(screenText((960, 540)), (640, 360))
        self.assertBicubic(screenText((960, 540)), (683, 384))

    def test_noise(self) -> None:
        self.assertBicubic(noise("RGB", (960, 540)), (640, 360))

    def test_upscale(self) -> None:
        """A zoom into a small region scales it up."""
        self.assertBicubic(screenText((160, 90)), (960, 540))
        self.assertBicubic(noise("RGB", (160, 90)), (960, 540))

    def test_toleranceTellsFiltersApart(self) -> None:
        """The tolerances fail a bilinear, Lanczos, box or nearest resize."""
        small, large = screenText((160, 90)), screenText((960, 540))
        for other in (Image.BILINEAR, Image.LANCZOS, Image.BOX, Image.NEAREST):
            mean, largest = difference(large.resize((640, 360), other),
                                       large.resize((640, 360), Image.BICUBIC))
            self.assertTrue(mean > 0.5 or largest > 24, other)
            mean, largest = difference(small.resize((960, 540), other),
                                       small.resize((960, 540), Image.BICUBIC))
            self.assertTrue(mean > 1.0 or largest > 32, other)

    def test_smooth(self) -> None:
        """Where nothing clips (a smooth gradient) the two agree within one level."""
        ramp = Image.linear_gradient("L").resize((960, 540))
        image = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp))
        self.assertLessEqual(difference(imaging.resize(image, (640, 360)),
                                        image.resize((640, 360), Image.BICUBIC))[1], 1)

    def test_sameSize(self) -> None:
        image = noise("RGB", (64, 48))
        self.assertIs(imaging.resize(image, (64, 48)), image)

    def test_otherMode(self) -> None:
        image = noise("RGB", (64, 48)).convert("L")
        self.assertEqual(imaging.resize(image, (32, 24)).mode, "RGB")


class FrameTests(SynchronousTestCase):
    """
    Screenshots straight from the X server's 32-bit BGRX rows (a L{frame}
    over them, no conversion of the full frame) equal the RGB pipeline.
    """

    def setUp(self) -> None:
        self.rgb = screenText((480, 270))
        self.rgb.paste((200, 30, 90), (0, 200, 480, 270))
        self.bgrx = bytearray(self.rgb.tobytes("raw", "BGRX"))

    def shot(self, size: tuple[int, int], fmt: str) -> Image.Image:
        frame = imaging.frame(memoryview(self.bgrx), self.rgb.size)
        image = Image.open(io.BytesIO(imaging.screenshot(frame, size, fmt, 90)))
        image.load()
        return image

    def test_frameSharesMemory(self) -> None:
        frame = imaging.frame(memoryview(self.bgrx), self.rgb.size)
        self.bgrx[0:4] = b"\x01\x02\x03\x00"
        self.assertEqual(frame.getpixel((0, 0)), (1, 2, 3, 0))

    def test_nativeLossless(self) -> None:
        self.assertEqual(self.shot(self.rgb.size, "png").tobytes(), self.rgb.tobytes())

    def test_resizedEqualsRGBPipeline(self) -> None:
        """Each band is resized alone: four bands give what three give."""
        shot = self.shot((320, 180), "png")
        self.assertEqual((shot.format, shot.mode), ("PNG", "RGB"))
        self.assertEqual(shot.tobytes(), imaging.resize(self.rgb, (320, 180)).tobytes())

    def test_scratchReused(self) -> None:
        """One scratch through sizes and formats gives what fresh memory gives."""
        scratch = imaging.Scratch()
        frame = imaging.frame(memoryview(self.bgrx), self.rgb.size)
        for size, fmt in (((320, 180), "png"), ((100, 50), "png"), ((320, 180), "jpeg"),
                          (self.rgb.size, "png"), ((320, 180), "png"), ((100, 50), "webp")):
            self.assertEqual(imaging.screenshot(frame, size, fmt, 80, scratch),
                             imaging.screenshot(frame, size, fmt, 80), (size, fmt))

    def test_jpegColours(self) -> None:
        """Red stays red: the bands are put back in R, G, B order."""
        shot = self.shot((320, 180), "jpeg")
        self.assertEqual(shot.format, "JPEG")
        r, g, b = shot.getpixel((160, 165))
        self.assertLess(abs(r - 200) + abs(g - 30) + abs(b - 90), 24)
