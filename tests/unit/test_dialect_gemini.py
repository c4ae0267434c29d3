"""
The Gemini dialect through StubTreq and a fake desktop: every function and
default, the 0-999 grid, error responses, the "not executed" chain, safety
confirmations, and the answer checked with google-genai's own types.
"""

from __future__ import annotations

import json
from typing import Any

from google.genai import types
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import geometry
from agentdesktop.dialects import gemini
from agentdesktop.testing import FakeDesktop
from tests.unit.service import ServiceTestCase

URL = "http://localhost/api/v0/desktop/dialects/gemini"

CAPTCHA = {
    "explanation": "I have encountered a CAPTCHA challenge that requires interaction.",
    "decision": "require_confirmation",
}


def call(name: str, callId: str | None = None, **args: Any) -> dict[str, Any]:
    """A function_call Part as google-genai serializes it."""
    fc = types.FunctionCall(name=name, args=args, id=callId)
    return types.Part(function_call=fc).model_dump(mode="json", exclude_none=True)


class GeminiTestCase(ServiceTestCase):
    size = (1280, 720)

    def post(self, body: Any, advance: float = 0) -> tuple[int, Any]:
        return self.postJSON(URL, body, advance=advance)

    def turn(self, *calls: dict[str, Any], advance: float = 0, **body: Any) -> list[types.FunctionResponse]:
        """Run CALLS; the function responses, validated as google-genai Parts."""
        code, out = self.post({"function_calls": list(calls), **body}, advance)
        self.assertEqual(code, 200, out)
        self.assertEqual(list(out), ["function_responses"])
        self.assertEqual(len(out["function_responses"]), len(calls))
        parts = [types.Part.model_validate(p) for p in out["function_responses"]]
        # The same, read as JSON the way the REST API reads it.
        types.Content.model_validate_json(json.dumps({"role": "user", "parts": out["function_responses"]}))
        responses = []
        for part in parts:
            self.assertIsNotNone(part.function_response)
            assert part.function_response is not None
            responses.append(part.function_response)
        return responses

    def ok(self, *calls: dict[str, Any], advance: float = 0) -> list[types.FunctionResponse]:
        responses = self.turn(*calls, advance=advance)
        for r in responses:
            self.assertEqual(r.response, {"status": "ok"})
        return responses

    def error(self, c: dict[str, Any]) -> str:
        """The error response of a single call C (which ran nothing)."""
        [r] = self.turn(c)
        assert r.response is not None
        self.assertEqual(list(r.response), ["error"], r.response)
        self.assertEqual(self.inputCalls(), [])
        return str(r.response["error"])

    def inputCalls(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(n, a) for n, a in self.desktop.log if n not in ("screenshot", "settle", "releaseAll")]


class Answer(GeminiTestCase):
    def test_shape(self) -> None:
        """One function_response per call: name, id when given, status, the screenshot as PNG."""
        [first, second] = self.turn(call("click", "call-1", x=10, y=20), call("take_screenshot"))
        self.assertEqual((first.name, first.id, first.response), ("click", "call-1", {"status": "ok"}))
        self.assertEqual((second.name, second.id), ("take_screenshot", None))
        for r in (first, second):
            assert r.parts is not None
            [part] = r.parts
            assert part.inline_data is not None
            self.assertEqual(part.inline_data.mime_type, "image/png")
            # The fake desktop's "PNG" names its size: the recommended size (section 6).
            self.assertEqual(part.inline_data.data, b"png:1280x720:None")

    def test_noIdKeyWithoutId(self) -> None:
        code, out = self.post({"function_calls": [call("take_screenshot")]})
        self.assertNotIn("id", out["function_responses"][0]["function_response"])

    def test_screenshotAfterTheTurn(self) -> None:
        """One settle and one screenshot after all the calls, whatever their number."""
        self.ok(call("click", x=1, y=1), call("move", x=2, y=2), call("take_screenshot"))
        names = [n for n, _ in self.desktop.log]
        self.assertEqual(names, ["click", "move", "settle", "screenshot"])

    def test_screenshotIsRecommendedSize(self) -> None:
        self.desktop.info = FakeDesktop(1920, 1080).info
        [r] = self.turn(call("take_screenshot"))
        assert r.parts is not None and r.parts[0].inline_data is not None
        self.assertEqual(r.parts[0].inline_data.data, b"png:1280x720:None")

    def test_acceptedShapes(self) -> None:
        """Bare FunctionCalls, REST's camelCase Parts; the model's text and thought parts are skipped."""
        bare = types.FunctionCall(name="click", args={"x": 0, "y": 0}).model_dump(mode="json", exclude_none=True)
        camel = {"functionCall": {"name": "click_at", "args": {"x": 999, "y": 999}, "id": "c"}}
        text = {"text": "I will click.", "thought_signature": "c2ln"}
        code, out = self.post({"function_calls": [bare, text, camel]})
        self.assertEqual(code, 200, out)
        responses = [types.Part.model_validate(p).function_response for p in out["function_responses"]]
        self.assertEqual([(r.name, r.id) for r in responses if r], [("click", None), ("click_at", "c")])
        self.assertEqual(self.desktop.clicks, [(0, 0, 1, 1, ()), (1279, 719, 1, 1, ())])


