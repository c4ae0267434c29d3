"""
The Anthropic dialect on a real desktop: tool_use blocks built with the
C{anthropic} SDK's types sent over HTTP, their effects checked as the X
server, an X client and xterm saw them, the answers validated with the SDK's
types; and a scripted model's turns replayed through the agent loop.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from typing import Any

from anthropic import types as at
from PIL import Image
from pydantic import TypeAdapter
from Xlib import X

from tests.integration.harness import DesktopTestCase, EventWindow

#: xterm's default green (colour 2) as it draws it.
GREEN = (0, 205, 0)

MESSAGES = TypeAdapter(list[at.MessageParam])


def member(name: str, id: str, **fields: Any) -> at.ToolUseBlock:
    """A computer toolset member's tool_use block."""
    return at.ToolUseBlock(id=id, type="tool_use", name=name, input=fields,
                           toolset_name="computer", caller=at.DirectCaller(type="direct"))


def legacy(action: str, id: str, **fields: Any) -> at.ToolUseBlock:
    """A legacy C{computer} tool's tool_use block."""
    return at.ToolUseBlock(id=id, type="tool_use", name="computer",
                           input={"action": action, **fields})


def image(result: dict[str, Any]) -> Image.Image:
    [block] = result["content"]
    return Image.open(io.BytesIO(base64.b64decode(block["source"]["data"]))).convert("RGB")


def count(img: Image.Image, rgb: tuple[int, int, int]) -> int:
    return sum(1 for p in img.getdata() if p == rgb)


class ScriptedModel:
    """
    Stands in for C{client.messages.create}: answers each call with the next
    recorded assistant turn, as the SDK's C{Message}.
    """

    def __init__(self, turns: list[list[Any]]) -> None:
        self.turns: Iterator[list[Any]] = iter(turns)

    def create(self, messages: list[dict[str, Any]]) -> at.Message:
        content = next(self.turns)
        stop = "tool_use" if any(b.type == "tool_use" for b in content) else "end_turn"
        return at.Message(id="msg_1", type="message", role="assistant", model="claude-scripted",
                          content=content, stop_reason=stop,
                          usage=at.Usage(input_tokens=1, output_tokens=1))


class AnthropicTestCase(DesktopTestCase):
    async def turn(self, *blocks: at.ToolUseBlock, **body: Any) -> list[dict[str, Any]]:
        code, out = await self.request(
            "POST", "dialects/anthropic", {"tool_uses": [b.model_dump() for b in blocks], **body})
        self.assertEqual(code, 200, out)
        TypeAdapter(list[at.ToolResultBlockParam]).validate_python(out["content"])
        return out["content"]


class AgentLoop(AnthropicTestCase):
    geometry = (1280, 720)

    async def test_scriptedModelRunsATask(self) -> None:
        """
        The agent loop, fed a recorded model: it looks, clicks into an xterm,
        types a command that prints a green bar and presses Return; the
        screenshot returned in the same turn shows the bar.
        """
        await self.startDesktop()
        self.spawn(["xterm", "-u8", "-geometry", "100x30+0+0", "-e", "sh"])
        await self.waitForWindow("XTerm")
        model = ScriptedModel([
            [member("screenshot", "toolu_1")],
            [at.TextBlock(type="text", text="I will print a green bar."),
             member("left_click", "toolu_2", coordinate=[200, 200]),
             member("type", "toolu_3", text="printf '\\033[42m%60s\\033[0m\\n' ''"),
             member("key", "toolu_4", text="RETURN"),
             member("screenshot", "toolu_5")],
            [at.TextBlock(type="text", text="Done.")],
        ])
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Print a green bar."}]
        while True:
            response = model.create(messages)
            messages.append({"role": "assistant", "content": [b.model_dump() for b in response.content]})
            uses = [b.model_dump() for b in response.content if b.type == "tool_use"]
            if not uses:
                break
            code, out = await self.request("POST", "dialects/anthropic", {"tool_uses": uses})
            self.assertEqual(code, 200, out)
            messages.append({"role": "user", "content": out["content"]})
        MESSAGES.validate_python(messages)
        before, after = messages[2]["content"][0], messages[4]["content"][-1]
        self.assertEqual(after["toolset_name"], "computer")
        self.assertEqual(image(before).size, (1280, 720))
        self.assertEqual(count(image(before), GREEN), 0)
        # 60 green cells: at least 60 * 6 x 13 pixels in xterm's fixed font.
        self.assertGreaterEqual(count(image(after), GREEN), 60 * 6 * 13)
        self.assertNothingPressed()


