"""
The OpenAI dialect on a real desktop: computer calls built with the openai
SDK's types (and the guide's looser example) sent over HTTP, their effects
checked as an X client of our own and an xterm saw them, every answer
validated with the SDK's types.
"""

from __future__ import annotations

import time
from typing import Any

from openai.types.responses import computer_action as ga
from openai.types.responses import response_computer_tool_call as legacy
from Xlib import X

from tests.integration.harness import DesktopTestCase, EventWindow, sleep
from tests.openai_sdk import GUIDE_CALL, call, check, legacyCall, screenshotOf

WHITE = (255, 255, 255)


class OpenAITestCase(DesktopTestCase):
    geometry = (1280, 720)

    async def send(self, call: dict[str, Any], **body: Any) -> tuple[dict[str, Any], str | None]:
        """POST the call; the answer's output item (validated) and error."""
        code, out = await self.request("POST", "dialects/openai", {"call": call, **body})
        self.assertEqual(code, 200, out)
        self.assertEqual(out["output"]["call_id"], call["call_id"])
        screenshotOf(out["output"])
        return out["output"], out["error"]

    def presses(self, win: EventWindow) -> list[tuple[int, int, int, int]]:
        """(button, x, y, ctrl held) of each button press since the last look."""
        return [(d, x, y, s & X.ControlMask) for k, d, x, y, s in win.events() if k == "press"]


class Pointer(OpenAITestCase):
    windowManager = None

    async def window(self) -> EventWindow:
        win = EventWindow(self.info, (0, 0, 1280, 720))
        self.addCleanup(win.close)
        return win

    async def test_buttonsAndHeldKeys(self) -> None:
        """
        One batched call: left at (0, 0), right, wheel, back, forward, and
        a CTRL-held left click land as buttons 1/3/2/8/9/1 on those pixels.
        """
        await self.startDesktop()
        win = await self.window()
        output, error = await self.send(call(
            ga.Click(type="click", button="left", x=0, y=0),
            ga.Click(type="click", button="right", x=10, y=20),
            ga.Click(type="click", button="wheel", x=30, y=40),
            ga.Click(type="click", button="back", x=50, y=60),
            ga.Click(type="click", button="forward", x=1279, y=719),
            ga.Click(type="click", button="left", x=70, y=80, keys=["CTRL"]),
        ))
        self.assertIsNone(error)
        self.assertEqual(self.presses(win), [
            (1, 0, 0, 0), (3, 10, 20, 0), (2, 30, 40, 0), (8, 50, 60, 0), (9, 1279, 719, 0),
            (1, 70, 80, X.ControlMask),
        ])
        shot = screenshotOf(output)
        self.assertEqual(shot.size, (1280, 720))
        self.assertEqual(shot.getpixel((640, 360)), WHITE)
        self.assertNothingPressed()

    async def test_displaySpace(self) -> None:
        """With display 640x360, points and the screenshot are in that space."""
        await self.startDesktop()
        win = await self.window()
        output, _ = await self.send(call(
            ga.Click(type="click", button="left", x=0, y=0),
            ga.Click(type="click", button="left", x=320, y=180),
            ga.Click(type="click", button="left", x=639, y=359),
        ), display={"width": 640, "height": 360})
        # SPEC section 6 maps pixel centres: declared pixel 0 covers native 0-1.
        self.assertEqual([p[1:3] for p in self.presses(win)], [(1, 1), (641, 361), (1279, 719)])
        self.assertEqual(screenshotOf(output).size, (640, 360))
        _, error = await self.send(call(ga.Click(type="click", button="left", x=640, y=0)),
                                   display={"width": 640, "height": 360})
        self.assertIn("(640, 0) is outside the screen, which is 640x360", error)
        self.assertEqual(self.presses(win), [])

    async def test_scrollPixels(self) -> None:
        """1, 99, 150 and -250 px down/up, 150 px right: 1, 1, 2, 3 and 2 wheel clicks."""
        await self.startDesktop()
        win = await self.window()
        seen = []
        for dx, dy in [(0, 1), (0, 99), (0, 150), (0, -250), (150, 0)]:
            await self.send(call(ga.Scroll(type="scroll", x=200, y=300, scroll_x=dx, scroll_y=dy)))
            presses = self.presses(win)
            self.assertEqual({p[1:3] for p in presses}, {(200, 300)})
            seen.append([p[0] for p in presses])
        self.assertEqual(seen, [[5], [5], [5, 5], [4, 4, 4], [7, 7]])

    async def test_dragAlongPath(self) -> None:
        """A SHIFT-held drag presses at the first point, moves through each, releases at the last."""
        await self.startDesktop()
        win = await self.window()
        points = [(100, 100), (300, 120), (500, 400), (50, 600)]
        await self.send(call(ga.Drag(type="drag", keys=["SHIFT"],
                                     path=[ga.DragPath(x=x, y=y) for x, y in points])))
        events = win.events()
        events = events[next(i for i, e in enumerate(events) if e[0] == "press"):]
        self.assertEqual(events[0][:4], ("press", 1, 100, 100))
        self.assertEqual(events[-1][:4], ("release", 1, 50, 600))
        moved = [(x, y) for k, _, x, y, s in events if k == "motion" and s & X.Button1Mask]
        self.assertEqual(moved, points[1:])
        self.assertTrue(all(e[4] & X.ShiftMask for e in events))
        self.assertNothingPressed()

    async def test_legacyCallAndWait(self) -> None:
        """computer_use_preview calls (one action); wait lasts a second."""
        await self.startDesktop()
        win = await self.window()
        await self.send(legacyCall(legacy.ActionMove(type="move", x=321, y=123)))
        self.assertEqual(self.x.pointer(), (321, 123))
        await self.send(legacyCall(legacy.ActionDoubleClick(type="double_click", x=5, y=6)))
        self.assertEqual(self.presses(win), [(1, 5, 6, 0), (1, 5, 6, 0)])
        started = time.monotonic()
        _, error = await self.send(legacyCall(legacy.ActionWait(type="wait")))
        self.assertIsNone(error)
        self.assertGreaterEqual(time.monotonic() - started, 1.0)