class Grid(GeminiTestCase):
    def clickAt(self, gx: int, gy: int) -> tuple[int, int]:
        self.desktop.clicks.clear()
        self.ok(call("click", x=gx, y=gy))
        return self.desktop.clicks[-1][:2]

    def test_cornersOn1280x720(self) -> None:
        self.assertEqual(self.clickAt(0, 0), (0, 0))
        self.assertEqual(self.clickAt(999, 999), (1279, 719))
        self.assertEqual(self.clickAt(500, 500), (640, 360))

    def test_cornersOnPortrait(self) -> None:
        self.desktop.info = FakeDesktop(600, 1000).info
        self.assertEqual(self.clickAt(0, 0), (0, 0))
        self.assertEqual(self.clickAt(999, 999), (599, 999))
        self.assertEqual(self.clickAt(999, 0), (599, 0))

    def test_cornersOn1366x768(self) -> None:
        self.desktop.info = FakeDesktop(1366, 768).info
        self.assertEqual(self.clickAt(0, 999), (0, 767))
        self.assertEqual(self.clickAt(999, 999), (1365, 767))

    @given(st.integers(1, 2000), st.integers(0, 999))
    def test_withinOnePixelOfTheVendorsFloor(self, side: int, g: int) -> None:
        """
        Section 6 with a 1000x1000 declared size vs the reference's
        int(g / 1000 * side), on screens up to 2000 px a side (beyond,
        section 6 aims at the centre of a grid cell several pixels wide).
        """
        ours = geometry.scale(g, gemini.GRID, side)
        self.assertLessEqual(abs(ours - int(g / 1000 * side)), 1)
        self.assertTrue(0 <= ours < side)
        if g == 999:
            self.assertEqual(ours, side - 1)

    def test_numbersAsFloats(self) -> None:
        """Struct numbers arrive as floats from some clients: 499.0 is 499; fractions round."""
        self.assertEqual(self.clickAt(499.0, 0.4), self.clickAt(499, 0))  # type: ignore[arg-type]

    def test_outsideTheGrid(self) -> None:
        for bad in (1000, -1, 999.5):
            message = self.error(call("click", x=bad, y=5))
            self.assertIn('click: "x" is', message)
            self.assertIn("outside the 0-999 grid", message)


