"""
The Anthropic dialect through StubTreq and a fake desktop: every action and
field of the legacy C{computer} tool and of the computer toolset, the error
results and the "not executed" chain, the coordinate spaces, the tool
definitions; blocks built and answers validated with the C{anthropic} SDK's
own types.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from anthropic import types as at
from anthropic.types import beta as bt
from pydantic import TypeAdapter
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.actions.pointer import AtPointer
from agentdesktop.actions.runner import ActionRunner
from agentdesktop.actions.screen import Settle
from agentdesktop.dialects.anthropic import ACKNOWLEDGMENTS, NOT_EXECUTED, acknowledgment
from agentdesktop.testing import FakeDesktop
from tests.unit.service import ServiceTestCase

URL = "http://localhost/api/v0/desktop/dialects/anthropic"

RESULTS = TypeAdapter(list[at.ToolResultBlockParam])
USER_MESSAGE = TypeAdapter(at.MessageParam)


def legacy(action: str, id: str = "toolu_1", **fields: Any) -> dict[str, Any]:
    """A legacy C{computer} tool_use block, as the SDK models it."""
    return at.ToolUseBlock(
        id=id, type="tool_use", name="computer", input={"action": action, **fields}
    ).model_dump()


def member(name: str, id: str = "toolu_1", **fields: Any) -> dict[str, Any]:
    """A computer toolset member's tool_use block, as the SDK models it."""
    return at.ToolUseBlock(
        id=id, type="tool_use", name=name, input=fields, toolset_name="computer",
        caller=at.DirectCaller(type="direct"),
    ).model_dump()


class AnthropicTestCase(ServiceTestCase):
    size = (1920, 1080)

    def send(self, body: Any, advance: float = 0) -> tuple[int, Any]:
        return self.postJSON(URL, body, advance=advance)

    def turn(self, *blocks: dict[str, Any], advance: float = 0, **body: Any) -> list[dict[str, Any]]:
        """Send BLOCKS as one turn; the tool_result blocks, validated as the SDK's types."""
        code, out = self.send({"tool_uses": list(blocks), **body}, advance)
        self.assertEqual(code, 200, out)
        content = out["content"]
        RESULTS.validate_python(content)
        USER_MESSAGE.validate_python({"role": "user", "content": content})
        self.assertEqual([r["tool_use_id"] for r in content], [b["id"] for b in blocks])
        for result, block in zip(content, blocks, strict=True):
            self.assertEqual(result.get("toolset_name"), block.get("toolset_name"))
        return content

    def one(self, block: dict[str, Any], advance: float = 0, **body: Any) -> dict[str, Any]:
        [result] = self.turn(block, advance=advance, **body)
        return result

    def ok(self, block: dict[str, Any], advance: float = 0, **body: Any) -> Any:
        result = self.one(block, advance, **body)
        self.assertNotIn("is_error", result, result)
        return result["content"]

    def text(self, block: dict[str, Any], **body: Any) -> str:
        """The one line of text a successful call answers."""
        [item] = self.ok(block, **body)
        self.assertEqual(item["type"], "text")
        return str(item["text"])

    def error(self, block: dict[str, Any], **body: Any) -> str:
        result = self.one(block, **body)
        self.assertIs(result.get("is_error"), True, result)
        return str(result["content"])

    def calls(self) -> list[str]:
        return [name for name, _ in self.desktop.log]


def both(action: str, **fields: Any) -> list[dict[str, Any]]:
    """The same action as a legacy block and as a toolset member block."""
    return [legacy(action, **fields), member(action, **fields)]


