"""L{agentdesktop.jsonbody}: base64 spliced into JSON unescaped, the same bytes as json.dumps."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.jsonbody import Base64Text, dumps, parts


def reference(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


class DumpsTests(SynchronousTestCase):
    def test_base64(self) -> None:
        text = Base64Text.encode64(b"\x89PNG\x00\xff" * 100)
        self.assertEqual(text.raw, base64.b64encode(b"\x89PNG\x00\xff" * 100))
        self.assertIsInstance(text, str)
        self.assertEqual(text.raw, text.encode("ascii"))
        body = {"output": "screenshot", "screenshot_data": text, "screenshot_width": 3}
        self.assertEqual(dumps(body), reference(body))

    def test_nested(self) -> None:
        """Several images in lists and dicts (a batch), in order."""
        images = [Base64Text.encode64(bytes([i]) * (i + 1)) for i in range(5)]
        body = {"results": [{"status": 200, "screenshot_data": im} for im in images[:3]],
                "observation": {"screenshot_data": images[3], "more": (images[4], "é\n")},
                "failed_index": None}
        self.assertEqual(dumps(body), reference(body))

    def test_partsCarryTheImageAsIs(self) -> None:
        """The base64 bytes are one of the pieces, the very object."""
        text = Base64Text.encode64(b"\x00" * 300)
        pieces = parts({"a": 1, "screenshot_data": text})
        self.assertTrue(any(p is text.raw for p in pieces))
        self.assertEqual(b"".join(pieces), reference({"a": 1, "screenshot_data": text}))

    def test_clientTextLooksLikeMarker(self) -> None:
        """Client strings with NUL characters stay what they were."""
        body = {"detail": "\x000", "data": Base64Text.encode64(b"x"), "also": "\x00" * 3}
        self.assertEqual(dumps(body), reference(body))

    @given(json_values)
    def test_sameAsJSON(self, value: Any) -> None:
        self.assertEqual(dumps(value), reference(value))

    @given(json_values, st.binary(max_size=64))
    def test_sameAsJSONWithImage(self, value: Any, data: bytes) -> None:
        body = {"before": value, "image": Base64Text.encode64(data), "after": [value]}
        self.assertEqual(dumps(body), reference(body))
