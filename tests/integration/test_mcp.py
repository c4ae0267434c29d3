"""
The MCP endpoint on a real desktop, driven by the official C{mcp} Python
SDK's Streamable HTTP client (asyncio, on a loop of its own in a worker
thread: L{DesktopTestCase.inAsyncio}); effects checked in the X server and
in the file an xterm writes.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx2
import jsonschema
from mcp import Client, MCPError
from mcp import types as mt
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from agentdesktop.x11.session import XSession
from tests.integration.harness import DesktopTestCase

TOKEN = "mcp-test-token"
TYPED = "hello mcp héllo 🙂\n"


async def waitForFile(path: str, size: int, seconds: float = 10) -> bytes:
    data = b""
    for _ in range(int(seconds / 0.05)):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) >= size:
            break
        await asyncio.sleep(0.05)
    return data


async def session(url: str, token: str | None, info: Any, path: str) -> dict[str, Any]:
    """What an MCP client sees and does, from connecting to a bad call; runs in asyncio."""
    seen: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        seen["version"] = client.protocol_version
        seen["server"] = client.server_info
        seen["instructions"] = client.instructions
        seen["tools"] = (await client.list_tools()).tools
        seen["screenshot"] = await client.call_tool("screenshot", {})
        seen["click"] = await client.call_tool("left_click", {"coordinate": [100, 100]})
        x = XSession(info.display, info.xauthority)
        try:
            seen["pointer"] = x.pointer()
        finally:
            x.close()
        seen["type"] = await client.call_tool("type", {"text": TYPED})
        seen["file"] = await waitForFile(path, len(TYPED.encode()))
        seen["position"] = await client.call_tool("cursor_position", {})
        seen["badType"] = await client.call_tool("left_click", {"coordinate": "100,100"})
        seen["badKey"] = await client.call_tool("key", {"text": "Hyperdrive"})
        seen["outside"] = await client.call_tool("mouse_move", {"coordinate": [1280, 0]})
        seen["batch"] = await client.call_tool("computer_batch", {"actions": [
            {"action": "mouse_move", "coordinate": [200, 50]},
            {"action": "zoom", "region": [0, 0, 320, 180]},
            {"action": "wait", "duration": 0.1},
        ]})
        try:
            await client.call_tool("fly", {})
        except MCPError as e:
            seen["unknownTool"] = e.code
        await client.session.send_ping()
    return seen


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


async def refused(url: str) -> list[str]:
    """How connecting without the token ends: the errors the client raises."""
    try:
        async with Client(streamable_http_client(url)):
            return ["connected"]
    except Exception as e:
        return [f"{type(leaf).__name__}: {leaf}" for leaf in leaves(e)]


class OfficialClient(DesktopTestCase):
    async def test_sdkClient(self) -> None:
        """
        The SDK's client connects (negotiating past its 2026 probe),
        lists tools whose schemas are JSON Schema objects, takes a
        screenshot of the recommended size, clicks where X then sees the
        pointer, types into an xterm, and gets isError results for bad calls.
        """
        info = await self.startDesktop(token=TOKEN)
        path = await self.catTerminal()
        url = self.base + "mcp"
        seen = await self.inAsyncio(session(url, TOKEN, info, path))

        self.assertEqual(seen["version"], "2025-11-25")
        self.assertEqual(seen["server"].name, "agentdesktop")
        self.assertIn("1280x720", seen["instructions"])
        tools = {tool.name: tool for tool in seen["tools"]}
        self.assertEqual(set(tools), {
            "screenshot", "zoom", "left_click", "right_click", "middle_click", "double_click",
            "triple_click", "left_click_drag", "mouse_move", "left_mouse_down", "left_mouse_up",
            "cursor_position", "scroll", "type", "key", "hold_key", "wait", "computer_batch",
            "read_clipboard", "write_clipboard", "list_windows", "focus_window", "launch",
            "accessibility_tree"})
        for tool in tools.values():
            self.assertEqual(tool.input_schema["type"], "object")
            jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        jsonschema.validate({"coordinate": [0, 0], "text": "shift"}, tools["left_click"].input_schema)
        for name in ("screenshot", "left_click", "scroll", "mouse_move"):
            self.assertIn("1280x720", tools[name].description)

        image, note = seen["screenshot"].content
        self.assertIsInstance(image, mt.ImageContent)
        self.assertEqual(image.mime_type, "image/png")
        self.assertEqual(Image.open(io.BytesIO(base64.b64decode(image.data))).size, (1280, 720))
        self.assertIn("1280x720", note.text)

        self.assertFalse(seen["click"].is_error)
        self.assertEqual(seen["pointer"], (150, 150))
        self.assertEqual(seen["file"], TYPED.encode())
        self.assertEqual(seen["position"].content[0].text, "x=100,y=100")
        self.assertEqual(seen["position"].structured_content, {"x": 100, "y": 100})

        for name, words in [("badType", '"coordinate" must be [x, y]'),
                            ("badKey", 'Unknown key name: "Hyperdrive"'),
                            ("outside", "outside the screen, which is 1280x720")]:
            self.assertTrue(seen[name].is_error, name)
            self.assertIn(words, seen[name].content[0].text)
        batch = seen["batch"]
        self.assertFalse(batch.is_error)
        self.assertEqual([c.type for c in batch.content], ["text", "image", "text", "text"])
        self.assertEqual(self.x.pointer(), (300, 75))
        self.assertEqual(seen["unknownTool"], mt.INVALID_PARAMS)
        self.assertNothingPressed()

    async def test_tokenAndOrigin(self) -> None:
        """Without the token the SDK client is refused (401); a page from another origin gets 403."""
        await self.startDesktop(token=TOKEN)
        url = self.base + "mcp"
        self.assertEqual(await self.inAsyncio(refused(url)),
                         ["MCPError: Server returned an error response"])
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        code, _ = await self.request("POST", "mcp", ping, {})
        self.assertEqual(code, 401)
        code, out = await self.request("POST", "mcp", ping, {**auth, "Origin": "http://evil.example"})
        self.assertEqual(code, 403)
        self.assertIn("Forbidden", out["error"]["message"])
        here = f"http://127.0.0.1:{self.port}"
        code, out = await self.request("POST", "mcp", ping, {**auth, "Origin": here})
        self.assertEqual((code, out), (200, {"jsonrpc": "2.0", "id": 1, "result": {}}))


async def beyondPixels(url: str) -> dict[str, Any]:
    """The section 15 tools through the SDK client; runs in asyncio."""
    seen: dict[str, Any] = {}
    async with Client(streamable_http_client(url)) as client:
        seen["write"] = await client.call_tool("write_clipboard", {"text": "from mcp 🙂"})
        seen["read"] = await client.call_tool("read_clipboard", {})
        seen["launch"] = await client.call_tool(
            "launch", {"command": ["xterm", "-T", "mcp-launched"], "timeout_ms": 15000})
        seen["windows"] = await client.call_tool("list_windows", {})
        window = seen["launch"].structured_content["window"]["id"]
        seen["focus"] = await client.call_tool("focus_window", {"id": window})
        seen["missing"] = await client.call_tool("focus_window", {"id": 7})
    return seen


class BeyondPixelsTools(DesktopTestCase):
    geometry = (1920, 1080)

    async def test_clipboardLaunchWindows(self) -> None:
        await self.startDesktop()
        seen = await self.inAsyncio(beyondPixels(self.base + "mcp"))
        self.assertFalse(seen["write"].is_error, seen["write"])
        # What another X client pastes is what the tool put there.
        pasted = await self.tool("xclip", "-o", "-selection", "clipboard")
        self.assertEqual(pasted.decode("utf-8"), "from mcp 🙂")
        self.assertEqual(seen["read"].structured_content, {"text": "from mcp 🙂"})
        launched = seen["launch"].structured_content
        self.assertEqual(launched["window"]["title"], "mcp-launched")
        titles = [w["title"] for w in seen["windows"].structured_content["windows"]]
        self.assertIn("mcp-launched", titles)
        # The window's rectangle is in the 1280x720 space the model sees.
        self.assertLessEqual(launched["window"]["x"] + launched["window"]["width"], 1280)
        self.assertTrue(seen["focus"].structured_content["window"]["focused"])
        active = await self.tool("xprop", "-root", "_NET_ACTIVE_WINDOW")
        self.assertIn(hex(launched["window"]["id"]), active.decode())
        self.assertTrue(seen["missing"].is_error)
        self.assertIn("Window not found.", seen["missing"].content[0].text)
