"""
The Gemini dialect on a real desktop: function calls built with
google-genai's types (and Google's documented example calls as plain JSON)
sent over HTTP; what the X server, an X client and an xterm saw checked;
the answers read back with google-genai's types.
"""

from __future__ import annotations

import io
from typing import Any

from google.genai import types
from PIL import Image

from tests.integration.harness import DesktopTestCase, EventWindow, sleep

CAPTCHA = {
    "explanation": "I have encountered a CAPTCHA challenge that requires interaction.",
    "decision": "require_confirmation",
}


def call(name: str, callId: str | None = None, **args: Any) -> dict[str, Any]:
    """A function_call Part, as google-genai serializes the model's call."""
    return types.Part(function_call=types.FunctionCall(name=name, args=args, id=callId)).model_dump(
        mode="json", exclude_none=True)


def documented(name: str, **args: Any) -> dict[str, Any]:
    """A call as Google's computer-use docs print it (plain JSON, no id)."""
    return {"function_call": {"name": name, "args": args}}


class GeminiTestCase(DesktopTestCase):
    async def gemini(self, *calls: dict[str, Any], **body: Any) -> list[types.FunctionResponse]:
        code, out = await self.request("POST", "dialects/gemini", {"function_calls": list(calls), **body})
        self.assertEqual(code, 200, out)
        content = types.Content.model_validate({"role": "user", "parts": out["function_responses"]})
        assert content.parts is not None
        responses = [p.function_response for p in content.parts]
        self.assertEqual([r.name for r in responses if r], [c.get("function_call", c)["name"] for c in calls])
        return [r for r in responses if r is not None]

    def screenshot(self, response: types.FunctionResponse) -> Image.Image:
        assert response.parts is not None and response.parts[0].inline_data is not None
        blob = response.parts[0].inline_data
        self.assertEqual(blob.mime_type, "image/png")
        assert blob.data is not None
        return Image.open(io.BytesIO(blob.data))

    async def window(self) -> EventWindow:
        """An X client covering the whole screen that records pointer events."""
        window = EventWindow(self.info, (0, 0, *self.geometry))
        self.addCleanup(window.close)
        await sleep(0.2)
        window.events()
        return window

    def buttons(self, window: EventWindow) -> list[tuple[str, int, int, int]]:
        return [(kind, detail, x, y) for kind, detail, x, y, _ in window.events() if kind != "motion"]