class Actions(AnthropicTestCase):
    """Every action and field, legacy (1280x720 space) and toolset (native)."""

    def test_clicks(self) -> None:
        for action, button, count in [("left_click", 1, 1), ("right_click", 3, 1),
                                      ("middle_click", 2, 1), ("double_click", 1, 2),
                                      ("triple_click", 1, 3)]:
            self.desktop.clicks.clear()
            self.assertEqual(self.text(legacy(action, coordinate=[640, 360])), ACKNOWLEDGMENTS[action])
            self.ok(member(action, coordinate=[640, 360]))
            self.assertEqual(self.desktop.clicks, [(960, 540, button, count, ()),
                                                   (640, 360, button, count, ())])

    def test_zeroCoordinate(self) -> None:
        for block in both("left_click", coordinate=[0, 0]):
            self.ok(block)
        self.assertEqual([c[:2] for c in self.desktop.clicks], [(0, 0), (0, 0)])

    def test_clickWithoutCoordinateIsAtThePointer(self) -> None:
        """No coordinate: click where the pointer is, no move first."""
        self.desktop.pointerAt = (333, 444)
        for block in both("double_click", text="ctrl"):
            self.ok(block)
        self.assertEqual(self.desktop.clicks, [(333, 444, 1, 2, ("Control_L",))] * 2)
        self.assertNotIn("move", self.calls())

    def test_modifiers(self) -> None:
        """text holds keys during clicks, scrolls, drags and moves; legacy clients send key."""
        self.ok(legacy("left_click", coordinate=[10, 10], text="shift"))
        self.ok(legacy("left_click", coordinate=[10, 10], key="ctrl+alt"))
        self.ok(member("scroll", coordinate=[10, 10], scroll_direction="up", scroll_amount=2,
                       text="CTRL"))
        self.assertEqual([c[4] for c in self.desktop.clicks],
                         [("Shift_L",), ("Control_L", "Alt_L"), ("Control_L",)])
        self.ok(legacy("left_click_drag", start_coordinate=[0, 0], coordinate=[640, 360],
                       text="shift"))
        self.ok(legacy("mouse_move", coordinate=[640, 360], text="alt"))
        self.assertIn(("drag", (((0, 0), (960, 540)), ("Shift_L",))), self.desktop.log)
        self.assertIn(("move", (960, 540, ("Alt_L",))), self.desktop.log)

    def test_scroll(self) -> None:
        self.ok(legacy("scroll", coordinate=[640, 360], scroll_direction="down", scroll_amount=5))
        self.ok(member("scroll", coordinate=[100, 100], scroll_direction="left", scroll_amount=1))
        self.desktop.pointerAt = (7, 8)
        self.ok(legacy("scroll", scroll_direction="right", scroll_amount=3))
        self.assertEqual(self.desktop.clicks, [(960, 540, 5, 5, ()), (100, 100, 6, 1, ()),
                                               (7, 8, 7, 3, ())])
        self.assertIn("Invalid scroll direction: sideways",
                      self.error(legacy("scroll", scroll_direction="sideways", scroll_amount=1)))

    def test_scrollNothingAtThePointer(self) -> None:
        self.ok(member("scroll", scroll_direction="down", scroll_amount=0))
        self.assertEqual(self.desktop.clicks, [])

    def test_dragAndMove(self) -> None:
        for block in both("left_click_drag", start_coordinate=[1, 2], coordinate=[300, 200]):
            self.assertEqual(self.text(block), "Dragged.")
        for block in both("mouse_move", coordinate=[300, 200]):
            self.ok(block)
        drags = [args for name, args in self.desktop.log if name == "drag"]
        self.assertEqual(drags, [(((2, 3), (450, 300)), ()), (((1, 2), (300, 200)), ())])
        self.assertEqual(self.desktop.pointerAt, (300, 200))

    def test_mouseButtons(self) -> None:
        self.ok(legacy("left_mouse_down"))
        self.assertEqual(self.desktop.pressedButtons, {1})
        self.ok(member("left_mouse_up"))
        self.ok(legacy("left_mouse_down", coordinate=[640, 360]))
        self.assertEqual(self.desktop.pointerAt, (960, 540))
        self.ok(legacy("left_mouse_up"))
        self.assertEqual(self.desktop.pressedButtons, set())

    def test_keys(self) -> None:
        """Key names are case-insensitive; repeat presses the whole sequence again."""
        self.assertEqual(self.text(legacy("key", text="CTRL+S")), "Pressed CTRL+S.")
        self.ok(member("key", text="RETURN", repeat=3))
        self.ok(legacy("key", text="Page_Down"))
        self.ok(member("key", text="kp_0"))
        keys = [args[0] for name, args in self.desktop.log if name == "keys"]
        self.assertEqual(keys, [(("Control_L", "s"),), (("Return",),) * 3, (("Next",),),
                                (("KP_0",),)])
        self.assertIn('Unknown key name: "Hyperdrive".', self.error(legacy("key", text="Hyperdrive")))

    def test_type(self) -> None:
        for block in both("type", text="héllo 🙂\n"):
            self.assertEqual(self.text(block), "Typed.")
        self.assertEqual(self.desktop.typed, "héllo 🙂\n" * 2)

    def test_holdKeyInSeconds(self) -> None:
        d = self.treq.post(URL, json.dumps({"tool_uses": [
            legacy("hold_key", text="SHIFT", duration=0.5)]}).encode())
        self.treq.flush()
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.clock.advance(0.499)
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.clock.advance(0.001)
        self.treq.flush()
        self.assertEqual(self.desktop.pressedKeys, [])
        out = json.loads(self.successResultOf(self.successResultOf(d).content()))
        self.assertEqual(out["content"][0]["content"], [{"type": "text", "text": "Held SHIFT for 0.5s."}])

    def test_waitInSeconds(self) -> None:
        """Up to 300 s (past /action's 60 s cap), fractions allowed."""
        d = self.treq.post(URL, json.dumps({"tool_uses": [
            member("wait", duration=299.5), legacy("type", "toolu_2", text="x")]}).encode())
        self.treq.flush()
        self.clock.advance(299.4)
        self.assertEqual(self.desktop.typed, "")
        self.clock.advance(0.1)
        self.treq.flush()
        self.assertEqual(self.desktop.typed, "x")
        out = json.loads(self.successResultOf(self.successResultOf(d).content()))
        self.assertEqual(out["content"][0]["content"], [{"type": "text", "text": "Waited 299.5s."}])

    def test_cursorPositionInScreenshotSpace(self) -> None:
        self.desktop.pointerAt = (960, 540)
        self.assertEqual(self.text(legacy("cursor_position")), "X=640,Y=360")
        self.assertEqual(self.text(member("cursor_position")), "X=960,Y=540")
        self.assertEqual(self.text(legacy("cursor_position"), display={"width": 960, "height": 540}),
                         "X=480,Y=270")

    def image(self, content: Any) -> bytes:
        [block] = content
        self.assertEqual(block["type"], "image")
        self.assertEqual(block["source"]["media_type"], "image/png")
        return base64.b64decode(block["source"]["data"])

    def test_screenshotSizes(self) -> None:
        """Legacy: the recommended size; toolset: native when it fits; display: as given."""
        self.assertEqual(self.image(self.ok(legacy("screenshot"))), b"png:1280x720:None")
        self.assertEqual(self.image(self.ok(member("screenshot"))), b"png:1920x1080:None")
        for block in both("screenshot"):
            shot = self.image(self.ok(block, display={"width": 1000, "height": 600}))
            self.assertEqual(shot, b"png:1000x600:None")

    def test_zoom(self) -> None:
        shot = self.image(self.ok(legacy("zoom", region=[0, 0, 640, 360])))
        self.assertEqual(shot, b"png:1280x720:(0, 0, 960, 540)")
        shot = self.image(self.ok(member("zoom", region=[960, 540, 1920, 1080])))
        self.assertEqual(shot, b"png:1920x1080:(960, 540, 1920, 1080)")

    def test_display(self) -> None:
        """With display, coordinates are in that space, for both tools."""
        for block in both("left_click", coordinate=[500, 300]):
            self.ok(block, display={"width": 1000, "height": 600})
        self.assertEqual([c[:2] for c in self.desktop.clicks], [(960, 540), (960, 540)])
        self.assertIn("outside", self.error(legacy("left_click", coordinate=[1000, 0]),
                                            display={"width": 1000, "height": 600}))

    def test_settlesBeforeALookThatFollowsInput(self) -> None:
        self.turn(legacy("screenshot"), legacy("type", "toolu_2", text="a"),
                  legacy("screenshot", "toolu_3"), legacy("zoom", "toolu_4", region=[0, 0, 9, 9]))
        self.assertEqual([n for n in self.calls() if n in ("screenshot", "settle")],
                         ["screenshot", "settle", "screenshot", "settle", "screenshot"])

    def test_acknowledgments(self) -> None:
        """
        Actions that return nothing answer the line the SDK's own toolset
        runner writes, fields filled from the call as data.
        """
        from anthropic.lib.tools._toolsets._computer_registry import ROWS

        self.assertEqual(ACKNOWLEDGMENTS, {k: v[1] for k, v in ROWS.items() if v[0] == "none"})
        for block, line in [
            (member("mouse_move", coordinate=[1, 1]), "Moved the mouse."),
            (legacy("left_mouse_down"), "Left mouse button pressed."),
            (legacy("left_mouse_up"), "Left mouse button released."),
            (member("scroll", scroll_direction="up", scroll_amount=1), "Scrolled up."),
            (legacy("scroll", coordinate=[1, 1]), "Scrolled down."),
            (member("wait", duration=2.0), "Waited 2s."),
            (member("hold_key", text="ctrl\n", duration=0), "Held ctrl for 0s."),
        ]:
            self.assertEqual(self.text(block, advance=2), line, block)
        self.assertEqual(acknowledgment("key", {"text": "{duration}", "duration": 5}),
                         "Pressed {duration}.")

    def test_documentedExamples(self) -> None:
        """Calls as Anthropic's documentation writes them (plain dicts, looser than the SDK)."""
        for block in [
            {"type": "tool_use", "id": "t1", "name": "computer",
             "input": {"action": "left_click", "coordinate": [500, 300]}},
            {"type": "tool_use", "id": "t2", "name": "computer",
             "input": {"action": "scroll", "coordinate": [500, 400], "scroll_direction": "down",
                       "scroll_amount": 3}},
            {"type": "tool_use", "id": "t3", "name": "computer",
             "input": {"action": "key", "text": "ctrl+s"}},
            {"type": "tool_use", "id": "t4", "name": "computer",
             "input": {"action": "zoom", "region": [0, 0, 400, 300]}},
            {"type": "tool_use", "id": "t5", "name": "computer",
             "input": {"action": "hold_key", "text": "shift", "duration": 1}},
        ]:
            self.ok(block, advance=1)


