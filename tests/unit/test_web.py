"""
Every 200/400/500 of the action table, through StubTreq and a fake desktop
verified against IDesktop.
"""

import base64
import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from agentdesktop.interfaces import IDesktop
from agentdesktop.request import MAX_BODY_BYTES
from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop
from agentdesktop.web.root import makeRoot
from tests.unit.service import ServiceTestCase

URL = "http://localhost/api/v0/desktop/"


class APITestCase(ServiceTestCase):
    def request(self, method: str, path: str, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        code, content, answerHeaders = self.exchange(method, URL + path, raw=raw, headers=headers)
        if answerHeaders.getRawHeaders("content-type") == ["application/json"]:
            return code, json.loads(content)
        return code, content

    def action(self, **body: Any) -> tuple[int, Any]:
        return self.request("POST", "action", json.dumps(body).encode())

    def assertAction(self, status: int, message: str, **body: Any) -> Any:
        code, out = self.action(**body)
        self.assertEqual(code, status, out)
        key = "output" if status == 200 else "message"
        self.assertEqual(out[key], message)
        return out


class ActionTable(APITestCase):
    def test_fakeProvidesIDesktop(self) -> None:
        self.assertTrue(verifyObject(IDesktop, self.desktop))

    def test_successOutputs(self) -> None:
        c = [10, 20]
        for action, body in [
            ("key", {"text": "ctrl+shift+t"}), ("key_down", {"text": "shift"}),
            ("key_up", {"text": "shift"}), ("type", {"text": "hi"}),
            ("mouse_move", {"coordinate": c}), ("left_click", {"coordinate": c}),
            ("right_click", {"coordinate": c}), ("middle_click", {"coordinate": c}),
            ("double_click", {"coordinate": c}), ("triple_click", {"coordinate": c}),
            ("left_click_drag", {"coordinate": c, "start_coordinate": [0, 0]}),
            ("left_mouse_down", {}), ("left_mouse_up", {}),
            ("scroll", {"coordinate": c}), ("hold_key", {"text": "a", "duration": 0}),
            ("wait", {"duration": 0}),
        ]:
            self.assertAction(200, f"{action} action performed", action=action, **body)

    def test_missingFields(self) -> None:
        for action in ("key", "key_down", "key_up", "type", "hold_key"):
            self.assertAction(400, f'Missing "text" for {action} action.', action=action)
            self.assertAction(400, f'Missing "text" for {action} action.', action=action, text="")
        for action in ("mouse_move", "left_click", "right_click", "middle_click",
                       "double_click", "triple_click", "scroll"):
            self.assertAction(400, f'Missing "coordinate" for {action} action.', action=action)
        self.assertAction(400, 'Missing "coordinate" or "start_coordinate" for left_click_drag.',
                          action="left_click_drag", coordinate=[1, 1])
        self.assertAction(400, 'Missing "region" for zoom action.', action="zoom")

    def test_badValues(self) -> None:
        self.assertAction(400, "Invalid scroll direction: sideways", action="scroll",
                          coordinate=[1, 1], scroll_direction="sideways")
        self.assertAction(400, "Unknown action: fly", action="fly")
        self.assertAction(400, "Unknown action: ")
        out = self.assertAction(400, 'Unknown key name: "bogus".', action="key", text="ctrl+bogus")
        self.assertIn("detail", out)
        self.assertAction(400, "Invalid duration: 60001", action="hold_key", text="a",
                          duration=60001)
        self.assertAction(400, "Invalid duration: -1", action="wait", duration=-1)
        self.assertAction(400, "Invalid screenshot format: gif", action="screenshot", format="gif")
        self.assertAction(400, 'Invalid "text" for type action.', action="type", text="a\x07")
        self.assertEqual(self.desktop.typed, "")

    def test_failures(self) -> None:
        c = [1, 1]
        for method, action, body, message in [
            ("keys", "key", {"text": "a"}, "Key press failed."),
            ("keyDown", "key_down", {"text": "a"}, "Key down failed."),
            ("keyUp", "key_up", {"text": "a"}, "Key up failed."),
            ("typeText", "type", {"text": "a"}, "Type action failed."),
            ("pointer", "cursor_position", {}, "Cursor position failed."),
            ("move", "mouse_move", {"coordinate": c}, "Mouse move failed."),
            ("click", "left_click", {"coordinate": c}, "Left click failed."),
            ("click", "right_click", {"coordinate": c}, "Right click failed."),
            ("click", "middle_click", {"coordinate": c}, "Middle click failed."),
            ("click", "double_click", {"coordinate": c}, "Double click failed."),
            ("click", "triple_click", {"coordinate": c}, "Triple click failed."),
            ("drag", "left_click_drag", {"coordinate": c, "start_coordinate": c},
             "Left click drag failed."),
            ("buttonDown", "left_mouse_down", {}, "Left mouse down failed."),
            ("buttonUp", "left_mouse_up", {}, "Left mouse up failed."),
            ("click", "scroll", {"coordinate": c}, "Scroll failed."),
            ("keyDown", "hold_key", {"text": "a", "duration": 0}, "Key down failed."),
            ("keyUp", "hold_key", {"text": "a", "duration": 0}, "Key up failed."),
            ("screenshot", "screenshot", {}, "Screenshot failed."),
        ]:
            self.desktop.failing = {method}
            out = self.assertAction(500, message, action=action, **body)
            self.assertIn("failed on purpose", out["detail"])
            self.assertEqual(self.desktop.pressedKeys, [], action)
            self.assertEqual(self.desktop.pressedButtons, set(), action)

    def test_desktopDoesNotStart(self) -> None:
        self.desktop.failing = {"start"}
        out = self.assertAction(500, "Failed to start desktop session.", action="screenshot")
        self.assertIn("Xvnc", out["detail"])

    def test_decodeErrors(self) -> None:
        code, out = self.request("POST", "action", b'{"coordinate": "1,2"}')
        self.assertEqual((code, out["message"]), (400, "Failed to decode request body."))
        self.assertIn('"coordinate"', out["detail"])
        code, out = self.request("POST", "action", b"not json")
        self.assertEqual(code, 400)

    def test_bodyTooLarge(self) -> None:
        code, out = self.request("POST", "action", b" " * (MAX_BODY_BYTES + 1))
        self.assertEqual(code, 413)

    def test_wrongMethod(self) -> None:
        code, out = self.request("GET", "action")
        self.assertEqual(code, 405)
        self.assertEqual(out["message"], "Method not allowed.")
        d = self.treq.request("TRACE", URL + "info")
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD"])

    def test_shuttingDown(self) -> None:
        self.state.shuttingDown = True
        self.assertAction(503, "Desktop API is shutting down.", action="screenshot")


class Semantics(APITestCase):
    def test_clickMapsDeclaredToNative(self) -> None:
        self.action(action="left_click", coordinate=[640, 360], scaled_width=1280, scaled_height=720)
        self.action(action="double_click", coordinate=[853, 402], scaled_width=1280,
                    scaled_height=720, text="shift")
        self.assertEqual(self.desktop.clicks, [(960, 540, 1, 1, ()), (1280, 603, 1, 2, ("Shift_L",))])

    def test_hugeNumbersAreNot500(self) -> None:
        self.action(action="left_click", coordinate=[10**400, -(10**400)],
                    scaled_width=1280, scaled_height=720)
        self.assertEqual(self.desktop.clicks, [(1919, 0, 1, 1, ())])
        for body in ({"action": "wait", "duration": 10**400},
                     {"action": "scroll", "coordinate": [1, 1], "scroll_amount": 10**400},
                     {"action": "screenshot", "quality": 10**400},
                     {"action": "screenshot", "scaled_width": 10**400, "scaled_height": 10**400},
                     {"action": "left_click", "coordinate": [1, 1], "scaled_width": 10**400},
                     {"action": "cursor_position", "scaled_height": 10**400},
                     {"action": "zoom", "region": [0, 0, 5, 5], "scaled_width": 65536}):
            code, out = self.action(**body)
            self.assertEqual(code, 400, (body, out))

    def test_hugeZoomRegionIsClamped(self) -> None:
        out = self.assertAction(200, "zoom", action="zoom", region=[0, 0, 10**400, 10**400])
        self.assertEqual(base64.b64decode(out["screenshot_data"]), b"png:1920x1080:(0, 0, 1920, 1080)")

    def test_scroll(self) -> None:
        self.action(action="scroll", coordinate=[5, 6], scroll_direction="left",
                    scroll_amount=4, key="ctrl+alt")
        self.action(action="scroll", coordinate=[5, 6])
        self.assertEqual(self.desktop.clicks, [(5, 6, 6, 4, ("Control_L", "Alt_L")),
                                               (5, 6, 5, 3, ())])

    def test_cursorPositionInDeclaredSpace(self) -> None:
        self.desktop.pointerAt = (960, 540)
        self.assertAction(200, "x=640,y=360", action="cursor_position",
                          scaled_width=1280, scaled_height=720)
        self.assertAction(200, "x=960,y=540", action="cursor_position")

    def test_screenshotDeclaredSize(self) -> None:
        out = self.assertAction(200, "screenshot", action="screenshot",
                                scaled_width=1280, scaled_height=720)
        self.assertEqual((out["screenshot_width"], out["screenshot_height"]), (1280, 720))
        self.assertEqual(base64.b64decode(out["screenshot_data"]), b"png:1280x720:None")
        self.assertNotIn("screenshot_format", out)
        out = self.assertAction(200, "screenshot", action="screenshot", format="jpeg", quality=50)
        self.assertEqual(out["screenshot_format"], "jpeg")

    def test_zoom(self) -> None:
        out = self.assertAction(200, "zoom", action="zoom", region=[0, 0, 640, 360],
                                scaled_width=1280, scaled_height=720)
        self.assertEqual((out["screenshot_width"], out["screenshot_height"]), (1280, 720))
        self.assertEqual(base64.b64decode(out["screenshot_data"]), b"png:1280x720:(0, 0, 960, 540)")
        self.assertAction(400, 'Invalid "region" for zoom action.', action="zoom",
                          region=[10, 10, 5, 20])

    def test_holdKeyReleasesOnTimer(self) -> None:
        d = self.treq.post(URL + "action", json.dumps(
            {"action": "hold_key", "text": "shift", "duration": 500}).encode())
        self.treq.flush()
        self.assertNoResult(d)
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.clock.advance(0.5)
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(self.desktop.pressedKeys, [])

    def test_holdKeyReleasedOnShutdown(self) -> None:
        self.treq.post(URL + "action", json.dumps(
            {"action": "hold_key", "text": "ctrl", "duration": 60000}).encode())
        self.treq.flush()
        self.assertEqual(self.desktop.pressedKeys, ["Control_L"])
        self.state.runner.close()
        self.treq.flush()
        self.assertEqual(self.desktop.pressedKeys, [])

    def test_inputIsSerialized(self) -> None:
        self.treq.post(URL + "action", json.dumps(
            {"action": "hold_key", "text": "a", "duration": 100}).encode())
        self.treq.post(URL + "action", json.dumps(
            {"action": "left_click", "coordinate": [1, 1]}).encode())
        self.treq.flush()
        self.assertEqual(self.desktop.clicks, [])
        self.clock.advance(0.1)
        self.treq.flush()
        names = [name for name, _ in self.desktop.log]
        self.assertEqual(names, ["keyDown", "keyUp", "click"])

    def test_info(self) -> None:
        code, out = self.request("GET", "info")
        self.assertEqual(code, 200)
        self.assertEqual(out["recommended_width"], 1280)
        self.assertEqual(out["display"], ":99")

    def test_typeExact(self) -> None:
        text = "-n \"q\" 'x' é ü ß € 日本 🙂\n"
        self.assertAction(200, "type action performed", action="type", text=text)
        self.assertEqual(self.desktop.typed, text)


class Auth(SynchronousTestCase):
    def setUp(self) -> None:
        desktop = FakeDesktop()
        clock = task.Clock()
        self.state = makeState(desktop, clock, token="s3cret")
        self.treq = StubTreq(makeRoot(self.state, clock))

    def code(self, url: str, headers: dict[str, list[str]] | None = None) -> int:
        d = self.treq.get(url, headers=headers)
        self.treq.flush()
        return self.successResultOf(d).code

    def test_tokenRequired(self) -> None:
        self.assertEqual(self.code(URL + "info"), 401)
        self.assertEqual(self.code(URL + "info", {"Authorization": ["Bearer wrong"]}), 401)
        self.assertEqual(self.code(URL + "info", {"Authorization": ["Bearer s3cret"]}), 200)
        # Tokens in URLs only with --allow-token-in-url; no token cookie.
        self.assertEqual(self.code(URL + "info?token=s3cret"), 401)
        self.assertEqual(self.code(URL + "info", {"Cookie": ["agentdesktop_token=s3cret"]}), 401)
