"""
The OpenAI dialect through StubTreq and a fake desktop: every action and
field, every error result, the safety 409s and the "not executed" chain;
calls built and answers validated with the openai SDK's types.
"""

from __future__ import annotations

import base64
import json
from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st
from openai.types.responses import computer_action as ga
from openai.types.responses import response_computer_tool_call as legacy
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.dialects.openai import ACTIONS, wheelClicks
from agentdesktop.errors import APIError
from tests.openai_sdk import GUIDE_CALL, call, check, legacyCall, validOutput
from tests.unit.service import ServiceTestCase

URL = "http://localhost/api/v0/desktop/dialects/openai"
INPUT = {"move", "click", "drag", "keys", "typeText", "keyDown", "keyUp", "buttonDown", "buttonUp"}


class DialectTestCase(ServiceTestCase):
    def post(self, body: Any, seconds: float = 0) -> tuple[int, Any]:
        if isinstance(body, bytes):
            return self.postJSON(URL, raw=body, advance=seconds)
        return self.postJSON(URL, body, advance=seconds)

    def send(self, call: dict[str, Any], **body: Any) -> tuple[dict[str, Any], str | None]:
        """Send CALL; the validated output item and the error."""
        code, out = self.post({"call": call, **body})
        self.assertEqual(code, 200, out)
        self.assertEqual(set(out), {"output", "error"})
        self.assertEqual(out["output"]["call_id"], call["call_id"])
        validOutput(out["output"])
        return out["output"], out["error"]

    def inputs(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(n, a) for n, a in self.desktop.log if n in INPUT]