class Functions(GeminiTestCase):
    def test_clicks(self) -> None:
        cases = {"click": (1, 1), "click_at": (1, 1), "double_click": (1, 2), "triple_click": (1, 3),
                 "middle_click": (2, 1), "right_click": (3, 1)}
        for name, (button, count) in cases.items():
            self.ok(call(name, x=500, y=500))
            self.assertEqual(self.desktop.clicks[-1], (640, 360, button, count, ()), name)

    def test_moves(self) -> None:
        self.ok(call("move", x=0, y=999), call("hover_at", x=999, y=0))
        self.assertEqual(self.inputCalls(), [("move", (0, 719, ())), ("move", (1279, 0, ()))])

    def test_mouseDownUp(self) -> None:
        self.ok(call("mouse_down", x=100, y=100))
        self.assertEqual(self.desktop.pressedButtons, {1})
        self.ok(call("mouse_up", x=200, y=200))
        self.assertEqual(self.desktop.pressedButtons, set())
        self.assertEqual(self.inputCalls(), [("move", (128, 72, ())), ("buttonDown", (1,)),
                                             ("move", (256, 144, ())), ("buttonUp", (1,))])

    def test_mouseUpWithoutPointStaysPut(self) -> None:
        self.ok(call("mouse_up"))
        self.assertEqual(self.inputCalls(), [("buttonUp", (1,))])

    def test_type(self) -> None:
        self.ok(call("type", text="héllo 🙂"))
        self.assertEqual(self.inputCalls(), [("typeText", ("héllo 🙂",))])
        self.desktop.log.clear()
        self.ok(call("type", text="x", press_enter=True))
        self.assertEqual(self.inputCalls(), [("typeText", ("x",)), ("keys", ((("Return",),),))])

    def test_typeTextAtDefaults(self) -> None:
        """Click, select all (ctrl+a) and delete, type, press Enter."""
        self.ok(call("type_text_at", x=500, y=500, text="search query"))
        self.assertEqual(self.inputCalls(), [
            ("click", (640, 360, 1, 1, ())),
            ("keys", ((("Control_L", "a"), ("BackSpace",)),)),
            ("typeText", ("search query",)),
            ("keys", ((("Return",),),)),
        ])

    def test_typeTextAtWithoutClearOrEnter(self) -> None:
        self.ok(call("type_text_at", x=500, y=500, text="q", press_enter=False, clear_before_typing=False))
        self.assertEqual(self.inputCalls(), [("click", (640, 360, 1, 1, ())), ("typeText", ("q",))])

    def test_dragAndDrop(self) -> None:
        self.ok(call("drag_and_drop", start_x=0, start_y=0, end_x=999, end_y=999),
                call("drag_and_drop", x=100, y=100, destination_x=500, destination_y=500))
        self.assertEqual(self.inputCalls(), [("drag", (((0, 0), (1279, 719)), ())),
                                             ("drag", (((128, 72), (640, 360)), ()))])

    def test_wait(self) -> None:
        """seconds defaults to 1; wait_5_seconds waits 5."""
        for c, seconds in ((call("wait"), 1), (call("wait", seconds=2.5), 2.5), (call("wait_5_seconds"), 5)):
            d = self.treq.post(URL, json.dumps({"function_calls": [c]}).encode())
            self.treq.flush()
            self.clock.advance(seconds - 0.01)
            self.assertNoResult(d)
            self.clock.advance(0.01)
            self.treq.flush()
            self.assertEqual(self.successResultOf(d).code, 200)

    def test_keys(self) -> None:
        self.ok(call("press_key", key="ENTER"), call("key_combination", keys="Control+A"),
                call("hotkey", keys=["CTRL", "SHIFT", "t"]), call("hotkey", keys="Control + C"),
                call("key_combination", keys="Control++"))
        self.assertEqual(self.inputCalls(), [
            ("keys", ((("Return",),),)), ("keys", ((("Control_L", "a"),),)),
            ("keys", ((("Control_L", "Shift_L", "t"),),)), ("keys", ((("Control_L", "c"),),)),
            ("keys", ((("Control_L", "plus"),),)),
        ])

    def test_keyDownUp(self) -> None:
        self.ok(call("key_down", key="Shift"))
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.ok(call("key_up", key="SHIFT"))
        self.assertEqual(self.desktop.pressedKeys, [])

    def test_scrollPixels(self) -> None:
        """magnitude_in_pixels (default 300) at 100 px per wheel click, rounded, at least one."""
        cases = [({}, 5, 3), ({"magnitude_in_pixels": 250}, 5, 3), ({"magnitude_in_pixels": 40}, 5, 1),
                 ({"magnitude_in_pixels": 999, "direction": "up"}, 4, 10),
                 ({"magnitude_in_pixels": 300, "direction": "LEFT"}, 6, 3),
                 ({"magnitude_in_pixels": 300, "direction": "right"}, 7, 3),
                 ({"magnitude_in_wheel_clicks": 4}, 5, 4)]
        for extra, wheel, clicks in cases:
            args = {"x": 500, "y": 500, "direction": "down", **extra}
            self.ok(call("scroll", **args))
            self.assertEqual(self.desktop.clicks[-1], (640, 360, wheel, clicks, ()), extra)

    def test_scrollZeroMovesOnly(self) -> None:
        self.ok(call("scroll", x=0, y=0, direction="down", magnitude_in_pixels=0))
        self.assertEqual(self.inputCalls(), [("move", (0, 0, ()))])

    def test_scrollGridMagnitude(self) -> None:
        """magnitude in grid units (scroll_at's default 800) is a fraction of the screen's height or width."""
        cases = [("scroll_at", {}, 5, 6),                                  # 0.8 * 720 = 576 px
                 ("scroll_at", {"magnitude": 400}, 5, 3),                  # 288 px
                 ("scroll_at", {"direction": "left"}, 6, 10),              # 0.8 * 1280 = 1024 px
                 ("scroll", {"magnitude": 500}, 5, 4)]                     # 360 px
        for name, extra, wheel, clicks in cases:
            self.ok(call(name, **{"x": 500, "y": 500, "direction": "down", **extra}))
            self.assertEqual(self.desktop.clicks[-1], (640, 360, wheel, clicks, ()), (name, extra))

    def test_scrollDocument(self) -> None:
        """Ten wheel clicks at the screen's centre."""
        self.ok(call("scroll_document", direction="down"), call("scroll_document", direction="up"))
        self.assertEqual(self.desktop.clicks, [(640, 360, 5, 10, ()), (640, 360, 4, 10, ())])

    def test_takeScreenshotRunsNothing(self) -> None:
        self.ok(call("take_screenshot"))
        self.assertEqual(self.inputCalls(), [])

    def test_everyFunctionIsTested(self) -> None:
        """The functions this module registers are the ones the spec lists (guards the tests above)."""
        self.assertEqual(set(gemini.functionNames()), {
            "click", "double_click", "triple_click", "middle_click", "right_click", "mouse_down",
            "mouse_up", "move", "type", "drag_and_drop", "wait", "press_key", "key_down", "key_up",
            "hotkey", "take_screenshot", "scroll", "click_at", "hover_at", "type_text_at",
            "key_combination", "scroll_at", "scroll_document", "wait_5_seconds",
        })


