"""
agentdesktop.client: request building and answer parsing, through
treq.testing.StubTreq against small in-memory resources, and against the
service's own resource tree with the fake desktop and recorder.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource, server

from agentdesktop.client import (
    DesktopAPIError, DesktopClient, Recording, Screenshot, apiBase, parseRecording,
)
from agentdesktop.interfaces import RecordingResult
from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop, FakeRecorder
from agentdesktop.web.recording import MultipartBody
from agentdesktop.web.root import makeRoot

ROOT = "http://desk.example:8790"


@dataclass
class Seen:
    method: str
    uri: str
    headers: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Canned(resource.Resource):
    """Answers every request with one canned response and remembers the requests."""

    isLeaf = True

    def __init__(self, code: int = 200, body: Any = None, contentType: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.code = code
        self.body = json.dumps({"output": "done"} if body is None else body).encode() \
            if not isinstance(body, bytes) else body
        self.contentType = contentType
        self.headers = headers or {}
        self.seen: list[Seen] = []

    def render(self, request: server.Request) -> bytes:
        self.seen.append(Seen(
            request.method.decode(), request.uri.decode(),
            {k.decode().lower(): [v.decode() for v in vs] for k, vs in request.requestHeaders.getAllRawHeaders()},
            request.content.read(),
        ))
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", self.contentType.encode())
        for name, value in self.headers.items():
            request.setHeader(name.encode(), value.encode())
        return self.body


def frame(parts: list[tuple[bytes, bytes]], boundary: bytes = b"b" * 32) -> tuple[str, bytes]:
    """A multipart/mixed body framed exactly as the service frames it."""
    from io import BytesIO

    body = MultipartBody([(ct, BytesIO(data), len(data)) for ct, data in parts], boundary)
    out = b"".join(s if isinstance(s, bytes) else s[0].read() for s in body.segments)
    return body.contentType.decode(), out


class ClientTestCase(SynchronousTestCase):
    def client(self, res: resource.Resource, url: str = ROOT, token: str | None = None) -> DesktopClient:
        self.stub = StubTreq(res)
        return DesktopClient(url, token, http=self.stub)

    def result(self, d: defer.Deferred[Any]) -> Any:
        self.stub.flush()
        return self.successResultOf(d)

    def error(self, d: defer.Deferred[Any]) -> DesktopAPIError:
        self.stub.flush()
        return self.failureResultOf(d, DesktopAPIError).value  # type: ignore[return-value]


class URLs(ClientTestCase):
    def test_apiBase(self) -> None:
        for url, want in [
            ("http://h:1", "http://h:1/api/v0/desktop/"),
            ("http://h:1/", "http://h:1/api/v0/desktop/"),
            ("http://h:1/api/v0/desktop", "http://h:1/api/v0/desktop/"),
            ("http://h:1/api/v0/desktop/", "http://h:1/api/v0/desktop/"),
            ("https://h/desk/7", "https://h/desk/7/api/v0/desktop/"),
            ("https://h/desk/7/api/v0/desktop//", "https://h/desk/7/api/v0/desktop/"),
        ]:
            self.assertEqual(apiBase(url), want, url)

    def test_badURLs(self) -> None:
        for url in ["127.0.0.1:8790", "ftp://h/", "http://", "http://h/?token=x", "http://h/#x", ""]:
            self.assertRaises(ValueError, apiBase, url)

    def test_routesUnderEitherSpelling(self) -> None:
        for url in [ROOT, ROOT + "/", ROOT + "/api/v0/desktop", ROOT + "/api/v0/desktop/"]:
            res = Canned(body={"width": 1})
            self.assertEqual(self.result(self.client(res, url).info()), {"width": 1})
            self.assertEqual((res.seen[0].method, res.seen[0].uri), ("GET", "/api/v0/desktop/info"))
        res = Canned(body={})
        self.result(self.client(res, "http://proxy/desk1").info())
        self.assertEqual(res.seen[0].uri, "/desk1/api/v0/desktop/info")

    def test_pathSegmentsQuoted(self) -> None:
        res = Canned(body={"window": None})
        self.assertIsNone(self.result(self.client(res).window_action("0x40000c", "a/b?c")))
        self.assertEqual(res.seen[0].uri, "/api/v0/desktop/windows/0x40000c/a%2Fb%3Fc")
        self.assertEqual(res.seen[0].body, b"")


class Lifetime(ClientTestCase):
    def test_ownPoolClosed(self) -> None:
        from twisted.internet.testing import MemoryReactorClock

        client = DesktopClient(ROOT, reactor=MemoryReactorClock())
        self.assertTrue(client._ownPool is not None and client._ownPool.persistent)
        self.successResultOf(client.close())

    def test_asyncWith(self) -> None:
        async def use() -> DesktopClient:
            async with self.client(Canned(body={})) as desk:
                await desk.info()
            return desk

        self.assertIsInstance(self.result(defer.Deferred.fromCoroutine(use())), DesktopClient)


class Auth(ClientTestCase):
    def test_bearerSent(self) -> None:
        res = Canned(body={})
        client = self.client(res, token="s3cret tøken")
        self.result(client.info())
        self.assertEqual(res.seen[0].headers["authorization"], ["Bearer s3cret tøken"])
        self.assertNotIn("s3cret", repr(client))

    def test_noTokenNoHeader(self) -> None:
        res = Canned(body={})
        self.result(self.client(res).info())
        self.assertNotIn("authorization", res.seen[0].headers)

    def test_unauthorized(self) -> None:
        res = Canned(401, {"message": "Unauthorized.", "detail": "Send Authorization: Bearer <token>."})
        e = self.error(self.client(res, token="wrong").info())
        self.assertEqual((e.status, e.message, e.detail), (401, "Unauthorized.", "Send Authorization: Bearer <token>."))
        self.assertNotIn("wrong", str(e) + repr(e))


class Actions(ClientTestCase):
    def assertSends(self, call: Any, body: dict[str, Any], answer: Any = None) -> Any:
        res = Canned(body=answer)
        out = self.result(call(self.client(res)))
        [seen] = res.seen
        self.assertEqual((seen.method, seen.uri), ("POST", "/api/v0/desktop/action"))
        self.assertEqual(seen.headers["content-type"], ["application/json"])
        self.assertEqual(seen.json(), body)
        return out

    def test_bodies(self) -> None:
        s = {"scaled_width": 1280, "scaled_height": 720}
        cases: list[tuple[Any, dict[str, Any]]] = [
            (lambda c: c.left_click(1, 2), {"action": "left_click", "coordinate": [1, 2]}),
            (lambda c: c.right_click(1, 2, "shift", 1280, 720),
             {"action": "right_click", "coordinate": [1, 2], "text": "shift", **s}),
            (lambda c: c.middle_click(0, 0), {"action": "middle_click", "coordinate": [0, 0]}),
            (lambda c: c.double_click(3, 4, modifiers="ctrl+alt"),
             {"action": "double_click", "coordinate": [3, 4], "text": "ctrl+alt"}),
            (lambda c: c.triple_click(3, 4), {"action": "triple_click", "coordinate": [3, 4]}),
            (lambda c: c.back_click(3, 4), {"action": "back_click", "coordinate": [3, 4]}),
            (lambda c: c.forward_click(3, 4), {"action": "forward_click", "coordinate": [3, 4]}),
            (lambda c: c.mouse_move(5, 6, scaled_width=1280, scaled_height=720),
             {"action": "mouse_move", "coordinate": [5, 6], **s}),
            (lambda c: c.left_click_drag((1, 2), (3, 4)),
             {"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [3, 4]}),
            (lambda c: c.left_click_drag(path=[(1, 2), (3, 4), (5, 6)], modifiers="shift"),
             {"action": "left_click_drag", "path": [[1, 2], [3, 4], [5, 6]], "text": "shift"}),
            (lambda c: c.left_mouse_down(), {"action": "left_mouse_down"}),
            (lambda c: c.left_mouse_down((7, 8)), {"action": "left_mouse_down", "coordinate": [7, 8]}),
            (lambda c: c.left_mouse_up((7, 8), 1280, 720), {"action": "left_mouse_up", "coordinate": [7, 8], **s}),
            (lambda c: c.scroll(9, 10), {"action": "scroll", "coordinate": [9, 10], "scroll_direction": "down",
                                         "scroll_amount": 3}),
            (lambda c: c.scroll(9, 10, "left", 7, "shift"),
             {"action": "scroll", "coordinate": [9, 10], "scroll_direction": "left", "scroll_amount": 7,
              "text": "shift"}),
            (lambda c: c.key("ctrl+s"), {"action": "key", "text": "ctrl+s"}),
            (lambda c: c.key("Down", repeat=5), {"action": "key", "text": "Down", "repeat": 5}),
            (lambda c: c.key_down("shift"), {"action": "key_down", "text": "shift"}),
            (lambda c: c.key_up("shift"), {"action": "key_up", "text": "shift"}),
            (lambda c: c.hold_key("alt", 500), {"action": "hold_key", "text": "alt", "duration": 500}),
            (lambda c: c.type("-n héllo 🙂\n"), {"action": "type", "text": "-n héllo 🙂\n"}),
            (lambda c: c.wait(250), {"action": "wait", "duration": 250}),
            (lambda c: c.reset_input(), {"action": "reset_input"}),
            (lambda c: c.action(action="left_click", coordinate=[1, 2], bogus=None),
             {"action": "left_click", "coordinate": [1, 2], "bogus": None}),
        ]
        for call, body in cases:
            self.assertSends(call, body)

    def test_outputReturned(self) -> None:
        out = self.assertSends(lambda c: c.left_click(1, 2), {"action": "left_click", "coordinate": [1, 2]},
                               {"output": "left_click action performed"})
        self.assertEqual(out, "left_click action performed")

    def test_typeSendsUTF8(self) -> None:
        res = Canned()
        self.result(self.client(res).type("é🙂"))
        self.assertIn("é🙂".encode(), res.seen[0].body)

    def test_screenshot(self) -> None:
        answer = {"output": "screenshot", "screenshot_data": base64.b64encode(b"\x89PNG\x00\xff").decode(),
                  "screenshot_width": 1280, "screenshot_height": 720}
        shot = self.assertSends(lambda c: c.screenshot(1280, 720),
                                {"action": "screenshot", "scaled_width": 1280, "scaled_height": 720}, answer)
        self.assertEqual(shot, Screenshot(b"\x89PNG\x00\xff", 1280, 720, "png"))
        answer["screenshot_format"] = "jpeg"
        shot = self.assertSends(lambda c: c.screenshot(format="jpeg", quality=70),
                                {"action": "screenshot", "format": "jpeg", "quality": 70}, answer)
        self.assertEqual(shot.format, "jpeg")
        shot = self.assertSends(lambda c: c.zoom((0, 0, 320, 180), 1280, 720),
                                {"action": "zoom", "region": [0, 0, 320, 180], "scaled_width": 1280,
                                 "scaled_height": 720}, answer)
        self.assertEqual(shot.data, b"\x89PNG\x00\xff")

    def test_screenshotWithoutImage(self) -> None:
        for answer in [{"output": "screenshot"},
                       {"screenshot_data": "not base64!", "screenshot_width": 1, "screenshot_height": 1}]:
            e = self.error(self.client(Canned(body=answer)).screenshot())
            self.assertEqual((e.status, e.message), (200, "Unexpected response."))

    def test_cursorPosition(self) -> None:
        for output, want in [("x=640,y=360", (640, 360)), ("X=0,Y=1079", (0, 1079))]:
            point = self.assertSends(lambda c: c.cursor_position(1280, 720),
                                     {"action": "cursor_position", "scaled_width": 1280, "scaled_height": 720},
                                     {"output": output})
            self.assertEqual(point, want)
        e = self.error(self.client(Canned(body={"output": "somewhere"})).cursor_position())
        self.assertEqual(e.message, "Unexpected response.")
        self.assertIn("somewhere", e.detail)

    def test_batch(self) -> None:
        answer = {"results": [{"status": 200, "output": "type action performed"}], "failed_index": None}
        res = Canned(body=answer)
        client = self.client(res)
        actions = [{"action": "type", "text": "hi"}]
        self.assertEqual(self.result(client.batch(actions)), answer)
        self.result(client.batch(actions, observe=True, scaled_width=1280, scaled_height=720))
        self.result(client.batch(actions, observe={"settle_ms": 50}))
        self.assertEqual([s.uri for s in res.seen], ["/api/v0/desktop/batch"] * 3)
        self.assertEqual([s.json() for s in res.seen], [
            {"actions": actions},
            {"actions": actions, "observe": {}, "scaled_width": 1280, "scaled_height": 720},
            {"actions": actions, "observe": {"settle_ms": 50}},
        ])

    def test_rawRequest(self) -> None:
        res = Canned(body={"tree": []})
        out = self.result(self.client(res).request("GET", "/accessibility/", params={"window": 5, "max_depth": None}))
        self.assertEqual(out, {"tree": []})
        self.assertEqual((res.seen[0].method, res.seen[0].uri), ("GET", "/api/v0/desktop/accessibility?window=5"))


class Errors(ClientTestCase):
    def test_envelope(self) -> None:
        e = self.error(self.client(Canned(400, {"message": 'Unknown key name: "nosuchkey".'})).key("nosuchkey"))
        self.assertEqual((e.status, e.message, e.detail), (400, 'Unknown key name: "nosuchkey".', ""))
        self.assertEqual(str(e), '400 Unknown key name: "nosuchkey".')
        e = self.error(self.client(Canned(500, {"message": "Left click failed.", "detail": "xdotool: boom"}))
                       .left_click(1, 1))
        self.assertEqual((e.status, e.message, e.detail), (500, "Left click failed.", "xdotool: boom"))
        self.assertEqual(str(e), "500 Left click failed.: xdotool: boom")

    def test_extraFieldsKept(self) -> None:
        body = {"message": "Safety checks need acknowledgement.",
                "pending_safety_checks": [{"id": "sc_1", "code": "malicious_instructions"}]}
        e = self.error(self.client(Canned(409, body)).openai({"type": "computer_call"}))
        self.assertEqual((e.status, e.message, e.body), (409, "Safety checks need acknowledgement.", body))

    def test_nonJSONError(self) -> None:
        html = b"<html><body>502 Bad Gateway</body></html>\n"
        e = self.error(self.client(Canned(502, html, "text/html")).info())
        self.assertEqual((e.status, e.message, e.detail), (502, "HTTP 502 Bad Gateway", html.decode().strip()))
        self.assertIsNone(e.body)
        e = self.error(self.client(Canned(500, b"\xff\xfe" * 400, "application/octet-stream")).info())
        self.assertEqual((e.status, e.message, len(e.detail)), (500, "HTTP 500 Internal Server Error", 500))

    def test_jsonThatIsNotTheEnvelope(self) -> None:
        e = self.error(self.client(Canned(404, [1, 2])).info())
        self.assertEqual((e.status, e.message, e.detail, e.body), (404, "HTTP 404 Not Found", "[1, 2]", [1, 2]))
        e = self.error(self.client(Canned(400, {"message": "Bad.", "detail": {"field": "x"}})).info())
        self.assertEqual(e.detail, '{"field": "x"}')

    def test_redirectNotFollowed(self) -> None:
        res = Canned(302, b"", "text/html", {"location": "/api/v0/desktop/"})
        e = self.error(self.client(res).info())
        self.assertEqual((e.status, e.message), (302, "HTTP 302 Found"))
        self.assertEqual(len(res.seen), 1)

    def test_successThatIsNotJSON(self) -> None:
        e = self.error(self.client(Canned(200, b"<html>hello</html>", "text/html")).info())
        self.assertEqual((e.status, e.message), (200, "Unexpected response."))
        self.assertIn("<html>hello", e.detail)

    def test_missingField(self) -> None:
        e = self.error(self.client(Canned(200, {"something": "else"})).windows())
        self.assertEqual(e.message, "Unexpected response.")
        self.assertIn("'windows'", e.detail)


# (The boundary itself cannot be in a part: the service draws it at random.)
TRICKY = [b"", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"x\r", b"--", b"--" + b"b" * 31, b"\r\n--" + b"b" * 31 + b"--\r\n",
          b"--" + b"b" * 32 + b"x",
          b"\x00\xff\x80\x7f", b"From me\r\n", b"Content-Type: text/plain\r\n\r\nhi", b"\r\r\n\n", b"=?utf-8?q?x?=",
          bytes(range(256)) * 4]


class Multipart(ClientTestCase):
    def test_trickyBytes(self) -> None:
        for video in TRICKY:
            for thumb in TRICKY:
                contentType, body = frame([(b"video/mp4", video), (b"image/jpeg", thumb)])
                self.assertEqual(parseRecording(contentType, body), Recording(video, thumb))

    @settings(max_examples=200)
    @given(st.binary(max_size=3000), st.one_of(st.none(), st.binary(max_size=300)))
    def test_anyBytes(self, video: bytes, thumb: bytes | None) -> None:
        parts = [(b"video/mp4", video)] + ([] if thumb is None else [(b"image/jpeg", thumb)])
        contentType, body = frame(parts, uuid.uuid4().hex.encode())
        self.assertEqual(parseRecording(contentType, body), Recording(video, thumb))

    def test_largeVideo(self) -> None:
        video = os.urandom(8 * 1024 * 1024)
        contentType, body = frame([(b"video/mp4", video)])
        self.assertEqual(parseRecording(contentType, body), Recording(video, None))

    def test_malformed(self) -> None:
        contentType, body = frame([(b"video/mp4", b"abc"), (b"image/jpeg", b"def")])
        for ctype, data, why in [
            ("application/json", body, "expected multipart/mixed"),
            ("multipart/mixed", body, "expected multipart/mixed"),
            (contentType, body.replace(b"video/mp4", b"image/png"), "first part is not video/mp4"),
            (contentType, body.replace(b"Content-Length: 3", b"Content-Length: 4", 1), "its Content-Length says 4"),
            (contentType, body.replace(b"Content-Length: 3", b"Content-Length: x", 1), "its Content-Length says x"),
            (contentType, body[: body.rindex(b"--" + b"b" * 32)], "CloseBoundaryNotFoundDefect"),
            (contentType, b"", "StartBoundaryNotFoundDefect"),
        ]:
            e = self.assertRaises(ValueError, parseRecording, ctype, data)
            self.assertIn(why, str(e), ctype)

    def test_stopThroughStub(self) -> None:
        contentType, body = frame([(b"video/mp4", b"\r\nvideo\r\n"), (b"image/jpeg", b"\xff\xd8")])
        res = Canned(200, body, contentType)
        recording = self.result(self.client(res).stop_recording("ID"))
        self.assertEqual(recording, Recording(b"\r\nvideo\r\n", b"\xff\xd8"))
        self.assertEqual((res.seen[0].uri, res.seen[0].json()),
                         ("/api/v0/desktop/recording/stop", {"recording_id": "ID"}))
        e = self.error(self.client(Canned(200, b"{}")).stop_recording("ID"))
        self.assertEqual((e.status, e.message), (200, "Unexpected response."))

    def test_startMakesAnId(self) -> None:
        res = Canned(body={"message": "Recording started."})
        client = self.client(res)
        made = self.result(client.start_recording())
        self.assertEqual(uuid.UUID(made).version, 4)
        self.assertEqual(self.result(client.start_recording("{ABC}")), "{ABC}")
        self.assertEqual([s.json() for s in res.seen], [{"recording_id": made}, {"recording_id": "{ABC}"}])


class PydanticLike:
    """Stands in for an SDK object: what model_dump gives is what goes on the wire."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def model_dump(self, mode: str, exclude_none: bool) -> dict[str, Any]:
        assert (mode, exclude_none) == ("json", True)
        return {k: v for k, v in self.fields.items() if v is not None}