class Actions(DialectTestCase):
    def test_everyVendorActionIsTranslated(self) -> None:
        """The table covers every action type of the SDK, GA and legacy alike."""
        for union in (ga.ComputerAction, legacy.Action):
            types = {get_args(m.model_fields["type"].annotation)[0]
                     for m in get_args(get_args(union)[0])}
            self.assertEqual(types, set(ACTIONS))

    def test_clickButtons(self) -> None:
        """left/right/wheel/back/forward are buttons 1/3/2/8/9; (0, 0) is a point."""
        buttons = ["left", "right", "wheel", "back", "forward"]
        self.send(call(*[ga.Click(type="click", button=b, x=0, y=0) for b in buttons]))
        self.assertEqual([c[2] for c in self.desktop.clicks], [1, 3, 2, 8, 9])
        self.assertEqual({c[:2] for c in self.desktop.clicks}, {(0, 0)})

    def test_clickWithoutButtonIsLeft(self) -> None:
        self.send({**GUIDE_CALL, "actions": [{"type": "click", "x": 5, "y": 6}]})
        self.assertEqual(self.desktop.clicks, [(5, 6, 1, 1, ())])

    def test_heldKeys(self) -> None:
        """keys are held during clicks, double clicks, moves, drags and scrolls."""
        keys = ["CTRL", "shift"]
        self.send(call(
            ga.Click(type="click", button="left", x=1, y=2, keys=keys),
            ga.DoubleClick(type="double_click", x=3, y=4, keys=keys),
            ga.Move(type="move", x=5, y=6, keys=keys),
            ga.Drag(type="drag", path=[ga.DragPath(x=1, y=1), ga.DragPath(x=9, y=9)], keys=keys),
            ga.Scroll(type="scroll", x=7, y=8, scroll_x=0, scroll_y=100, keys=keys),
        ))
        mods = ("Control_L", "Shift_L")
        self.assertEqual(self.inputs(), [
            ("click", (1, 2, 1, 1, mods)), ("click", (3, 4, 1, 2, mods)),
            ("move", (5, 6, mods)), ("drag", (((1, 1), (9, 9)), mods)),
            ("click", (7, 8, 5, 1, mods)),
        ])

    def test_display(self) -> None:
        """With display, coordinates and the screenshot are in that space."""
        _, error = self.send(call(ga.Click(type="click", button="left", x=640, y=360),
                                 ga.Move(type="move", x=1279, y=719)),
                            display={"width": 1280, "height": 720})
        self.assertIsNone(error)
        self.assertEqual(self.inputs(), [("click", (960, 540, 1, 1, ())),
                                         ("move", (1919, 1079, ()))])
        self.assertIn(("screenshot", (None, (1280, 720), "png", None)), self.desktop.log)

    def test_nativeByDefault(self) -> None:
        output, _ = self.send(call(ga.Move(type="move", x=1919, y=1079)))
        self.assertEqual(self.desktop.pointerAt, (1919, 1079))
        self.assertEqual(validOutput(output), b"png:1920x1080:None")

    def test_outsideIsAnError(self) -> None:
        """A point outside the screenshot is the model's mistake: nothing runs."""
        _, error = self.send(call(ga.Click(type="click", button="left", x=1280, y=5)),
                            display={"width": 1280, "height": 720})
        self.assertEqual(error, "actions[0] (click) failed: x, y (1280, 5) is outside the "
                                "screen, which is 1280x720")
        self.assertEqual(self.inputs(), [])

    def test_doubleClick(self) -> None:
        self.send(legacyCall(legacy.ActionDoubleClick(type="double_click", x=10, y=20)))
        self.assertEqual(self.desktop.clicks, [(10, 20, 1, 2, ())])
        _, error = self.send({**GUIDE_CALL, "actions": [
            {"type": "double_click", "button": "right", "x": 1, "y": 1}]})
        self.assertIn("Unsupported button for double_click: right", error)

    def test_dragPath(self) -> None:
        path = [ga.DragPath(x=x, y=y) for x, y in [(0, 0), (100, 50), (300, 200), (5, 5)]]
        self.send(call(ga.Drag(type="drag", path=path)))
        self.assertEqual(self.inputs(), [("drag", (((0, 0), (100, 50), (300, 200), (5, 5)), ()))])

    def test_badDrags(self) -> None:
        for path, message in [
            ([{"x": 1, "y": 1}], "path must be a list of 2 to 1000"),
            ([{"x": 1, "y": 1}, [2, 2]], 'path[1] must be an {"x": X, "y": Y} object'),
            ([{"x": 1, "y": 1}, {"x": 1, "y": 2000}], "path[1] (1, 2000) is outside"),
            ([{"x": 1, "y": 1}, {"x": 1.5, "y": 2}], "path[1] must be two integers"),
        ]:
            _, error = self.send({**GUIDE_CALL, "actions": [{"type": "drag", "path": path}]})
            self.assertIn(message, error)
        self.assertEqual(self.inputs(), [])

    def test_scrollPixelsToWheelClicks(self) -> None:
        """100 px a click, rounded half away from zero, at least one click."""
        cases = [(0, 1, 5, 1), (0, 99, 5, 1), (0, 150, 5, 2), (0, -250, 4, 3),
                 (150, 0, 7, 2), (-1, 0, 6, 1), (0, 49, 5, 1), (0, 251, 5, 3)]
        for dx, dy, button, clicks in cases:
            self.desktop.clicks.clear()
            self.send(call(ga.Scroll(type="scroll", x=10, y=20, scroll_x=dx, scroll_y=dy)))
            self.assertEqual(self.desktop.clicks, [(10, 20, button, clicks, ())], (dx, dy))

    def test_scrollBothAxesAndNone(self) -> None:
        self.send(call(ga.Scroll(type="scroll", x=1, y=2, scroll_x=-100, scroll_y=300),
                      ga.Scroll(type="scroll", x=3, y=4, scroll_x=0, scroll_y=0)))
        self.assertEqual(self.inputs(), [("click", (1, 2, 5, 3, ())), ("click", (1, 2, 6, 1, ())),
                                         ("move", (3, 4, ()))])

    def test_scrollErrors(self) -> None:
        for action, message in [
            ({"scroll_y": 1.5}, "scroll_y must be an integer number of pixels"),
            ({"scroll_x": "10"}, "scroll_x must be an integer number of pixels"),
            ({"scroll_y": 10**7}, "Invalid scroll amount: 100000"),
        ]:
            _, error = self.send({**GUIDE_CALL, "actions": [
                {"type": "scroll", "x": 1, "y": 1, **action}]})
            self.assertIn(message, error)
        self.assertEqual(self.inputs(), [])

    def test_keypressIsOneChord(self) -> None:
        self.send(call(
            ga.Keypress(type="keypress", keys=["CTRL", "L"]),
            ga.Keypress(type="keypress", keys=["ENTER"]),
            ga.Keypress(type="keypress", keys=["ArrowLeft"]),
            ga.Keypress(type="keypress", keys=["ctrl+shift+t"]),
            ga.Keypress(type="keypress", keys=["SHIFT", "A"]),
            ga.Keypress(type="keypress", keys=["+", "/", " "]),
        ))
        self.assertEqual([a[0] for _, a in self.inputs()], [
            (("Control_L", "l"),), (("Return",),), (("Left",),),
            (("Control_L", "Shift_L", "t"),), (("Shift_L", "a"),), (("plus", "slash", "space"),),
        ])

    def test_keypressErrors(self) -> None:
        for keys, message in [
            ([], "keypress needs \"keys\""), (None, "keypress needs \"keys\""),
            (["CTRL", "NOPE"], 'Unknown key name: "NOPE".'), ("CTRL", "keys must be a list"),
            ([1], "keys must be a list of key names"),
        ]:
            _, error = self.send({**GUIDE_CALL, "actions": [{"type": "keypress", "keys": keys}]})
            self.assertIn(message, error)
        _, error = self.send({**GUIDE_CALL, "actions": [
            {"type": "click", "button": "left", "x": 1, "y": 1, "keys": ["HYPERCTRL"]}]})
        self.assertIn('Unknown key name: "HYPERCTRL".', error)
        self.assertEqual(self.inputs(), [])

    def test_type(self) -> None:
        self.send(call(ga.Type(type="type", text="-héllo 🙂\n"), ga.Type(type="type", text="")))
        self.assertEqual(self.desktop.typed, "-héllo 🙂\n")
        _, error = self.send({**GUIDE_CALL, "actions": [{"type": "type", "text": 5}]})
        self.assertIn("text must be a string, got an integer", error)

    def test_waitIsOneSecond(self) -> None:
        d = self.treq.post(URL, json.dumps({"call": call(ga.Wait(type="wait"))}).encode())
        self.treq.flush()
        self.clock.advance(0.999)
        self.treq.flush()
        self.assertNoResult(d)
        self.clock.advance(0.001)
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_screenshotRunsNothing(self) -> None:
        """A screenshot action is the screenshot every call answers with."""
        self.send(call(ga.Screenshot(type="screenshot")))
        self.assertEqual([n for n, _ in self.desktop.log], ["settle", "screenshot"])