class BigScreen(AnthropicTestCase):
    size = (3840, 2160)

    def test_toolsetSpaceFitsTheImageLimits(self) -> None:
        shot = self.ok(member("screenshot"))[0]["source"]["data"]
        self.assertEqual(base64.b64decode(shot), b"png:2000x1125:None")
        self.ok(member("left_click", coordinate=[1999, 1124]))
        self.assertEqual(self.desktop.clicks[0][:2], (3839, 2159))


class ErrorResults(AnthropicTestCase):
    def test_malformedCallsAreErrorResults(self) -> None:
        for block, words in [
            (legacy("left_click", coordinate=[1280, 10]), "(1280, 10) is outside the screen, which is 1280x720"),
            (member("left_click", coordinate=[1920, 10]), "outside the screen, which is 1920x1080"),
            (legacy("left_click", coordinate=[-1, 10]), "outside"),
            (legacy("left_click", coordinate="10,10"), '"coordinate" must be [x, y]'),
            (legacy("left_click", coordinate=[1, 2, 3]), '"coordinate" must be [x, y]'),
            (legacy("left_click", coordinate=[1.5, 2]), "two integers"),
            (legacy("mouse_move"), 'mouse_move needs "coordinate"'),
            (legacy("left_click_drag", coordinate=[1, 1]), 'needs "start_coordinate"'),
            (legacy("type"), 'type needs "text"'),
            (legacy("type", text=5), '"text" must be a string'),
            (legacy("left_click", coordinate=[1, 1], text=["shift"]), '"text" must be a string'),
            (legacy("hold_key", text="a"), 'hold_key needs "duration"'),
            (legacy("hold_key", text="a", duration=301), "must be from 0 to 300"),
            (legacy("wait", duration=-1), "must be from 0 to 300"),
            (legacy("wait", duration="1"), "must be a number of seconds"),
            (legacy("wait", duration=True), "must be a number of seconds"),
            (legacy("key", text="a", repeat=0), "Invalid repeat: 0"),
            (legacy("key", text="a", repeat="2"), '"repeat" must be an integer'),
            (legacy("zoom"), 'zoom needs "region"'),
            (legacy("zoom", region=[0, 0, 1281, 10]), "must lie inside the 1280x720"),
            (legacy("zoom", region=[10, 10, 5, 20]), "x0 < x1"),
            (legacy("fly"), "Unknown action: fly"),
            (member("fly"), "Unknown action: fly"),
            ({"type": "tool_use", "id": "x", "name": "computer", "input": {}}, 'Missing "action"'),
            ({"type": "tool_use", "id": "x", "name": "bash", "input": {}}, "Unknown tool: bash"),
            ({"type": "tool_use", "id": "x", "name": "navigate", "toolset_name": "browser",
              "input": {}}, "Unknown toolset: browser"),
            ({"type": "tool_use", "id": "x", "name": "computer", "input": "left_click"},
             '"input" must be an object'),
        ]:
            self.assertIn(words, self.error(block), block)
        self.assertEqual(self.desktop.clicks, [])
        self.assertEqual(self.desktop.typed, "")

    def test_laterBlocksAreNotExecuted(self) -> None:
        results = self.turn(legacy("type", "t1", text="a"),
                            legacy("left_click", "t2", coordinate=[5000, 1]),
                            member("type", "t3", text="b"), legacy("fly", "t4"))
        self.assertNotIn("is_error", results[0])
        self.assertIs(results[1]["is_error"], True)
        for result in results[2:]:
            self.assertEqual((result["is_error"], result["content"]), (True, NOT_EXECUTED))
        self.assertEqual(self.desktop.typed, "a")

    def test_desktopFailure(self) -> None:
        """A failing action's message is its result; what it pressed is let go."""
        self.desktop.failing.add("click")
        results = self.turn(legacy("left_mouse_down", "t1"),
                            legacy("left_click", "t2", coordinate=[1, 1]),
                            legacy("type", "t3", text="x"))
        self.assertEqual(results[1]["content"], "Left click failed. click failed on purpose")
        self.assertEqual(results[2]["content"], NOT_EXECUTED)
        self.assertEqual(self.desktop.pressedButtons, set())
        self.assertEqual(self.desktop.typed, "")

    def test_notTheVendorsShape(self) -> None:
        """A body that is not a turn's tool_use blocks is a 400, and nothing runs."""
        block = legacy("type", text="x")
        for body, message in [
            ({}, 'Missing "tool_uses".'),
            ({"tool_uses": block}, 'Invalid "tool_uses".'),
            ({"tool_uses": []}, 'Invalid "tool_uses".'),
            ({"tool_uses": [block] * 101}, 'Invalid "tool_uses".'),
            ({"tool_uses": [{"type": "text", "text": "hi"}]}, 'Invalid "tool_uses".'),
            ({"tool_uses": [{**block, "id": 7}]}, 'Invalid "tool_uses".'),
            ({"tool_uses": [block], "display": {"width": 0, "height": 10}}, 'Invalid "display".'),
            ({"tool_uses": [block], "display": "1280x720"}, 'Invalid "display".'),
        ]:
            code, out = self.send(body)
            self.assertEqual((code, out["message"]), (400, message), body)
        code, out = self.send([block])
        self.assertEqual((code, out["message"]), (400, "Failed to decode request body."))
        self.assertEqual(self.desktop.typed, "")