class ErrorResponses(GeminiTestCase):
    def test_browserOnly(self) -> None:
        for name in gemini.BROWSER_ONLY:
            message = self.error(call(name, url="https://example.com"))
            self.assertTrue(message.startswith(f"{name}: the desktop has no browser control."), message)

    def test_unknownFunction(self) -> None:
        message = self.error(call("fly", x=1))
        self.assertTrue(message.startswith("fly: unknown function. This desktop runs: click, click_at,"), message)
        self.assertNotIn("navigate", message)

    def test_malformed(self) -> None:
        cases = [
            (call("click", y=5), 'click: "x" is missing; give x and y on the 0-999 grid'),
            (call("click", x="5", y=5), 'click: "x" must be a number on the 0-999 grid, got a string'),
            (call("click", x=True, y=5), 'click: "x" must be a number on the 0-999 grid, got a boolean'),
            (call("type"), 'type: "text" must be a string, got null'),
            (call("type", text="a", press_enter="yes"), 'type: "press_enter" must be true or false, got a string'),
            (call("scroll", x=1, y=1, direction="sideways"),
             'scroll: "direction" must be "up", "down", "left" or "right", got \'sideways\''),
            (call("scroll", x=1, y=1, direction="up", magnitude_in_pixels=-3),
             'scroll: "magnitude_in_pixels" must be from 0 to 100000, got -3'),
            (call("wait", seconds=301), 'wait: "seconds" must be from 0 to 300, got 301'),
            (call("press_key", key="Hyperdrive"), 'press_key: Unknown key name: "Hyperdrive".'),
            (call("hotkey", keys=[]), 'hotkey: "keys" must be a list of key names'),
            (call("drag_and_drop", start_x=1, start_y=1), 'drag_and_drop: "end_x" is missing'),
            (call("drag_and_drop"), 'drag_and_drop: "start_x" is missing'),
            (call("type", text="a\x07"), 'type: Invalid "text" for type action.'),
        ]
        for c, expected in cases:
            got = self.error(c)
            self.assertTrue(got.startswith(expected), (got, expected))

    def test_argsNotAnObject(self) -> None:
        c = {"function_call": {"name": "click", "args": [1, 2]}}
        self.assertEqual(self.error(c), "click: args must be an object, got an array of 2 elements")

    def test_notExecutedChain(self) -> None:
        """A failing call stops the turn: later calls say "Not executed" and do not run."""
        self.desktop.failing = {"typeText"}
        responses = self.turn(call("click", x=1, y=1), call("type", "t", text="x"),
                              call("click", "c3", x=2, y=2), call("navigate", url="x"))
        self.assertEqual(responses[0].response, {"status": "ok"})
        self.assertEqual(responses[1].response, {"error": "Type action failed. typeText failed on purpose"})
        for r in responses[2:]:
            self.assertEqual(r.response, {"error": gemini.NOT_EXECUTED})
            self.assertIsNotNone(r.parts)
        self.assertEqual(responses[2].id, "c3")
        self.assertEqual([n for n, _ in self.desktop.log],
                         ["click", "typeText", "releaseAll", "settle", "screenshot"])

    def test_untranslatableCallStopsTheTurn(self) -> None:
        responses = self.turn(call("navigate", url="x"), call("click", x=1, y=1))
        assert responses[0].response is not None
        self.assertIn("no browser control", responses[0].response["error"])
        self.assertEqual(responses[1].response, {"error": gemini.NOT_EXECUTED})
        self.assertEqual(self.desktop.clicks, [])

    def test_screenshotFailure(self) -> None:
        """The calls' results still come back, without an image."""
        self.desktop.failing = {"screenshot"}
        [r] = self.ok(call("click", x=1, y=1))
        self.assertIsNone(r.parts)