class ErrorResults(DialectTestCase):
    """Malformed calls are answered (with the screenshot), not refused."""

    def assertError(self, call: dict[str, Any], error: str) -> None:
        _, got = self.send(call)
        self.assertEqual(got, error)
        self.assertEqual(self.inputs(), [])
        self.assertEqual(self.desktop.log[-1][0], "screenshot")

    def test_malformedCalls(self) -> None:
        base = {"type": "computer_call", "call_id": "c"}
        click = {"type": "click", "button": "left", "x": 1, "y": 1}
        self.assertError(base, 'computer_call failed: The call has no "action" or "actions".')
        self.assertError({**base, "action": click, "actions": [click]},
                         'computer_call failed: The call has both "action" and "actions"; '
                         "it needs exactly one.")
        self.assertError({**base, "actions": []}, 'computer_call failed: "actions" must be a '
                         "list of 1 to 100 actions, got an array of 0 elements")
        self.assertError({**base, "actions": click}, 'computer_call failed: "actions" must be a '
                         "list of 1 to 100 actions, got an object")

    def test_unknownAction(self) -> None:
        base = {"type": "computer_call", "call_id": "c"}
        self.assertError({**base, "action": {"type": "triple_click", "x": 1, "y": 1}},
                         "triple_click failed: Unknown action: triple_click type is one of "
                         "click, double_click, drag, move, scroll, keypress, type, wait, "
                         "screenshot.")
        self.assertError({**base, "actions": ["click"]},
                         "actions[0] (action) failed: Each action must be an object, "
                         "got a string.")
        self.assertError({**base, "action": {"type": "click", "button": "middle", "x": 1, "y": 1}},
                         "click failed: Unknown button: middle button is one of left, right, "
                         "wheel, back, forward.")
        self.assertError({**base, "action": {"type": "move", "x": 1}},
                         "move failed: x, y must be two integers, got null")

    def test_laterActionsNotExecuted(self) -> None:
        """A middle action fails: earlier ones ran, later ones did not."""
        _, error = self.send(call(
            ga.Type(type="type", text="one"),
            ga.Keypress(type="keypress", keys=["NOPE"]),
            ga.Type(type="type", text="two"),
            ga.Type(type="type", text="three"),
        ))
        self.assertEqual(self.desktop.typed, "one")
        self.assertEqual(error, 'actions[1] (keypress) failed: Unknown key name: "NOPE". Use an '
                         "X keysym or a common name, e.g. Return, ctrl+shift+t, PageUp, F5. "
                         "Not executed: actions[2] (type) to actions[3] (type).")

    def test_desktopFailureStops(self) -> None:
        """A failing tool stops the batch and lets go of everything."""
        self.desktop.failing.add("keys")
        _, error = self.send(call(
            ga.Keypress(type="keypress", keys=["a"]), ga.Type(type="type", text="never")))
        self.assertEqual(error, "actions[0] (keypress) failed: Key press failed. keys failed on "
                         "purpose Not executed: actions[1] (type).")
        self.assertEqual(self.desktop.typed, "")
        self.assertIn(("releaseAll", ()), self.desktop.log)

    def test_personInControl(self) -> None:
        """An input step refused inside the run is the model's error too."""
        self.desktop.click = lambda *a: defer.fail(  # type: ignore[method-assign]
            APIError(409, "A person is controlling the desktop."))
        _, error = self.send(legacyCall(legacy.ActionClick(type="click", button="left", x=1, y=1)))
        self.assertEqual(error, "click failed: A person is controlling the desktop.")

    def test_screenshotFailure(self) -> None:
        self.desktop.failing.add("screenshot")
        code, out = self.post({"call": call(ga.Type(type="type", text="x"))})
        self.assertEqual((code, out["message"]), (500, "Screenshot failed."))
        self.assertEqual(out["detail"], "screenshot failed on purpose")
        self.assertEqual(self.desktop.typed, "x")


