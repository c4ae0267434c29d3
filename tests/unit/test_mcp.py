"""
The MCP endpoint through StubTreq and a fake desktop: the JSON-RPC methods
and version negotiation, the Streamable HTTP rules (202, 405, 403, 400), the
tools' schemas and results (validated with the official C{mcp_types}), and
isError results for wrong arguments.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import mcp_types as mt

from tests.unit.service import ServiceTestCase

URL = "http://localhost:8790/api/v0/desktop/mcp"
CLIENT = {"capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
NAMES = {"screenshot", "zoom", "left_click", "right_click", "middle_click", "double_click",
         "triple_click", "left_click_drag", "mouse_move", "left_mouse_down", "left_mouse_up",
         "cursor_position", "scroll", "type", "key", "hold_key", "wait", "computer_batch",
         "read_clipboard", "write_clipboard", "list_windows", "focus_window", "launch",
         "accessibility_tree"}


class MCPTestCase(ServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.ids = 0

    def http(self, method: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None, advance: float = 0) -> tuple[int, Any, Any]:
        code, content, answerHeaders = self.exchange(method, URL, body, raw, headers, advance)
        return code, json.loads(content) if content else None, answerHeaders

    def rpc(self, method: str, params: Any = None, version: str | None = "2025-11-25",
            advance: float = 0) -> dict[str, Any]:
        """A request's JSON-RPC answer (HTTP 200)."""
        self.ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            message["params"] = params
        headers = {"MCP-Protocol-Version": version} if version else {}
        code, out, _ = self.http("POST", message, headers, advance=advance)
        self.assertEqual(code, 200, out)
        self.assertEqual(out["id"], self.ids)
        return out

    def result(self, method: str, params: Any = None, **kw: Any) -> dict[str, Any]:
        out = self.rpc(method, params, **kw)
        self.assertNotIn("error", out, out)
        return out["result"]

    def call(self, name: str, advance: float = 0, version: str | None = "2025-11-25",
             **arguments: Any) -> mt.CallToolResult:
        result = self.result("tools/call", {"name": name, "arguments": arguments},
                             advance=advance, version=version)
        return mt.CallToolResult.model_validate(result)

    def text(self, name: str, **arguments: Any) -> str:
        result = self.call(name, **arguments)
        self.assertFalse(result.is_error, result)
        [item] = result.content
        assert isinstance(item, mt.TextContent)
        return item.text

    def toolError(self, name: str, **arguments: Any) -> str:
        result = self.call(name, **arguments)
        self.assertTrue(result.is_error, result)
        return " ".join(c.text for c in result.content if isinstance(c, mt.TextContent))


class Lifecycle(MCPTestCase):
    def test_initializeNegotiates(self) -> None:
        """The client's version when it is one of ours, else the newest."""
        for asked, agreed in [("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                              ("2025-03-26", "2025-03-26"), ("2024-11-05", "2025-11-25"),
                              ("2026-07-28", "2025-11-25"), ("banana", "2025-11-25")]:
            result = self.result("initialize", {"protocolVersion": asked, **CLIENT}, version=None)
            parsed = mt.InitializeResult.model_validate(result)
            self.assertEqual(parsed.protocol_version, agreed, asked)
            self.assertEqual(parsed.server_info.name, "agentdesktop")
            self.assertIsNotNone(parsed.capabilities.tools)
            self.assertIn("1280x720", parsed.instructions or "")

    def test_initializeIgnoresTheVersionHeader(self) -> None:
        result = self.result("initialize", {"protocolVersion": "2025-06-18", **CLIENT},
                             version="1999-01-01")
        self.assertEqual(result["protocolVersion"], "2025-06-18")

    def test_initializeNeedsItsParams(self) -> None:
        out = self.rpc("initialize", {"protocolVersion": "2025-11-25"})
        self.assertEqual(out["error"]["code"], mt.INVALID_PARAMS)
        self.assertIn("clientInfo", out["error"]["message"])

    def test_notificationsAndResponsesAre202(self) -> None:
        for message in [{"jsonrpc": "2.0", "method": "notifications/initialized"},
                        {"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": 1}},
                        {"jsonrpc": "2.0", "id": 5, "result": {}}]:
            code, out, _ = self.http("POST", message)
            self.assertEqual((code, out), (202, None), message)

    def test_ping(self) -> None:
        self.assertEqual(self.result("ping"), {})
        self.assertEqual(self.result("ping", version=None), {})

    def test_unknownMethod(self) -> None:
        out = self.rpc("resources/list")
        self.assertEqual(out["error"]["code"], mt.METHOD_NOT_FOUND)

    def test_batch(self) -> None:
        """Protocol 2025-03-26's JSON-RPC batches: an array of answers for the requests in it."""
        code, out, _ = self.http("POST", [
            {"jsonrpc": "2.0", "id": "a", "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": "b", "method": "tools/list"}])
        self.assertEqual(code, 200)
        self.assertEqual([m["id"] for m in out], ["a", "b"])
        code, out, _ = self.http("POST", [{"jsonrpc": "2.0", "method": "notifications/initialized"}])
        self.assertEqual((code, out), (202, None))


