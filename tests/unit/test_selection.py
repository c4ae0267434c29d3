"""
The clipboard's conversions and INCR chunking (no X server).
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.x11.selection import (
    CHANGE_PROPERTY_HEADER,
    IncrTransfer,
    decodeText,
    encodeTarget,
    largestSingleProperty,
    latin1,
    notBefore,
    selectionAtomName,
)


class Conversions(SynchronousTestCase):
    def test_utf8(self) -> None:
        text = "héllo 🙂 日本"
        self.assertEqual(encodeTarget("UTF8_STRING", text), ("UTF8_STRING", text.encode()))
        self.assertEqual(
            encodeTarget("text/plain;charset=utf-8", text),
            ("text/plain;charset=utf-8", text.encode()),
        )

    def test_stringIsLatin1(self) -> None:
        """STRING is ISO Latin-1 (ICCCM); a character outside it becomes "?"."""
        self.assertEqual(encodeTarget("STRING", "café ß"), ("STRING", b"caf\xe9 \xdf"))
        self.assertEqual(encodeTarget("STRING", "€ 🙂 x"), ("STRING", b"? ? x"))
        self.assertEqual(latin1("tab\tnew\nline"), b"tab\tnew\nline")

    def test_textPicksLatin1WhenItFits(self) -> None:
        self.assertEqual(encodeTarget("TEXT", "café"), ("STRING", b"caf\xe9"))
        self.assertEqual(encodeTarget("TEXT", "café €"), ("UTF8_STRING", "café €".encode()))

    def test_otherTargetsAreRefused(self) -> None:
        for target in ("image/png", "COMPOUND_TEXT", "MULTIPLE", ""):
            self.assertIsNone(encodeTarget(target, "x"), target)

    def test_decode(self) -> None:
        self.assertEqual(decodeText("STRING", b"caf\xe9"), "café")
        self.assertEqual(decodeText("UTF8_STRING", "🙂".encode()), "🙂")
        # Broken UTF-8 is replaced, not an error.
        self.assertEqual(decodeText("UTF8_STRING", b"a\xffb"), "a\ufffdb")

    @given(st.text())
    def test_roundTrips(self, text: str) -> None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return  # lone surrogates never reach the owner
        kind, out = encodeTarget("UTF8_STRING", text) or ("", b"")
        self.assertEqual((kind, out), ("UTF8_STRING", data))
        self.assertEqual(decodeText(kind, out), text)
        kind, out = encodeTarget("TEXT", text) or ("", b"")
        self.assertEqual(decodeText(kind, out), text)

    def test_timestampsWrap(self) -> None:
        self.assertTrue(notBefore(1000, 1000))
        self.assertTrue(notBefore(1001, 1000))
        self.assertFalse(notBefore(999, 1000))
        # 49.7 days on, the clock wraps: a small time is later than a huge one.
        self.assertTrue(notBefore(5, 0xFFFFFFF0))
        self.assertFalse(notBefore(0xFFFFFFF0, 5))

    def test_selectionNames(self) -> None:
        self.assertEqual(selectionAtomName("clipboard"), "CLIPBOARD")
        self.assertEqual(selectionAtomName("primary"), "PRIMARY")
        self.assertRaises(ValueError, selectionAtomName, "secondary")


class Incr(SynchronousTestCase):
    def test_singlePropertyLimit(self) -> None:
        # Without BIG-REQUESTS the longest request is 65535 four-byte units.
        self.assertEqual(largestSingleProperty(65535), 65535 * 4 - CHANGE_PROPERTY_HEADER)
        self.assertGreater(300_000, largestSingleProperty(65535))

    def test_chunks(self) -> None:
        transfer = IncrTransfer(b"abcdefghij", 4)
        self.assertEqual([transfer.next() for _ in range(4)], [b"abcd", b"efgh", b"ij", b""])
        self.assertTrue(transfer.done)
        self.assertRaises(ValueError, transfer.next)

    def test_exactMultipleEndsWithOneEmptyChunk(self) -> None:
        transfer = IncrTransfer(b"abcdefgh", 4)
        self.assertEqual([transfer.next() for _ in range(3)], [b"abcd", b"efgh", b""])
        self.assertTrue(transfer.done)

    def test_badChunk(self) -> None:
        self.assertRaises(ValueError, IncrTransfer, b"x", 0)

    @given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
    def test_joinsBack(self, data: bytes, size: int) -> None:
        transfer = IncrTransfer(data, size)
        chunks = []
        while not transfer.done:
            chunks.append(transfer.next())
        self.assertEqual(chunks[-1], b"")
        self.assertTrue(all(0 < len(c) <= size for c in chunks[:-1]))
        self.assertEqual(b"".join(chunks), data)
        self.assertEqual(len(chunks), -(-len(data) // size) + 1)