class Safety(DialectTestCase):
    CHECKS = [check("cu_sc_1"), check("cu_sc_2", "sensitive_domain")]

    def test_unacknowledgedRunsNothing(self) -> None:
        for acknowledged in ([], ["cu_sc_2"], None):
            body: dict[str, Any] = {"call": call(ga.Type(type="type", text="x"), checks=self.CHECKS)}
            if acknowledged is not None:
                body["acknowledged_safety_checks"] = acknowledged
            code, out = self.post(body)
            self.assertEqual((code, out["message"]), (409, "Safety checks need acknowledgement."))
            self.assertEqual(out["pending_safety_checks"],
                             [c.model_dump(mode="json") for c in self.CHECKS])
            self.assertIn('"cu_sc_1"', out["detail"])
        self.assertEqual(self.desktop.log, [])

    def test_acknowledgedRunsOnceAndEchoes(self) -> None:
        output, error = self.send(
            legacyCall(legacy.ActionType(type="type", text="x"), checks=self.CHECKS),
            acknowledged_safety_checks=["cu_sc_2", {"id": "cu_sc_1"}, "unrelated"])
        self.assertIsNone(error)
        self.assertEqual(self.desktop.typed, "x")
        self.assertEqual(output["acknowledged_safety_checks"],
                         [c.model_dump(mode="json") for c in self.CHECKS])

    def test_noChecksNoEcho(self) -> None:
        output, _ = self.send(GUIDE_CALL, acknowledged_safety_checks=["cu_sc_1"])
        self.assertNotIn("acknowledged_safety_checks", output)

    def test_safetyBeforeMalformed(self) -> None:
        """A call needing acknowledgement is refused even when it would fail anyway."""
        bad = {**call(checks=self.CHECKS), "actions": [{"type": "explode"}]}
        code, _ = self.post({"call": bad})
        self.assertEqual(code, 409)
        self.assertEqual(self.desktop.log, [])


