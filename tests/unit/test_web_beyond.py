"""
The clipboard, windows, launch and open routes through StubTreq and the
fake desktop: validation, status codes, declared-space geometry.
"""

from __future__ import annotations

import json
import os
from typing import Any

from agentdesktop.interfaces import WindowInfo
from agentdesktop.request import MAX_BODY_BYTES, checkClipboardText, decodeClipboardWrite
from agentdesktop.errors import APIError
from agentdesktop.web.apps import rfc3339
from agentdesktop.web.windows import parseWindowId
from tests.unit.test_web import APITestCase


def window(windowId: int, **changes: Any) -> WindowInfo:
    base: dict[str, Any] = dict(
        id=windowId, title="term", windowClass="XTerm", pid=42, x=600, y=300, width=484,
        height=316, focused=False, minimized=False, maximized=False,
    )
    base.update(changes)
    return WindowInfo(**base)


class Clipboard(APITestCase):
    def post(self, body: Any) -> tuple[int, Any]:
        return self.request("POST", "clipboard", json.dumps(body).encode())

    def test_roundTrip(self) -> None:
        self.assertEqual(self.request("GET", "clipboard"), (200, {"text": None}))
        code, out = self.post({"text": "héllo 🙂"})
        self.assertEqual((code, out), (200, {"message": "Clipboard set.", "selection": "clipboard",
                                             "bytes": len("héllo 🙂".encode())}))
        self.assertEqual(self.request("GET", "clipboard"), (200, {"text": "héllo 🙂"}))
        self.assertEqual(self.request("GET", "clipboard?selection=primary"), (200, {"text": None}))
        self.post({"text": "p", "selection": "PRIMARY"})
        self.assertEqual(self.desktop.clipboard, {"clipboard": "héllo 🙂", "primary": "p"})
        self.post({"text": ""})
        self.assertEqual(self.request("GET", "clipboard"), (200, {"text": ""}))

    def test_badInput(self) -> None:
        for body, status, message in [
            ({"text": 5}, 400, "Failed to decode request body."),
            ({"text": ["a"]}, 400, "Failed to decode request body."),
            ({}, 400, 'Missing "text".'),
            ({"text": None}, 400, 'Missing "text".'),
            ({"text": "x", "selection": "secondary"}, 400, "Unknown selection: secondary."),
            ({"text": "x", "selection": 1}, 400, "Failed to decode request body."),
            ({"text": "\ud800"}, 400, "Invalid clipboard text."),
        ]:
            code, out = self.post(body)
            self.assertEqual((code, out["message"]), (status, message), body)
        code, out = self.request("GET", "clipboard?selection=nope")
        self.assertEqual((code, out["message"]), (400, "Unknown selection: nope."))
        self.assertEqual(self.desktop.clipboard, {})

    def test_tooLarge(self) -> None:
        text = "x" * MAX_BODY_BYTES
        code, out = self.request("POST", "clipboard", json.dumps({"text": text}).encode())
        self.assertEqual(code, 413, out)
        # The text's own limit, for callers that bypass the body limit.
        e = self.assertRaises(APIError, checkClipboardText, "é" * (MAX_BODY_BYTES // 2 + 1))
        self.assertEqual((e.status, e.message), (413, "Clipboard text too large."))
        checkClipboardText("é" * (MAX_BODY_BYTES // 2))
        body = json.dumps({"text": "\u00e9" * (MAX_BODY_BYTES // 2 + 1)}).encode()
        e = self.assertRaises(APIError, decodeClipboardWrite, body)
        self.assertEqual(e.status, 413)

    def test_failures(self) -> None:
        self.desktop.failing = {"readClipboard", "writeClipboard"}
        code, out = self.request("GET", "clipboard")
        self.assertEqual((code, out["message"]), (500, "Failed to read clipboard."))
        code, out = self.post({"text": "x"})
        self.assertEqual((code, out["message"]), (500, "Failed to set clipboard."))
        self.desktop.failing = {"start"}
        code, out = self.post({"text": "x"})
        self.assertEqual((code, out["message"]), (500, "Failed to start desktop session."))

    def test_methods(self) -> None:
        code, out = self.request("DELETE", "clipboard")
        self.assertEqual(code, 405)


class Windows(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.desktop.windowList = [window(0x400001, focused=True), window(0x600001, title="two")]

    def test_listInDeclaredSpace(self) -> None:
        code, out = self.request("GET", "windows?scaled_width=1280&scaled_height=720")
        self.assertEqual(code, 200, out)
        self.assertEqual(out["windows"][0], {
            "id": 0x400001, "title": "term", "class": "XTerm", "pid": 42,
            "x": 400, "y": 200, "width": 323, "height": 211,
            "focused": True, "minimized": False, "maximized": False,
        })
        code, out = self.request("GET", "windows")
        self.assertEqual((out["windows"][1]["x"], out["windows"][1]["width"]), (600, 484))
        code, out = self.request("GET", "windows/")
        self.assertEqual(len(out["windows"]), 2)
        code, out = self.request("GET", "windows?scaled_width=wide")
        self.assertEqual((code, out["message"]), (400, "Failed to decode request body."))
        self.assertIn("scaled_width", out["detail"])

    def test_oneWindow(self) -> None:
        code, out = self.request("GET", f"windows/{0x600001}")
        self.assertEqual((code, out["title"]), (200, "two"))
        code, out = self.request("GET", "windows/0x600001?scaled_width=960")
        self.assertEqual((code, out["x"], out["y"]), (200, 300, 300))
        code, out = self.request("GET", "windows/12345")
        self.assertEqual((code, out["message"]), (404, "Window not found."))

    def test_verbs(self) -> None:
        code, out = self.request("POST", f"windows/{0x600001}/focus")
        self.assertEqual((code, out["window"]["focused"]), (200, True))
        self.assertFalse(self.desktop.windowList[0].focused)
        code, out = self.request("POST", f"windows/{0x600001}/maximize")
        self.assertTrue(out["window"]["maximized"])
        code, out = self.request("POST", f"windows/{0x600001}/minimize")
        self.assertTrue(out["window"]["minimized"])
        code, out = self.request("POST", f"windows/{0x600001}/restore")
        self.assertEqual((out["window"]["minimized"], out["window"]["maximized"]), (False, False))
        code, out = self.request("POST", f"windows/{0x600001}/close")
        self.assertEqual((code, out), (200, {"window": None}))
        self.assertEqual([w.id for w in self.desktop.windowList], [0x400001])

    def test_notFound(self) -> None:
        for path in ("windows/999/focus", "windows/0x600001/explode", "windows/abc/focus",
                     "windows/-1/focus", "windows/0/focus", "windows/99999999999/focus",
                     "windows/0x600001/focus/more", "windows/0x600001/focus/"):
            code, out = self.request("POST", path)
            self.assertEqual(code, 404, path)
            self.assertIn("message", out)
        code, out = self.request("POST", "windows/999/close")
        self.assertEqual(out["message"], "Window not found.")
        self.assertIn("999", out["detail"])

    def test_methods(self) -> None:
        self.assertEqual(self.request("GET", f"windows/{0x600001}/focus")[0], 405)
        self.assertEqual(self.request("POST", "windows")[0], 405)

    def test_failure(self) -> None:
        self.desktop.failing = {"windows", "windowAction"}
        code, out = self.request("GET", "windows")
        self.assertEqual((code, out["message"]), (500, "Failed to list windows."))
        code, out = self.request("POST", f"windows/{0x600001}/close")
        self.assertEqual((code, out["message"]), (500, "Window action failed."))

    def test_parseWindowId(self) -> None:
        self.assertEqual(parseWindowId(b"4194305"), 0x400001)
        self.assertEqual(parseWindowId(b"0x400001"), 0x400001)
        self.assertEqual(parseWindowId(b"0X40000A"), 0x40000A)
        for bad in (b"", b"0", b"x1", b"1.5", b"0x", b"4294967296", b"+1", b" 1", b"\xff"):
            self.assertIsNone(parseWindowId(bad), bad)


class Launch(APITestCase):
    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, json.dumps(body).encode())

    def test_launch(self) -> None:
        code, out = self.post("launch", {"command": ["xterm", "-T", "t"]})
        self.assertEqual((code, out), (200, {"pid": 1000, "window": None}))
        code, out = self.post("launch", {"command": ["xterm"], "wait_for_window": True,
                                         "scaled_width": 960, "scaled_height": 540})
        self.assertEqual(out["window"]["pid"], out["pid"])
        self.assertEqual((out["window"]["width"], out["window"]["height"]), (320, 240))
        self.assertEqual(self.desktop.log[-1], ("launch", (("xterm",), True, 10000)))
        code, out = self.request("GET", "launch")
        self.assertEqual([p["command"] for p in out["processes"]], [["xterm", "-T", "t"], ["xterm"]])
        self.assertTrue(out["processes"][0]["started_at"].endswith("Z"))

    def test_badCommands(self) -> None:
        self.desktop.missingPrograms = {"nosuch"}
        for body, message in [
            ({"command": "xterm -e top"}, "Failed to decode request body."),
            ({"command": []}, "Failed to decode request body."),
            ({"command": ["xterm", 5]}, "Failed to decode request body."),
            ({}, 'Missing "command".'),
            ({"command": [""]}, "Missing program."),
            ({"command": ["a\0b"]}, "Invalid command."),
            ({"command": ["xterm"], "wait_for_window": "yes"}, "Failed to decode request body."),
            ({"command": ["xterm"], "timeout_ms": -1}, "Invalid timeout_ms."),
            ({"command": ["xterm"], "timeout_ms": 60001}, "Invalid timeout_ms."),
            ({"command": ["xterm"], "timeout_ms": 1.5}, "Failed to decode request body."),
            ({"command": ["nosuch", "-x"]}, 'Cannot launch "nosuch".'),
        ]:
            code, out = self.post("launch", body)
            self.assertEqual((code, out["message"]), (400, message), body)
        self.assertIn("nosuch", out["detail"])
        self.assertEqual(self.desktop.launched(), [])

    def test_open(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("x")
        code, out = self.post("open", {"target": path})
        self.assertEqual((code, out), (200, {"pid": 1000}))
        code, out = self.post("open", {"target": "https://example.org/"})
        self.assertEqual(code, 200)
        self.assertEqual([p.command for p in self.desktop.launched()],
                         [("xdg-open", path), ("xdg-open", "https://example.org/")])
        for target, message in [
            ("", 'Missing "target".'), (None, 'Missing "target".'),
            (5, "Failed to decode request body."),
            (path + ".missing", "Cannot open target."), ("relative.txt", "Cannot open target."),
        ]:
            code, out = self.post("open", {"target": target})
            self.assertEqual((code, out["message"]), (400, message), target)

    def test_rfc3339(self) -> None:
        self.assertEqual(rfc3339(1700000000.5), "2023-11-14T22:13:20.500Z")