class Keyboard(OpenAITestCase):
    async def test_keyNames(self) -> None:
        """Upper-case and DOM-style names: each keypress list is one chord."""
        await self.startDesktop()
        path = await self.catTerminal()
        _, error = await self.send(call(
            ga.Type(type="type", text="ab"),
            ga.Keypress(type="keypress", keys=["ArrowLeft"]),
            ga.Keypress(type="keypress", keys=["CTRL", "G"]),
            ga.Keypress(type="keypress", keys=["SHIFT", "A"]),
            ga.Keypress(type="keypress", keys=["A"]),
            ga.Keypress(type="keypress", keys=["ENTER"]),
        ))
        self.assertIsNone(error)
        want = b"ab\x1b[D\x07Aa\n"
        self.assertEqual(await self.waitForContent(path, want), want)
        self.assertNothingPressed()

    async def test_guideExample(self) -> None:
        """The guide's call (no id, no pending_safety_checks) clicks the xterm and types."""
        await self.startDesktop()
        path = await self.catTerminal()
        _, error = await self.send(GUIDE_CALL)
        self.assertIsNone(error)
        await self.send({**GUIDE_CALL, "actions": [{"type": "keypress", "keys": ["ENTER"]}]})
        self.assertEqual(await self.waitForContent(path, b"penguin\n"), b"penguin\n")

    async def test_middleFailureStopsTheRest(self) -> None:
        await self.startDesktop()
        path = await self.catTerminal()
        _, error = await self.send(call(
            ga.Type(type="type", text="one\n"),
            ga.Keypress(type="keypress", keys=["CTRL", "NOPE"]),
            ga.Type(type="type", text="two\n"),
        ))
        self.assertIn('actions[1] (keypress) failed: Unknown key name: "NOPE".', error)
        self.assertIn("Not executed: actions[2] (type).", error)
        self.assertEqual(await self.waitForContent(path, b"one\n"), b"one\n")
        await sleep(0.5)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"one\n")
        self.assertNothingPressed()

    async def test_safetyChecks(self) -> None:
        """Unacknowledged: 409 and nothing runs; acknowledged: runs exactly once."""
        await self.startDesktop()
        path = await self.catTerminal()
        checks = [check("cu_sc_7")]
        pending = call(ga.Type(type="type", text="once\n"), checks=checks)
        code, out = await self.request("POST", "dialects/openai", {"call": pending})
        self.assertEqual((code, out["message"]), (409, "Safety checks need acknowledgement."))
        self.assertEqual(out["pending_safety_checks"], [checks[0].model_dump(mode="json")])
        await sleep(0.5)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"")
        output, error = await self.send(pending, acknowledged_safety_checks=["cu_sc_7"])
        self.assertIsNone(error)
        self.assertEqual(output["acknowledged_safety_checks"], [checks[0].model_dump(mode="json")])
        self.assertEqual(await self.waitForContent(path, b"once\n"), b"once\n")
        await sleep(0.5)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"once\n")