class NotTheShape(DialectTestCase):
    """A body that is no computer_call at all is a 400 and runs nothing."""

    def assertRefused(self, body: Any, message: str, detail: str | None = None) -> None:
        code, out = self.post(body)
        self.assertEqual((code, out["message"]), (400, message), out)
        if detail is not None:
            self.assertIn(detail, out["detail"])
        self.assertEqual(self.inputs(), [])

    def test_refused(self) -> None:
        self.assertRefused(b"[]", "Failed to decode request body.")
        self.assertRefused({}, 'Missing "call".')
        self.assertRefused({"call": []}, 'Invalid "call".', "got an array of 0 elements")
        self.assertRefused({"call": {**GUIDE_CALL, "type": "function_call"}}, 'Invalid "call".',
                           'call.type must be "computer_call", got "function_call"')
        self.assertRefused({"call": {**GUIDE_CALL, "call_id": None}}, 'Invalid "call".',
                           "call.call_id must be a non-empty string, got null")
        self.assertRefused({"call": {**GUIDE_CALL, "pending_safety_checks": [{"code": "x"}]}},
                           'Invalid "call".', "call.pending_safety_checks must be a list")
        self.assertRefused({"call": GUIDE_CALL, "acknowledged_safety_checks": "cu_sc_1"},
                           'Invalid "acknowledged_safety_checks".')
        self.assertRefused({"call": GUIDE_CALL, "acknowledged_safety_checks": [{"code": "x"}]},
                           'Invalid "acknowledged_safety_checks".')
        self.assertRefused({"call": GUIDE_CALL, "acknowledged_safety_checks": [["cu_sc_1"]]},
                           'Invalid "acknowledged_safety_checks".')
        self.assertRefused({"call": GUIDE_CALL, "display": {"width": 0, "height": 10}},
                           'Invalid "display".')


class GuideExamples(DialectTestCase):
    def test_guideCall(self) -> None:
        """The guide's batched call, without id or pending_safety_checks."""
        output, error = self.send(GUIDE_CALL)
        self.assertIsNone(error)
        self.assertEqual(self.desktop.clicks, [(405, 157, 1, 1, ())])
        self.assertEqual(self.desktop.typed, "penguin")
        self.assertEqual(output["output"]["detail"], "original")
        self.assertEqual(base64.b64decode(output["output"]["image_url"].split(",", 1)[1]),
                         b"png:1920x1080:None")

    def test_sdkDumpWithoutNones(self) -> None:
        """model_dump(exclude_none=True) shapes work as the full dumps do."""
        raw = legacyCall(legacy.ActionMove(type="move", x=3, y=4))
        self.send({k: v for k, v in raw.items() if v is not None})
        self.assertEqual(self.desktop.pointerAt, (3, 4))


class WheelClicks(SynchronousTestCase):
    @given(st.integers(-10**6, 10**6))
    def test_nearestClickAtLeastOne(self, pixels: int) -> None:
        n = wheelClicks(pixels)
        if pixels == 0:
            self.assertEqual(n, 0)
        else:
            self.assertGreaterEqual(n, 1)
            self.assertLessEqual(abs(abs(pixels) - 100 * n), max(50, 100 - abs(pixels)))
            self.assertEqual(n, wheelClicks(-pixels))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=5) | st.sampled_from(["left", "CTRL", "click", "scroll", "drag"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["x", "y", "type", "keys", "path", "button", "scroll_x", "text", "id"]),
        inner, max_size=4),
    max_leaves=10,
)


class Fuzz(DialectTestCase):
    @given(st.dictionaries(st.sampled_from(["action", "actions", "pending_safety_checks",
                                            "call_id", "type"]), JSON, max_size=4),
           JSON, JSON)
    def test_neverAServerError(self, fields: dict[str, Any], ack: Any, display: Any) -> None:
        """Whatever the call holds, the answer is a 200, 400 or 409, and nothing stays pressed."""
        body = {"call": {**GUIDE_CALL, **fields}, "acknowledged_safety_checks": ack,
                "display": display}
        code, out = self.post(body, seconds=1)
        self.assertIn(code, (200, 400, 409), out)
        if code == 200:
            validOutput(out["output"])
        self.assertEqual((self.desktop.pressedKeys, self.desktop.pressedButtons), ([], set()))