class ToolDefinitions(AnthropicTestCase):
    def get(self, query: str) -> tuple[int, Any]:
        d = self.treq.get(URL + "/tool" + query)
        self.treq.flush()
        response = self.successResultOf(d)
        return response.code, json.loads(self.successResultOf(response.content()))

    def test_versions(self) -> None:
        code, tool = self.get("?version=computer_20251124")
        self.assertEqual(code, 200)
        TypeAdapter(bt.BetaToolComputerUse20251124Param).validate_python(tool)
        self.assertEqual(tool, {"type": "computer_20251124", "name": "computer",
                                "display_width_px": 1280, "display_height_px": 720,
                                "enable_zoom": True})
        code, tool = self.get("?version=computer_20250124")
        TypeAdapter(bt.BetaToolComputerUse20250124Param).validate_python(tool)
        self.assertEqual((tool["display_width_px"], tool["display_height_px"]), (1280, 720))
        code, tool = self.get("?version=computer_toolset_20260801")
        TypeAdapter(at.ComputerToolset20260801Param).validate_python(tool)
        TypeAdapter(at.ToolUnionParam).validate_python(tool)
        self.assertEqual(tool, {"type": "computer_toolset_20260801"})

    def test_unknownVersion(self) -> None:
        for query, message in [("?version=computer_20241022", "Unknown tool version: computer_20241022"),
                               ("", 'Missing "version".')]:
            code, out = self.get(query)
            self.assertEqual((code, out["message"]), (400, message))
            self.assertEqual(out["detail"], "Known versions: computer_20250124, computer_20251124, "
                                            "computer_toolset_20260801.")