class Effects(AnthropicTestCase):
    """Native 1920x1080: the legacy tool sees 1280x720, the toolset sees native."""

    async def test_clicksLandOnTheRightPixel(self) -> None:
        await self.startDesktop()
        window = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(window.close)
        results = await self.turn(
            legacy("left_click", "t1", coordinate=[0, 0]),
            legacy("left_click", "t2", coordinate=[640, 360], text="shift"),
            member("right_click", "t3", coordinate=[1919, 1079]),
            legacy("cursor_position", "t4"),
            member("cursor_position", "t5"),
        )
        presses = [(e[1], e[2], e[3], bool(e[4] & X.ShiftMask))
                   for e in window.events() if e[0] == "press"]
        self.assertEqual(presses, [(1, 0, 0, False), (1, 960, 540, True), (3, 1919, 1079, False)])
        self.assertEqual([r["content"][0]["text"] for r in results], [
            "Clicked.", "Clicked.", "Right-clicked.", "X=1279,Y=719", "X=1919,Y=1079"])
        self.assertNothingPressed()

    async def test_aFailedBlockStopsTheTurn(self) -> None:
        """The block outside the screen is an error result; the blocks after it do not run."""
        await self.startDesktop()
        window = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(window.close)
        results = await self.turn(
            legacy("left_click", "t1", coordinate=[10, 10]),
            legacy("left_click", "t2", coordinate=[1280, 10]),
            legacy("left_click", "t3", coordinate=[20, 20]),
        )
        self.assertEqual([r.get("is_error") for r in results], [None, True, True])
        self.assertIn("outside", results[1]["content"])
        self.assertEqual(results[2]["content"],
                         "Not executed: an earlier computer action in this turn failed.")
        presses = [e[2:4] for e in window.events() if e[0] == "press"]
        self.assertEqual(presses, [(15, 15)])

    async def test_scrollAndDrag(self) -> None:
        """Scroll with and without a coordinate turns the wheel the right way; drags press and release."""
        await self.startDesktop()
        window = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(window.close)
        await self.turn(
            member("scroll", "t1", coordinate=[100, 100], scroll_direction="down", scroll_amount=3),
            legacy("scroll", "t2", scroll_direction="up", scroll_amount=2, text="ctrl"),
            member("left_click_drag", "t3", start_coordinate=[10, 10], coordinate=[300, 200]),
        )
        events = window.events()
        wheel = [(e[1], e[2], e[3], bool(e[4] & X.ControlMask))
                 for e in events if e[0] == "press" and e[1] in (4, 5)]
        self.assertEqual(wheel, [(5, 100, 100, False)] * 3 + [(4, 100, 100, True)] * 2)
        drag = [(e[0], e[2], e[3]) for e in events if e[1] == 1 and e[0] != "motion"]
        self.assertEqual(drag, [("press", 10, 10), ("release", 300, 200)])
        self.assertNothingPressed()

    async def test_documentedCalls(self) -> None:
        """
        Calls written as in Anthropic's computer use documentation (plain JSON,
        looser than the SDK's types: no caller, integer durations).
        """
        await self.startDesktop()
        window = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(window.close)
        inputs = [
            {"action": "left_click", "coordinate": [500, 300], "text": "shift"},
            {"action": "scroll", "coordinate": [500, 400], "scroll_direction": "down",
             "scroll_amount": 3},
            {"action": "triple_click", "coordinate": [500, 100]},
            {"action": "left_mouse_down"}, {"action": "left_mouse_up"},
            {"action": "hold_key", "text": "shift", "duration": 1},
            {"action": "zoom", "region": [0, 0, 400, 300]},
        ]
        blocks = [{"type": "tool_use", "id": f"toolu_{i}", "name": "computer", "input": given}
                  for i, given in enumerate(inputs)]
        code, out = await self.request("POST", "dialects/anthropic", {"tool_uses": blocks})
        self.assertEqual(code, 200, out)
        self.assertNotIn(True, [r.get("is_error") for r in out["content"]], out)
        presses = [(e[1], e[2], e[3], bool(e[4] & X.ShiftMask))
                   for e in window.events() if e[0] == "press"]
        self.assertEqual(presses, [(1, 750, 450, True)] + [(5, 750, 600, False)] * 3
                         + [(1, 750, 150, False)] * 4)
        self.assertEqual(image(out["content"][-1]).size, (960, 720))
        self.assertNothingPressed()

    async def test_typingAndKeys(self) -> None:
        """Text arrives byte for byte; upper-case key names work; holds are in seconds."""
        await self.startDesktop()
        path = await self.catTerminal()
        started = time.monotonic()
        results = await self.turn(
            member("type", "t1", text="héllo 🙂"),
            legacy("key", "t2", text="RETURN"),
            member("hold_key", "t3", text="SHIFT", duration=0.4),
            legacy("type", "t4", text="done"),
            member("key", "t5", text="Return", repeat=2),
        )
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        self.assertNotIn(True, [r.get("is_error") for r in results], results)
        expected = "héllo 🙂\ndone\n\n".encode()
        self.assertEqual(await self.waitForContent(path, expected), expected)
        self.assertNothingPressed()

    async def test_screenshotsAndZoom(self) -> None:
        await self.startDesktop()
        results = await self.turn(
            legacy("screenshot", "t1"), member("screenshot", "t2"),
            member("zoom", "t3", region=[0, 0, 400, 225]),
            legacy("screenshot", "t4"), display={"width": 800, "height": 450})
        sizes = [image(r).size for r in results]
        self.assertEqual(sizes[:2] + sizes[3:], [(800, 450)] * 3)
        # The zoom fits the screenshot size (the region's edge pixels may round away).
        self.assertEqual(sizes[2][0], 800)
        self.assertIn(sizes[2][1], (449, 450))
        results = await self.turn(legacy("screenshot", "t1"), member("screenshot", "t2"),
                                  legacy("zoom", "t3", region=[0, 0, 320, 180]))
        self.assertEqual([image(r).size for r in results], [(1280, 720), (1920, 1080), (1280, 720)])

    async def test_toolDefinition(self) -> None:
        await self.startDesktop()
        code, tool = await self.request("GET", "dialects/anthropic/tool?version=computer_20251124")
        self.assertEqual(code, 200)
        self.assertEqual((tool["display_width_px"], tool["display_height_px"]), (1280, 720))