class Transport(MCPTestCase):
    def test_getAndDeleteAre405(self) -> None:
        for method in ("GET", "DELETE"):
            code, out, headers = self.http(method)
            self.assertEqual(code, 405, method)
            self.assertEqual(headers.getRawHeaders("allow"), ["POST"])

    def test_otherOrigins403(self) -> None:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        for origin in ["http://evil.example", "http://localhost:8791", "https://localhost:443",
                       "null", "http://localhost", "file://"]:
            code, out, _ = self.http("POST", ping, {"Origin": origin})
            self.assertEqual(code, 403, origin)
            self.assertIn(origin, out["error"]["message"])
        self.assertEqual(self.desktop.log, [])
        for origin in ["http://localhost:8790", "http://LOCALHOST:8790"]:
            code, out, _ = self.http("POST", ping, {"Origin": origin})
            self.assertEqual(code, 200, origin)

    def test_originDefaultPorts(self) -> None:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        for host, origin, status in [("example.org", "http://example.org", 200),
                                     ("example.org", "http://example.org:80", 200),
                                     ("example.org:8080", "http://example.org", 403),
                                     ("[::1]:8790", "http://[::1]:8790", 200)]:
            code, _, _ = self.http("POST", ping, {"Host": host, "Origin": origin})
            self.assertEqual(code, status, (host, origin))

    def test_unsupportedVersionHeader(self) -> None:
        """400, saying which versions this server speaks (the SDK then falls back to initialize)."""
        for version in ("2026-07-28", "2024-11-05", "not-a-version"):
            code, out, _ = self.http("POST", {"jsonrpc": "2.0", "id": 7, "method": "server/discover"},
                                     {"MCP-Protocol-Version": version})
            self.assertEqual(code, 400)
            error = mt.JSONRPCError.model_validate(out)
            self.assertEqual((error.id, error.error.code), (7, mt.UNSUPPORTED_PROTOCOL_VERSION))
            data = mt.UnsupportedProtocolVersionErrorData.model_validate(error.error.data)
            self.assertEqual(data.supported, ["2025-11-25", "2025-06-18", "2025-03-26"])

    def test_malformed(self) -> None:
        for raw, code in [(b"{nope", mt.PARSE_ERROR), (b"\xff", mt.PARSE_ERROR),
                          (b"[]", mt.INVALID_REQUEST), (b'"ping"', mt.INVALID_REQUEST),
                          (b'{"id": 1, "method": "ping"}', mt.INVALID_REQUEST),
                          (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', mt.INVALID_REQUEST),
                          (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', mt.INVALID_REQUEST),
                          (b'{"jsonrpc": "2.0"}', mt.INVALID_REQUEST)]:
            status, out, _ = self.http("POST", raw=raw)
            self.assertEqual((status, out["error"]["code"]), (400, code), raw)

    def test_tooLarge(self) -> None:
        code, out, _ = self.http("POST", raw=b" " * (1024 * 1024 + 1))
        self.assertEqual(code, 413)

    def test_desktopDoesNotStart(self) -> None:
        self.desktop.failing.add("start")
        out = self.rpc("tools/list")
        self.assertEqual(out["error"]["code"], mt.INTERNAL_ERROR)
        self.assertIn("Failed to start desktop session.", out["error"]["message"])
        self.assertIn("Failed to start desktop session.", self.toolError("screenshot"))


class WithToken(MCPTestCase):
    token = "s3cret"

    def test_tokenRequired(self) -> None:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        code, _, headers = self.http("POST", ping)
        self.assertEqual(code, 401)
        self.assertEqual(headers.getRawHeaders("www-authenticate"), ['Bearer realm="agentdesktop"'])
        code, out, _ = self.http("POST", ping, {"Authorization": "Bearer s3cret"})
        self.assertEqual((code, out["result"]), (200, {}))


class ToolList(MCPTestCase):
    def tools(self, version: str) -> dict[str, dict[str, Any]]:
        result = self.result("tools/list", version=version)
        mt.ListToolsResult.model_validate(result)
        return {tool["name"]: tool for tool in result["tools"]}

    def test_schemas(self) -> None:
        tools = self.tools("2025-11-25")
        self.assertEqual(set(tools), NAMES)
        for name, tool in tools.items():
            schema = tool["inputSchema"]
            self.assertEqual(schema["type"], "object", name)
            jsonschema.Draft202012Validator.check_schema(schema)
        valid = jsonschema.Draft202012Validator(tools["scroll"]["inputSchema"])
        self.assertTrue(valid.is_valid({"scroll_direction": "up", "scroll_amount": 2}))
        self.assertFalse(valid.is_valid({"scroll_direction": "sideways", "scroll_amount": 2}))
        batch = jsonschema.Draft202012Validator(tools["computer_batch"]["inputSchema"])
        self.assertTrue(batch.is_valid({"actions": [{"action": "left_click", "coordinate": [1, 2]}]}))
        self.assertFalse(batch.is_valid({"actions": [{"action": "fly"}]}))

    def test_coordinateSpaceIsStated(self) -> None:
        tools = self.tools("2025-11-25")
        for name in ("screenshot", "zoom", "left_click", "right_click", "middle_click",
                     "double_click", "triple_click", "left_click_drag", "mouse_move", "scroll",
                     "cursor_position", "left_mouse_down", "computer_batch"):
            self.assertIn("1280x720", tools[name]["description"], name)

    def test_outputSchemaFrom20250618(self) -> None:
        self.assertIn("outputSchema", self.tools("2025-11-25")["cursor_position"])
        self.assertIn("outputSchema", self.tools("2025-06-18")["cursor_position"])
        self.assertNotIn("outputSchema", self.tools("2025-03-26")["cursor_position"])


class Calls(MCPTestCase):
    def test_pointerTools(self) -> None:
        self.assertEqual(self.text("left_click", coordinate=[640, 360], text="shift"), "Clicked.")
        self.assertEqual(self.text("double_click", coordinate=[0, 0]), "Double-clicked.")
        self.desktop.pointerAt = (50, 60)
        self.assertEqual(self.text("right_click"), "Right-clicked.")
        self.assertEqual(self.text("scroll", scroll_direction="up", scroll_amount=2), "Scrolled up.")
        self.assertEqual(self.desktop.clicks, [(960, 540, 1, 1, ("Shift_L",)), (0, 0, 1, 2, ()),
                                               (50, 60, 3, 1, ()), (50, 60, 4, 2, ())])
        self.assertEqual(self.text("left_click_drag", start_coordinate=[0, 0],
                                   coordinate=[640, 360]), "Dragged.")
        self.assertEqual(self.text("mouse_move", coordinate=[2, 2]), "Moved the mouse.")
        self.assertEqual(self.text("left_mouse_down"), "Left mouse button pressed.")
        self.assertEqual(self.desktop.pressedButtons, {1})
        self.assertEqual(self.text("left_mouse_up", coordinate=[4, 4]), "Left mouse button released.")
        self.assertEqual((self.desktop.pointerAt, self.desktop.pressedButtons), ((6, 6), set()))

    def test_keyboardTools(self) -> None:
        self.assertEqual(self.text("type", text="héllo"), "Typed.")
        self.assertEqual(self.text("key", text="CTRL+S", repeat=2), "Pressed CTRL+S.")
        self.assertEqual(self.desktop.typed, "héllo")
        self.assertIn(("keys", ((("Control_L", "s"),) * 2,)), self.desktop.log)
        result = self.call("hold_key", text="shift", duration=1.5, advance=1.5)
        self.assertEqual(result.content[0].text, "Held shift for 1.5s.")  # type: ignore[union-attr]
        self.assertEqual(self.desktop.pressedKeys, [])
        result = self.call("wait", duration=2, advance=2)
        self.assertEqual(result.content[0].text, "Waited 2s.")  # type: ignore[union-attr]

    def test_cursorPosition(self) -> None:
        self.desktop.pointerAt = (960, 540)
        result = self.call("cursor_position")
        self.assertEqual(result.content[0].text, "x=640,y=360")  # type: ignore[union-attr]
        self.assertEqual(result.structured_content, {"x": 640, "y": 360})
        result = self.call("cursor_position", version="2025-03-26")
        self.assertIsNone(result.structured_content)

    def test_images(self) -> None:
        image, note = self.call("screenshot").content
        assert isinstance(image, mt.ImageContent) and isinstance(note, mt.TextContent)
        self.assertEqual((image.mime_type, base64.b64decode(image.data)),
                         ("image/png", b"png:1280x720:None"))
        self.assertIn("1280x720 screenshot space", note.text)
        image, _ = self.call("screenshot", format="jpeg").content
        self.assertEqual(image.mime_type, "image/jpeg")  # type: ignore[union-attr]
        image, note = self.call("zoom", region=[0, 0, 640, 360]).content
        self.assertEqual(base64.b64decode(image.data),  # type: ignore[union-attr]
                         b"png:1280x720:(0, 0, 960, 540)")
        self.assertIn("region [0, 0, 640, 360]", note.text)  # type: ignore[union-attr]

    def test_wrongArgumentsAreToolErrors(self) -> None:
        """A wrong value or type is an isError result saying what to fix; nothing runs."""
        for name, arguments, words in [
            ("left_click", {"coordinate": "1,2"}, '"coordinate" must be [x, y]'),
            ("left_click", {"coordinate": [1280, 0]}, "outside the screen, which is 1280x720"),
            ("key", {"text": "Hyperdrive"}, 'Unknown key name: "Hyperdrive".'),
            ("key", {}, 'key needs "text"'),
            ("type", {"text": 7}, '"text" must be a string'),
            ("wait", {"duration": "long"}, '"duration" must be a number of seconds'),
            ("hold_key", {"text": "a", "duration": 301}, "from 0 to 300"),
            ("scroll", {"scroll_direction": "sideways"}, "Invalid scroll direction: sideways"),
            ("zoom", {"region": [0, 0, 0, 0]}, "x0 < x1"),
            ("screenshot", {"format": "gif"}, "Invalid screenshot format: gif"),
            ("computer_batch", {}, '"actions" must be a list of 1 to 100 actions'),
            ("computer_batch", {"actions": ["left_click"]}, "actions[0] must be an object"),
        ]:
            self.assertIn(words, self.toolError(name, **arguments), (name, arguments))
        self.assertEqual(self.desktop.clicks, [])

    def test_unknownToolIsAProtocolError(self) -> None:
        out = self.rpc("tools/call", {"name": "fly", "arguments": {}})
        self.assertEqual(out["error"]["code"], mt.INVALID_PARAMS)
        self.assertIn("Unknown tool: fly", out["error"]["message"])

    def test_argumentsMustBeAnObject(self) -> None:
        out = self.rpc("tools/call", {"name": "type", "arguments": "hello"})
        self.assertEqual(out["error"]["code"], mt.INVALID_PARAMS)


class Batch(MCPTestCase):
    def test_runsInOrder(self) -> None:
        result = self.call("computer_batch", actions=[
            {"action": "left_click", "coordinate": [640, 360]},
            {"action": "type", "text": "hi"},
            {"action": "screenshot"},
            {"action": "cursor_position"}])
        self.assertFalse(result.is_error)
        kinds = [(c.type, getattr(c, "text", None)) for c in result.content]
        self.assertEqual(kinds[:2], [("text", "actions[0] (left_click): Clicked."),
                                     ("text", "actions[1] (type): Typed.")])
        self.assertEqual(kinds[2][0], "image")
        self.assertEqual(kinds[-1], ("text", "actions[3] (cursor_position): x=640,y=360"))
        names = [n for n, _ in self.desktop.log]
        self.assertEqual(names[names.index("typeText"):], ["typeText", "settle", "screenshot", "pointer"])

    def test_stopsAtTheFirstFailure(self) -> None:
        result = self.call("computer_batch", actions=[
            {"action": "type", "text": "a"},
            {"action": "left_click", "coordinate": [5000, 0]},
            {"action": "type", "text": "b"}, {"action": "fly"}])
        self.assertTrue(result.is_error)
        texts = [c.text for c in result.content]  # type: ignore[union-attr]
        self.assertEqual(texts[0], "actions[0] (type): Typed.")
        self.assertIn("actions[1] (left_click): coordinate (5000, 0) is outside", texts[1])
        self.assertEqual(texts[2], "Not run, after the failure: actions[2:] (type, fly).")
        self.assertEqual(self.desktop.typed, "a")


class BeyondPixelsTools(MCPTestCase):
    """The section 15 tools, through the same operations as their routes."""

    def window(self, windowId: int, **changes: Any) -> Any:
        from agentdesktop.interfaces import WindowInfo

        fields = dict(id=windowId, title=f"w{windowId}", windowClass="XTerm", pid=7, x=300, y=150,
                      width=600, height=300, focused=False, minimized=False, maximized=False)
        fields.update(changes)
        return WindowInfo(**fields)

    def test_clipboard(self) -> None:
        self.assertEqual(self.text("read_clipboard"), "(nobody owns the selection)")
        self.assertIn("6 bytes", self.text("write_clipboard", text="héll!"))
        self.assertEqual(self.desktop.clipboard, {"clipboard": "héll!"})
        result = self.call("read_clipboard")
        self.assertEqual(result.structured_content, {"text": "héll!"})
        self.assertTrue(self.call("write_clipboard", text=5).is_error)
        bad = self.call("read_clipboard", selection="secondary")
        self.assertTrue(bad.is_error)
        self.assertIn("selection", bad.content[0].text)

    def test_windowsInTheRecommendedSpace(self) -> None:
        self.desktop.windowList = [self.window(11), self.window(12, focused=True)]
        result = self.call("list_windows")
        listed = result.structured_content["windows"]
        # Native 1920x1080 -> 1280x720: (300, 150, 600, 300) -> (200, 100, 400, 200).
        self.assertEqual([(w["id"], w["x"], w["y"], w["width"], w["height"]) for w in listed],
                         [(11, 200, 100, 400, 200), (12, 200, 100, 400, 200)])
        self.assertEqual(json.loads(result.content[0].text), result.structured_content)
        focused = self.call("focus_window", id=11).structured_content["window"]
        self.assertTrue(focused["focused"])
        missing = self.call("focus_window", id=99)
        self.assertTrue(missing.is_error)
        self.assertIn("Window not found.", missing.content[0].text)
        self.assertTrue(self.call("focus_window", id="11").is_error)

    def test_launch(self) -> None:
        out = self.call("launch", command=["xterm", "-T", "t"]).structured_content
        self.assertEqual(self.desktop.launched()[0].command, ("xterm", "-T", "t"))
        self.assertEqual((out["window"]["width"], out["window"]["height"]), (427, 320))
        self.desktop.missingPrograms.add("nosuch")
        refused = self.call("launch", command=["nosuch"])
        self.assertTrue(refused.is_error)
        self.assertIn("nosuch", refused.content[0].text)
        self.assertTrue(self.call("launch", command="xterm").is_error)

    def test_accessibilityTree(self) -> None:
        from agentdesktop.interfaces import AccessibleNode

        button = AccessibleNode("1.2-3", "push button", "OK", ("focusable",), (960, 540, 96, 54),
                                ("click",))
        self.desktop.accessibleWindows[5] = AccessibleNode("1.2-1", "frame", "Dialog", (),
                                                           (900, 500, 300, 200), (), (button,))
        tree = self.call("accessibility_tree", window=5).structured_content
        [found] = tree["children"]
        self.assertEqual((found["role"], found["name"]), ("push button", "OK"))
        self.assertEqual(found["bounds"], [640, 360, 64, 36])
        self.assertTrue(self.call("accessibility_tree", window=6).is_error)

    def test_leaseRefusesActingTools(self) -> None:
        self.desktop.windowList = [self.window(11)]
        self.state.control.take("alice")
        for name, args in (("write_clipboard", {"text": "x"}), ("focus_window", {"id": 11}),
                           ("launch", {"command": ["xterm"]})):
            result = self.call(name, **args)
            self.assertTrue(result.is_error, name)
            self.assertEqual(result.content[0].text, "A person is controlling the desktop.", name)
        self.assertEqual(self.desktop.clipboard, {})
        self.assertEqual(self.desktop.launched(), [])
        self.assertFalse(self.call("read_clipboard").is_error)