class OtherRoutes(ClientTestCase):
    """Routes other modules serve: the requests the client makes and how it reads the answers."""

    def call(self, call: Any, answer: Any) -> tuple[Any, Seen]:
        res = Canned(body=answer)
        out = self.result(call(self.client(res)))
        [seen] = res.seen
        return out, seen

    def assertRequest(self, seen: Seen, method: str, uri: str, body: Any = None) -> None:
        self.assertEqual((seen.method, seen.uri), (method, uri))
        self.assertEqual(seen.json() if seen.body else None, body)

    def test_clipboard(self) -> None:
        out, seen = self.call(lambda c: c.get_clipboard(), {"text": "héllo 🙂"})
        self.assertEqual(out, "héllo 🙂")
        self.assertRequest(seen, "GET", "/api/v0/desktop/clipboard?selection=clipboard")
        out, seen = self.call(lambda c: c.get_clipboard("primary"), {"text": None})
        self.assertIsNone(out)
        self.assertRequest(seen, "GET", "/api/v0/desktop/clipboard?selection=primary")
        answer = {"message": "Clipboard set.", "selection": "primary", "bytes": 2}
        out, seen = self.call(lambda c: c.set_clipboard("é", "primary"), answer)
        self.assertEqual(out, answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/clipboard", {"text": "é", "selection": "primary"})

    def test_windows(self) -> None:
        window = {"id": 4194316, "title": "t", "class": "XTerm", "pid": 1, "x": 0, "y": 0, "width": 9,
                  "height": 9, "focused": True, "minimized": False}
        out, seen = self.call(lambda c: c.windows(), {"windows": [window]})
        self.assertEqual(out, [window])
        self.assertRequest(seen, "GET", "/api/v0/desktop/windows")
        out, seen = self.call(lambda c: c.windows(1280, 720), {"windows": []})
        self.assertRequest(seen, "GET", "/api/v0/desktop/windows?scaled_width=1280&scaled_height=720")
        out, seen = self.call(lambda c: c.window_action(4194316, "focus"), {"window": window})
        self.assertEqual(out, window)
        self.assertRequest(seen, "POST", "/api/v0/desktop/windows/4194316/focus")

    def test_launchAndOpen(self) -> None:
        answer = {"pid": 4711, "window": None}
        out, seen = self.call(lambda c: c.launch(["xterm", "-T", "x y"]), answer)
        self.assertEqual(out, answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/launch",
                           {"command": ["xterm", "-T", "x y"], "wait_for_window": True, "timeout_ms": 10000})
        out, seen = self.call(lambda c: c.launch(("top",), wait_for_window=False, timeout_ms=0), answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/launch",
                           {"command": ["top"], "wait_for_window": False, "timeout_ms": 0})
        processes = [{"pid": 4711, "command": ["xterm"], "started_at": "2025-01-31T10:00:00.123Z"}]
        out, seen = self.call(lambda c: c.launched(), {"processes": processes})
        self.assertEqual(out, processes)
        self.assertRequest(seen, "GET", "/api/v0/desktop/launch")
        out, seen = self.call(lambda c: c.open("https://example.org/"), {"pid": 4712})
        self.assertEqual(out, 4712)
        self.assertRequest(seen, "POST", "/api/v0/desktop/open", {"target": "https://example.org/"})

    def test_control(self) -> None:
        state = {"held": True, "holder": "alice", "since": "2025-01-01T12:00:00Z"}
        out, seen = self.call(lambda c: c.control(), state)
        self.assertEqual(out, state)
        self.assertRequest(seen, "GET", "/api/v0/desktop/control")
        out, seen = self.call(lambda c: c.take_control(), state)
        self.assertRequest(seen, "POST", "/api/v0/desktop/control", {"take": True})
        out, seen = self.call(lambda c: c.take_control("alice"), state)
        self.assertRequest(seen, "POST", "/api/v0/desktop/control", {"take": True, "holder": "alice"})
        out, seen = self.call(lambda c: c.release_control(), state)
        self.assertRequest(seen, "POST", "/api/v0/desktop/control", {"take": False})

    def test_anthropic(self) -> None:
        block = {"type": "tool_use", "id": "toolu_1", "name": "computer",
                 "input": {"action": "left_click", "coordinate": [1, 2]}}
        answer = {"content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}
        out, seen = self.call(lambda c: c.anthropic([block]), answer)
        self.assertEqual(out, answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/anthropic", {"tool_uses": [block]})
        sdk = PydanticLike(type="tool_use", id="toolu_2", name="computer", input={"action": "screenshot"}, caller=None)
        out, seen = self.call(lambda c: c.anthropic(iter([sdk]), display=(1280, 720)), answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/anthropic", {
            "tool_uses": [{"type": "tool_use", "id": "toolu_2", "name": "computer", "input": {"action": "screenshot"}}],
            "display": {"width": 1280, "height": 720}})
        out, seen = self.call(lambda c: c.anthropic_tool("computer_20250124"), {"type": "computer_20250124"})
        self.assertRequest(seen, "GET", "/api/v0/desktop/dialects/anthropic/tool?version=computer_20250124")

    def test_openai(self) -> None:
        call = {"type": "computer_call", "call_id": "call_1", "action": {"type": "click", "x": 1, "y": 2}}
        answer = {"output": {"type": "computer_call_output", "call_id": "call_1"}, "error": None}
        out, seen = self.call(lambda c: c.openai(call), answer)
        self.assertEqual(out, answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/openai", {"call": call})
        out, seen = self.call(lambda c: c.openai(call, {"width": 1024, "height": 768}, ["sc_1"]), answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/openai", {
            "call": call, "display": {"width": 1024, "height": 768}, "acknowledged_safety_checks": ["sc_1"]})

    def test_gemini(self) -> None:
        calls = [{"function_call": {"name": "click_at", "args": {"x": 500, "y": 500}, "id": "c1"}}]
        answer = {"function_responses": [{"name": "click_at", "id": "c1", "response": {"status": "ok"}}]}
        out, seen = self.call(lambda c: c.gemini(calls), answer)
        self.assertEqual(out, answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/gemini", {"function_calls": calls})
        out, seen = self.call(lambda c: c.gemini(calls, confirmed=["c1"]), answer)
        self.assertRequest(seen, "POST", "/api/v0/desktop/dialects/gemini",
                           {"function_calls": calls, "confirmed": ["c1"]})

    def test_notSerializable(self) -> None:
        d = self.client(Canned()).anthropic([object()])
        self.failureResultOf(d, TypeError)


class AgainstTheService(ClientTestCase):
    """The client against the service's own resource tree, on the fake desktop and recorder."""

    def setUp(self) -> None:
        self.desktop = FakeDesktop()
        self.recorder = FakeRecorder()
        self.clock = task.Clock()
        self.state = makeState(self.desktop, self.clock, "tok", self.recorder)
        self.desk = self.client(makeRoot(self.state, self.clock), token="tok")

    def test_actions(self) -> None:
        info = self.result(self.desk.info())
        self.assertEqual((info["width"], info["recommended_width"]), (1920, 1280))
        self.assertEqual(self.result(self.desk.left_click(640, 360, "shift", 1280, 720)),
                         "left_click action performed")
        self.assertEqual(self.desktop.clicks, [(960, 540, 1, 1, ("Shift_L",))])
        self.assertEqual(self.result(self.desk.cursor_position(1280, 720)), (640, 360))
        self.result(self.desk.type("héllo 🙂"))
        self.assertEqual(self.desktop.typed, "héllo 🙂")
        shot = self.result(self.desk.screenshot(1280, 720, "jpeg", 50))
        self.assertEqual(shot, Screenshot(b"jpeg:1280x720:None", 1280, 720, "jpeg"))
        answer = self.result(self.desk.batch([{"action": "mouse_move", "coordinate": [5, 5]}], observe=True))
        self.assertIsNone(answer["failed_index"])
        self.assertEqual(Screenshot.fromAnswer(answer["observation"]).data, b"png:1920x1080:None")

    def test_errors(self) -> None:
        e = self.error(self.desk.action(action="left_click"))
        self.assertEqual((e.status, e.message), (400, 'Missing "coordinate" for left_click action.'))
        e = self.error(self.desk.key("ctrl+nosuchkey"))
        self.assertEqual((e.status, e.message), (400, 'Unknown key name: "nosuchkey".'))
        self.desktop.failing.add("click")
        e = self.error(self.desk.left_click(1, 1))
        self.assertEqual((e.status, e.message, e.detail), (500, "Left click failed.", "click failed on purpose"))
        e = self.error(self.desk.request("GET", "nothing/here"))
        self.assertEqual((e.status, e.message), (404, "Not found."))
        e = self.error(DesktopClient(ROOT, "nope", http=self.stub).info())
        self.assertEqual((e.status, e.message), (401, "Unauthorized."))

    def test_recording(self) -> None:
        video = b"\x00\x00\x00\x18ftypmp42\r\n--\r\n" + bytes(range(256))
        thumb = b"\xff\xd8\xff\xe0\r\n\r\n\xff\xd9"
        rid = self.result(self.desk.start_recording())
        self.assertEqual(self.recorder.started, [rid])
        d = self.mktemp()
        os.makedirs(d)
        paths = [os.path.join(d, n) for n in ("v.mp4", "t.jpg")]
        for path, data in zip(paths, (video, thumb), strict=True):
            with open(path, "wb") as f:
                f.write(data)
        self.recorder.results[rid] = RecordingResult(rid, paths[0], len(video), paths[1], len(thumb))
        self.assertEqual(self.result(self.desk.stop_recording(rid)), Recording(video, thumb))
        e = self.error(self.desk.stop_recording(str(uuid.uuid4())))
        self.assertEqual((e.status, e.message, e.detail), (404, "Recording not found.", "unknown recording ID"))
        e = self.error(self.desk.start_recording("not-a-uuid"))
        self.assertEqual((e.status, e.message, e.detail),
                         (400, "Invalid recording_id format.", "recording_id must be a valid UUID."))
