import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import APIError
from agentdesktop.request import decodeAction, decodeRecordingId


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


class DecodeAction(SynchronousTestCase):
    def assertDecodeError(self, raw: bytes, *words: str) -> None:
        with self.assertRaises(APIError) as cm:
            decodeAction(raw)
        self.assertEqual(cm.exception.status, 400)
        self.assertEqual(cm.exception.message, "Failed to decode request body.")
        for w in words:
            self.assertIn(w, cm.exception.detail)

    def test_fields(self) -> None:
        req = decodeAction(body(action="left_click", coordinate=[1, 2], scaled_width=1280,
                                text=None, extra={"ignored": True}))
        self.assertEqual(req.action, "left_click")
        self.assertEqual(req.coordinate, (1, 2))
        self.assertEqual(req.scaled_width, 1280)
        self.assertIsNone(req.text)

    def test_wrongTypes(self) -> None:
        self.assertDecodeError(body(coordinate="1,2"), "coordinate", "string")
        self.assertDecodeError(body(coordinate=[1.5, 2]), "coordinate", "integers")
        self.assertDecodeError(body(coordinate=[1, 2, 3]), "coordinate", "3 elements")
        self.assertDecodeError(body(coordinate=[1]), "coordinate", "1 elements")
        self.assertDecodeError(body(coordinate=[True, 2]), "coordinate", "boolean")
        self.assertDecodeError(body(duration=True), "duration", "boolean")
        self.assertDecodeError(body(duration=1.0), "duration", "integer")
        self.assertDecodeError(body(action={"a": 1}), "action", "object")
        self.assertDecodeError(body(text=5), "text", "string")
        self.assertDecodeError(body(scaled_width="1280"), "scaled_width")

    def test_notJSON(self) -> None:
        self.assertDecodeError(b"{")
        self.assertDecodeError(b"")
        self.assertDecodeError(b"[1]", "object")
        self.assertDecodeError(b'{"duration": NaN}')
        self.assertDecodeError(b"\xff\xfe")

    @given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                        | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c),
                        max_leaves=10))
    def test_anyValueIsAcceptedOrA400(self, value: object) -> None:
        for name in ("action", "coordinate", "duration", "text", "region"):
            try:
                decodeAction(json.dumps({name: value}).encode())
            except APIError as e:
                self.assertEqual(e.status, 400)


class DecodeRecordingId(SynchronousTestCase):
    def test_canonical(self) -> None:
        self.assertEqual(
            decodeRecordingId(body(recording_id="A0B1C2D3-0000-4000-8000-00000000000F")),
            "a0b1c2d3-0000-4000-8000-00000000000f",
        )

    def test_messages(self) -> None:
        for raw, message in [
            (b"nope", "Failed to decode request body."),
            (body(), "Missing recording_id."),
            (body(recording_id=""), "Missing recording_id."),
            (body(recording_id="../etc/passwd"), "Invalid recording_id format."),
        ]:
            with self.assertRaises(APIError) as cm:
                decodeRecordingId(raw)
            self.assertEqual((cm.exception.status, cm.exception.message), (400, message))