class BadBodies(GeminiTestCase):
    def assertRefused(self, body: Any, message: str, detail: str = "") -> None:
        code, out = self.post(body)
        self.assertEqual((code, out["message"]), (400, message), out)
        self.assertIn(detail, out.get("detail", ""))
        self.assertEqual(self.inputCalls(), [])

    def test_refused(self) -> None:
        self.assertRefused({}, 'Missing "function_calls".')
        self.assertRefused({"function_calls": {"name": "click"}}, 'Invalid "function_calls".', "got an object")
        self.assertRefused({"function_calls": []}, 'Invalid "function_calls".', "got 0")
        self.assertRefused({"function_calls": [{"text": "hi"}]}, 'Invalid "function_calls".', "got 0")
        self.assertRefused({"function_calls": [call("click", x=1, y=1)] * 101}, 'Invalid "function_calls".')
        self.assertRefused({"function_calls": ["click"]}, "Invalid function call at index 0.", "got a string")
        self.assertRefused({"function_calls": [call("click", x=1, y=1), {"args": {}}]},
                           "Invalid function call at index 1.", "expected")
        self.assertRefused({"function_calls": [{"function_call": {"args": {}}}]},
                           "Invalid function call at index 0.", "name must be a non-empty string")
        self.assertRefused({"function_calls": [{"function_call": {"name": "click", "id": 7}}]},
                           "Invalid function call at index 0.", "id must be a string")
        self.assertRefused({"function_calls": [{"function_call": "click"}]},
                           "Invalid function call at index 0.", "must be an object")
        self.assertRefused({"function_calls": [call("click", x=1, y=1)], "confirmed": "click"},
                           'Invalid "confirmed".')
        code, out = self.post([1])
        self.assertEqual((code, out["message"]), (400, "Failed to decode request body."))