class Steps(SynchronousTestCase):
    """The steps added to actions/ for the dialects."""

    def runStep(self, step: Any) -> dict[str, Any]:
        runner = ActionRunner(self.desktop, task.Clock())
        outcomes = self.successResultOf(defer.Deferred.fromCoroutine(runner.runGroups([[step]])))
        return outcomes[0].bodies[-1]

    def setUp(self) -> None:
        self.desktop = FakeDesktop()

    def test_atPointer(self) -> None:
        self.desktop.pointerAt = (4, 5)
        step = AtPointer("Scroll failed.", 5, 2, ["Shift_L"])
        step.name = "scroll"
        self.assertEqual(self.runStep(step), {"output": "scroll action performed"})
        self.assertEqual(self.desktop.clicks, [(4, 5, 5, 2, ("Shift_L",))])

    def test_atPointerNoClicks(self) -> None:
        self.runStep(AtPointer("Scroll failed.", 5, 0, []))
        self.assertEqual(self.desktop.clicks, [])
        self.assertNotIn("pointer", [n for n, _ in self.desktop.log])

    def test_settle(self) -> None:
        self.assertEqual(self.runStep(Settle(150, 2000)), {"output": "settled"})
        self.desktop.busy = True
        self.assertEqual(self.runStep(Settle(150, 2000)), {"output": "still changing"})
        self.assertEqual(self.desktop.log[-1], ("settle", (150, 2000)))