class Landscape(GeminiTestCase):
    geometry = (1280, 720)

    async def test_gridCorners(self) -> None:
        """Grid 0 lands on the first native pixel and 999 on the last; the screenshot is the screen's size."""
        await self.startDesktop()
        window = await self.window()
        first, last = await self.gemini(call("click", "a", x=0, y=0), call("click", "b", x=999, y=999))
        self.assertEqual((first.id, first.response, last.id), ("a", {"status": "ok"}, "b"))
        self.assertEqual(self.buttons(window), [("press", 1, 0, 0), ("release", 1, 0, 0),
                                                ("press", 1, 1279, 719), ("release", 1, 1279, 719)])
        self.assertEqual(self.screenshot(last).size, (1280, 720))
        self.assertNothingPressed()

    async def test_scrollAndDrag(self) -> None:
        """Wheel clicks at 100 px each (300 px by default), scroll_document's ten at the centre, a drag."""
        await self.startDesktop()
        window = await self.window()
        responses = await self.gemini(
            call("scroll", x=500, y=500, direction="down"),
            call("scroll_document", direction="up"),
            call("scroll", x=0, y=0, direction="right", magnitude_in_pixels=150),
            call("drag_and_drop", start_x=100, start_y=100, end_x=500, end_y=500),
        )
        self.assertEqual([r.response for r in responses], [{"status": "ok"}] * 4)
        events = self.buttons(window)
        presses = [(b, x, y) for kind, b, x, y in events if kind == "press"]
        self.assertEqual(presses, [(5, 640, 360)] * 3 + [(4, 640, 360)] * 10 + [(7, 0, 0)] * 2 + [(1, 128, 72)])
        self.assertEqual(events[-1], ("release", 1, 640, 360))
        self.assertNothingPressed()

    async def test_documentedExamples(self) -> None:
        """Google's example calls, as its docs print them, land where the grid says."""
        await self.startDesktop()
        window = await self.window()
        await self.gemini(
            documented("click_at", y=300, x=500),
            documented("hover_at", y=150, x=250),
            documented("scroll_at", y=500, x=500, direction="down", magnitude=400),
            documented("drag_and_drop", y=100, x=100, destination_y=500, destination_x=500),
        )
        self.assertEqual(self.buttons(window), [
            ("press", 1, 640, 216), ("release", 1, 640, 216),
            *[("press", 5, 640, 360), ("release", 5, 640, 360)] * 3,
            ("press", 1, 128, 72), ("release", 1, 640, 360),
        ])
        self.assertEqual(self.x.pointer(), (640, 360))
        self.assertNothingPressed()

    async def test_typing(self) -> None:
        """
        type_text_at clicks, clears (ctrl+a, then BackSpace, which the
        terminal's line editing applies) and presses Enter by default;
        upper-case key names; Google's documented type_text_at example.
        """
        await self.startDesktop()
        path = await self.catTerminal()
        responses = await self.gemini(
            call("type_text_at", x=100, y=100, text="hello"),
            call("type", text="wörld 🙂", press_enter=True),
            call("hotkey", keys=["SHIFT", "X"]),
            call("press_key", key="ENTER"),
            documented("type_text_at", y=250, x=400, text="search query", press_enter=False),
            call("key_combination", keys="Return"),
        )
        self.assertEqual([r.response for r in responses], [{"status": "ok"}] * 6)
        expected = "hello\nwörld 🙂\nX\nsearch query\n".encode()
        self.assertEqual(await self.waitForContent(path, expected), expected)
        await self.assertNothingPressedSoon()

    async def test_typeTextAtKeys(self) -> None:
        """
        The keys type_text_at sends, byte for byte in a raw terminal: by
        default ctrl+a and BackSpace before the text and Return after it;
        neither when both are turned off.
        """
        await self.startDesktop()
        path = await self.catTerminal(raw=True)
        await self.gemini(
            call("type_text_at", x=100, y=100, text="ab"),
            call("type_text_at", x=100, y=100, text="cd", press_enter=False, clear_before_typing=False),
        )
        data = await self.waitForContent(path, b"\x01\x7fab\rcd")
        self.assertIn(data, (b"\x01\x7fab\rcd", b"\x01\x08ab\rcd"))
        await self.assertNothingPressedSoon()

    async def test_failureStopsTheTurn(self) -> None:
        """A browser-only call is an error response; the calls after it are not executed and do not run."""
        await self.startDesktop()
        window = await self.window()
        first, browser, later = await self.gemini(
            call("click", x=100, y=100), call("navigate", url="https://example.com"), call("click", "z", x=900, y=900))
        self.assertEqual(first.response, {"status": "ok"})
        assert browser.response is not None
        self.assertTrue(browser.response["error"].startswith("navigate: the desktop has no browser control."))
        self.assertEqual((later.id, later.response),
                         ("z", {"error": "Not executed: an earlier computer action in this turn failed."}))
        self.assertEqual(self.screenshot(later).size, (1280, 720))
        self.assertEqual(self.buttons(window), [("press", 1, 128, 72), ("release", 1, 128, 72)])
        self.assertNothingPressed()

    async def test_safetyConfirmation(self) -> None:
        """Unconfirmed: 409 and nothing runs; confirmed: runs exactly once, acknowledged."""
        await self.startDesktop()
        window = await self.window()
        risky = documented("click_at", x=60, y=100, safety_decision=CAPTCHA)
        risky["function_call"]["id"] = "risky"
        code, out = await self.request("POST", "dialects/gemini", {"function_calls": [risky]})
        self.assertEqual((code, out["message"]), (409, "Safety confirmation needed."))
        self.assertEqual(out["calls"][0]["id"], "risky")
        await sleep(0.2)
        self.assertEqual(self.buttons(window), [])
        [response] = await self.gemini(risky, confirmed=["risky"])
        self.assertEqual(response.response, {"status": "ok", "safety_acknowledgement": "true"})
        self.assertEqual(self.buttons(window), [("press", 1, 77, 72), ("release", 1, 77, 72)])


class Portrait(GeminiTestCase):
    geometry = (600, 1000)

    async def test_gridCorners(self) -> None:
        await self.startDesktop()
        window = await self.window()
        responses = await self.gemini(call("click", x=0, y=0), call("click", x=999, y=999),
                                      call("right_click", x=999, y=0), call("middle_click", x=0, y=999))
        presses = [(b, x, y) for kind, b, x, y in self.buttons(window) if kind == "press"]
        self.assertEqual(presses, [(1, 0, 0), (1, 599, 999), (3, 599, 0), (2, 0, 999)])
        self.assertEqual(self.screenshot(responses[0]).size, (600, 1000))
        self.assertNothingPressed()