class Safety(GeminiTestCase):
    def test_needsConfirmation(self) -> None:
        """Nothing runs; the 409 names the call and its explanation."""
        code, out = self.post({"function_calls": [
            call("click", "safe", x=1, y=1),
            {"text": "The checkbox needs a click."},
            call("click_at", "risky", x=60, y=100, safety_decision=CAPTCHA),
            call("click", x=1, y=1, safety_decision={"decision": "REQUIRE_CONFIRMATION"}),
        ]})
        self.assertEqual(code, 409)
        self.assertEqual(out["message"], "Safety confirmation needed.")
        self.assertTrue(out["detail"].startswith(
            "click_at (id risky) at index 2: I have encountered a CAPTCHA challenge that requires interaction.; "
            "click at index 3: no explanation given. Ask the user;"), out["detail"])
        self.assertEqual(out["calls"], [
            {"index": 2, "name": "click_at", "id": "risky", "explanation": CAPTCHA["explanation"]},
            {"index": 3, "name": "click", "explanation": ""},
        ])
        self.assertEqual(self.desktop.log, [])

    def test_confirmedRunsOnceWithAcknowledgement(self) -> None:
        calls = [call("click", "safe", x=1, y=1), call("click_at", "risky", x=60, y=100, safety_decision=CAPTCHA)]
        self.assertEqual(self.post({"function_calls": calls})[0], 409)
        responses = self.turn(*calls, confirmed=["risky"])
        self.assertEqual(responses[0].response, {"status": "ok"})
        self.assertEqual(responses[1].response, {"status": "ok", "safety_acknowledgement": "true"})
        self.assertEqual(self.desktop.clicks, [(1, 1, 1, 1, ()), (77, 72, 1, 1, ())])

    def test_confirmedByName(self) -> None:
        c = {"function_call": {"name": "click_at", "args": {"x": 1, "y": 1, "safety_decision": CAPTCHA}}}
        self.assertEqual(self.post({"function_calls": [c], "confirmed": ["other"]})[0], 409)
        [r] = self.turn(c, confirmed=["click_at"])
        self.assertEqual(r.response, {"status": "ok", "safety_acknowledgement": "true"})
        self.assertEqual(len(self.desktop.clicks), 1)

    def test_acknowledgedEvenWhenNotExecuted(self) -> None:
        """The user's confirmation is reported even if an earlier call failed and it did not run."""
        responses = self.turn(call("navigate", url="x"), call("click", "r", x=1, y=1, safety_decision=CAPTCHA),
                              confirmed=["r"])
        self.assertEqual(responses[1].response, {"error": gemini.NOT_EXECUTED, "safety_acknowledgement": "true"})

    def test_otherDecisions(self) -> None:
        """"regular"/"allowed" run; anything else is an error response and does not run."""
        self.ok(call("click", x=1, y=1, safety_decision={"decision": "allowed"}))
        self.desktop.log.clear()
        message = self.error(call("click", x=1, y=1, safety_decision={"decision": "blocked", "explanation": "No."}))
        self.assertEqual(message, 'click: not run: safety decision "blocked": No.')
        self.assertEqual(self.error(call("click", x=1, y=1, safety_decision=5)),
                         "click: not run: safety decision malformed (an integer)")


class Pure(SynchronousTestCase):
    def test_wheelClicks(self) -> None:
        self.assertEqual([gemini.wheelClicks(px) for px in (0, 1, 49, 50, 149, 150, 300, 100000)],
                         [0, 1, 1, 1, 1, 2, 3, 1000])
        with self.assertRaises(gemini.APIError):
            gemini.wheelClicks(100050)

    def test_keyText(self) -> None:
        self.assertEqual(gemini.keyText("Control + A"), "Control+A")
        self.assertEqual(gemini.keyText(" "), " ")
        self.assertEqual(gemini.keyText("ctrl+a Delete"), "ctrl+a Delete")

    def test_gridIsSection6(self) -> None:
        self.assertEqual(gemini.GRID, 1000)
        self.assertTrue(all(geometry.scale(999, 1000, n) == n - 1 for n in (1, 2, 720, 1080, 2000)))
        # Past 2000 px, 999 is the centre of the last grid cell: 3838 of 0-3839.
        self.assertEqual(geometry.scale(999, 1000, 3840), 3838)
