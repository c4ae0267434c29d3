"""
Batches, the section 12 actions and the ignored-fields header, through
StubTreq and a fake desktop; the settle wait with a clock.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.actions.table import Context, Input
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import Settled
from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop
from agentdesktop.web.resource import IGNORED_HEADER
from agentdesktop.x11.damage import waitForQuiet
from tests.unit.service import ServiceTestCase

URL = "http://localhost/api/v0/desktop/"
CLICK = {"action": "left_click", "coordinate": [10, 20]}


class BatchTestCase(ServiceTestCase):
    def post(self, path: str, body: Any, raw: bytes | None = None) -> tuple[int, Any, Any]:
        code, content, headers = self.exchange("POST", URL + path, body, raw)
        return code, json.loads(content), headers

    def batch(self, **body: Any) -> tuple[int, Any]:
        code, out, _ = self.post("batch", body)
        return code, out

    def assertRefused(self, message: str, detail: str | None = None, **body: Any) -> None:
        code, out = self.batch(**body)
        self.assertEqual((code, out["message"]), (400, message), out)
        if detail is not None:
            self.assertEqual(out["detail"], detail)
        self.assertEqual([n for n, _ in self.desktop.log], [], "nothing may run")

    def calls(self) -> list[str]:
        return [name for name, _ in self.desktop.log]


class Validation(BatchTestCase):
    def test_malformed(self) -> None:
        self.assertRefused('Missing "actions" for batch.')
        self.assertRefused('Invalid "actions" for batch.', actions=[])
        self.assertRefused('Invalid "actions" for batch.', actions=[CLICK] * 101)
        self.assertRefused("Failed to decode request body.", actions={"action": "left_click"})
        self.assertRefused('Invalid "observe" for batch.', actions=[CLICK], observe=[])
        self.assertRefused('Invalid "observe" for batch.', actions=[CLICK], observe={"settle_ms": 5001})
        self.assertRefused('Invalid "observe" for batch.', actions=[CLICK], observe={"timeout_ms": 10001})
        self.assertRefused('Invalid "observe" for batch.', actions=[CLICK], observe={"format": "gif"})
        self.assertRefused('Invalid "observe" for batch.', actions=[CLICK], observe={"screenshot": "yes"})
        self.assertRefused("Failed to decode request body.", actions=[CLICK], scaled_width="1280")

    def test_badItemRunsNothing(self) -> None:
        """One bad item refuses the whole batch, naming the item and why."""
        self.assertRefused(
            "Invalid action at index 2.", 'Missing "coordinate" for left_click action.',
            actions=[CLICK, {"action": "type", "text": "x"}, {"action": "left_click"}],
        )
        self.assertRefused(
            "Invalid action at index 0.",
            'Failed to decode request body. field "coordinate" must be an array of 2 integers, '
            "got a string",
            actions=[{"action": "left_click", "coordinate": "1,2"}],
        )
        self.assertRefused("Invalid action at index 1.", "Unknown action: fly",
                           actions=[CLICK, {"action": "fly"}])
        self.assertRefused("Invalid action at index 0.",
                           "Failed to decode request body. each action must be a JSON object, got a string",
                           actions=["left_click"])
        # An image bigger than allowed is caught before anything runs too.
        self.assertRefused("Invalid action at index 1.", actions=[CLICK, {"action": "screenshot"}],
                           scaled_width=9000)


class Running(BatchTestCase):
    def test_allRunInOrder(self) -> None:
        code, out = self.batch(actions=[
            CLICK, {"action": "type", "text": "héllo"}, {"action": "key", "text": "Return"},
            {"action": "cursor_position"},
        ])
        self.assertEqual(code, 200)
        self.assertIsNone(out["failed_index"])
        self.assertEqual([r["status"] for r in out["results"]], [200] * 4)
        self.assertEqual(out["results"][0]["output"], "left_click action performed")
        self.assertEqual(out["results"][3]["output"], "x=10,y=20")
        self.assertEqual(self.calls(), ["click", "typeText", "keys", "pointer"])
        self.assertEqual(self.desktop.typed, "héllo")
        self.assertNotIn("observation", out)

    def test_stopsAtFirstFailure(self) -> None:
        self.desktop.failing = {"typeText"}
        code, out = self.batch(actions=[CLICK, {"action": "type", "text": "x"}, CLICK])
        self.assertEqual(code, 200)
        self.assertEqual(out["failed_index"], 1)
        self.assertEqual(len(out["results"]), 2)
        self.assertEqual(out["results"][1]["status"], 500)
        self.assertEqual(out["results"][1]["message"], "Type action failed.")
        self.assertIn("failed on purpose", out["results"][1]["detail"])
        # The third click never ran; everything was released after the failure.
        self.assertEqual(self.calls(), ["click", "typeText", "releaseAll"])

    def test_itemsInheritBatchSize(self) -> None:
        self.batch(actions=[{"action": "left_click", "coordinate": [640, 360]},
                            {"action": "left_click", "coordinate": [640, 360], "scaled_width": 640,
                             "scaled_height": 360}],
                   scaled_width=1280, scaled_height=720)
        self.assertEqual([c[:2] for c in self.desktop.clicks], [(960, 540), (1919, 1079)])

    def test_holdAndWaitInBatch(self) -> None:
        d = self.treq.post(URL + "batch", json.dumps({"actions": [
            {"action": "hold_key", "text": "shift", "duration": 300},
            {"action": "wait", "duration": 200}, CLICK]}).encode())
        self.treq.flush()
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.clock.advance(0.3)
        self.assertEqual(self.desktop.pressedKeys, [])
        self.assertEqual(self.desktop.clicks, [])
        self.clock.advance(0.2)
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(len(self.desktop.clicks), 1)

    def test_batchesDoNotInterleave(self) -> None:
        """A second batch's input waits for the whole first batch."""
        first = [{"action": "type", "text": "a"}, {"action": "wait", "duration": 100},
                 {"action": "type", "text": "b"}]
        second = [{"action": "type", "text": "X"}, {"action": "type", "text": "Y"}]
        self.treq.post(URL + "batch", json.dumps({"actions": first}).encode())
        self.treq.post(URL + "batch", json.dumps({"actions": second}).encode())
        self.treq.post(URL + "action", json.dumps({"action": "type", "text": "Z"}).encode())
        self.treq.flush()
        self.clock.advance(0.1)
        self.treq.flush()
        self.assertEqual(self.desktop.typed, "abXYZ")

    def test_goneClientStopsBatch(self) -> None:
        """A client that goes away during a wait: nothing after it runs."""
        runner = self.state.runner
        steps = [Input("Mouse move failed.", lambda d: d.move(1, 1, ()))]
        from agentdesktop.actions.screen import Wait
        steps = [steps[0], Wait(1000), Input("Left click failed.", lambda d: d.click(1, 1, 1, 1, ()))]
        disconnected: defer.Deferred[None] = defer.Deferred()
        gone = [False]
        d = defer.Deferred.fromCoroutine(runner.runBatch(steps, disconnected, lambda: gone[0]))
        gone[0] = True
        disconnected.errback(ConnectionError("client went away"))
        results, failed = self.successResultOf(d)
        self.assertEqual(failed, 1)
        self.assertEqual(results[1]["message"], "Action interrupted.")
        self.assertEqual(self.calls(), ["move", "releaseAll"])
        self.assertFalse(runner.lock.locked)


class Observation(BatchTestCase):
    def test_observation(self) -> None:
        code, out = self.batch(actions=[CLICK], scaled_width=1280, scaled_height=720,
                               observe={"settle_ms": 200, "format": "jpeg", "quality": 70})
        self.assertEqual(code, 200)
        obs = out["observation"]
        self.assertEqual((obs["settled"], obs["waited_ms"]), (True, 200))
        self.assertEqual((obs["screenshot_width"], obs["screenshot_height"]), (1280, 720))
        self.assertEqual(obs["screenshot_format"], "jpeg")
        self.assertEqual(base64.b64decode(obs["screenshot_data"]), b"jpeg:1280x720:None")
        self.assertEqual(self.calls(), ["click", "settle", "screenshot"])
        self.assertEqual(self.desktop.log[1][1], (200, 2000))

    def test_observedAfterFailureToo(self) -> None:
        self.desktop.failing = {"click"}
        self.desktop.busy = True
        code, out = self.batch(actions=[CLICK], observe={"screenshot": False, "timeout_ms": 900})
        self.assertEqual(out["failed_index"], 0)
        self.assertEqual(out["observation"], {"settled": False, "waited_ms": 900})

    def test_screenshotFailureInsideObservation(self) -> None:
        self.desktop.failing = {"screenshot"}
        code, out = self.batch(actions=[CLICK], observe={})
        self.assertEqual(code, 200)
        self.assertEqual(out["results"][0]["status"], 200)
        self.assertEqual(out["observation"]["status"], 500)
        self.assertEqual(out["observation"]["message"], "Screenshot failed.")


class IgnoredFields(BatchTestCase):
    def test_actionHeader(self) -> None:
        code, out, headers = self.post("action", {"action": "left_click", "coordinate": [1, 1],
                                                  "scaled_widht": 1280, "duration": 5})
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(IGNORED_HEADER.decode()), ["duration, scaled_widht"])
        code, out, headers = self.post("action", {"action": "left_click", "coordinate": [1, 1],
                                                  "scaled_width": 1280, "text": None})
        self.assertIsNone(headers.getRawHeaders(IGNORED_HEADER.decode()))

    def test_batchHeader(self) -> None:
        code, out, headers = self.post("batch", {
            "actions": [CLICK, {"action": "wait", "duration": 0, "coordinate": [1, 1]}],
            "observe": {"settle": 5}, "scaled_widht": 3})
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(IGNORED_HEADER.decode()),
                         ["scaled_widht, actions[1].coordinate, observe.settle"])


class CompletedActionSet(BatchTestCase):
    """SPEC section 12 on /action."""

    def action(self, **body: Any) -> tuple[int, Any]:
        code, out, _ = self.post("action", body)
        return code, out

    def test_keyRepeat(self) -> None:
        self.assertEqual(self.action(action="key", text="ctrl+a Delete", repeat=3)[0], 200)
        self.assertEqual(self.desktop.log[-1][1][0], (("Control_L", "a"), ("Delete",)) * 3)
        for bad in (0, 101):
            code, out = self.action(action="key", text="a", repeat=bad)
            self.assertEqual((code, out["message"]), (400, f"Invalid repeat: {bad}"))
        code, out = self.action(action="key", text="a " * 100, repeat=100)
        self.assertEqual((code, out["message"]), (400, "Too many keys for key action."))

    def test_modifiersOnMoveDragScroll(self) -> None:
        self.action(action="mouse_move", coordinate=[5, 6], text="shift")
        self.action(action="left_click_drag", start_coordinate=[1, 1], coordinate=[9, 9], key="ctrl")
        self.assertEqual(self.desktop.log[0], ("move", (5, 6, ("Shift_L",))))
        self.assertEqual(self.desktop.log[1], ("drag", (((1, 1), (9, 9)), ("Control_L",))))

    def test_backForward(self) -> None:
        self.assertEqual(self.action(action="back_click", coordinate=[3, 4])[1]["output"],
                         "back_click action performed")
        self.action(action="forward_click", coordinate=[3, 4])
        self.assertEqual([c[2] for c in self.desktop.clicks], [8, 9])
        code, out = self.action(action="back_click")
        self.assertEqual((code, out["message"]), (400, 'Missing "coordinate" for back_click action.'))
        self.desktop.failing = {"click"}
        self.assertEqual(self.action(action="forward_click", coordinate=[1, 1])[1]["message"],
                         "Forward click failed.")

    def test_dragPath(self) -> None:
        code, out = self.action(action="left_click_drag", path=[[0, 0], [640, 360], [1279, 719]],
                                scaled_width=1280, scaled_height=720)
        self.assertEqual(code, 200, out)
        self.assertEqual(self.desktop.log[-1], ("drag", (((0, 0), (960, 540), (1919, 1079)), ())))
        for body in ({"path": [[1, 1]]}, {"path": [[1, 1]] * 1001},
                     {"path": [[1, 1], [2, 2]], "coordinate": [3, 3]}):
            code, out = self.action(action="left_click_drag", **body)
            self.assertEqual((code, out["message"]), (400, 'Invalid "path" for left_click_drag.'))
        code, out = self.action(action="left_click_drag", path=[[1, 1], "2,2"])
        self.assertEqual((code, out["message"]), (400, "Failed to decode request body."))
        self.assertIn("path[1]", out["detail"])

    def test_buttonAtCoordinate(self) -> None:
        self.action(action="left_mouse_down", coordinate=[7, 8])
        self.assertEqual(self.desktop.pointerAt, (7, 8))
        self.assertEqual(self.desktop.pressedButtons, {1})
        self.action(action="left_mouse_up", coordinate=[9, 9])
        self.assertEqual((self.desktop.pointerAt, self.desktop.pressedButtons), ((9, 9), set()))

    def test_resetInput(self) -> None:
        self.action(action="key_down", text="shift")
        self.action(action="left_mouse_down")
        code, out = self.action(action="reset_input")
        self.assertEqual(out["output"], "reset_input action performed")
        self.assertEqual((self.desktop.pressedKeys, self.desktop.pressedButtons), ([], set()))

    def test_coordinateStillRequired(self) -> None:
        """A Coder client omits a [0, 0] coordinate: never "at the cursor"."""
        for action in ("mouse_move", "left_click", "scroll", "back_click"):
            code, out = self.action(action=action)
            self.assertEqual(code, 400, action)


class SettleWait(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.changes = [0.0]

    def wait(self, settleMs: int, timeoutMs: int) -> defer.Deferred[Settled]:
        return waitForQuiet(self.clock, self.clock.seconds, lambda: self.changes[-1],
                            settleMs, timeoutMs)

    def test_stillScreen(self) -> None:
        self.clock.advance(100)
        d = self.wait(150, 2000)
        self.clock.advance(0.149)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        self.assertEqual(self.successResultOf(d), Settled(True, 150))

    def test_waitsForTheLastChange(self) -> None:
        self.clock.advance(100)
        d = self.wait(150, 2000)
        for _ in range(5):
            self.clock.advance(0.1)
            self.changes.append(self.clock.seconds())
        # The last change was at 500 ms: quiet from then on.
        self.clock.advance(0.149)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        self.assertEqual(self.successResultOf(d), Settled(True, 650))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_neverSettles(self) -> None:
        self.clock.advance(100)
        d = self.wait(150, 1000)
        for _ in range(20):
            self.clock.advance(0.1)
            self.changes.append(self.clock.seconds())
        self.assertEqual(self.successResultOf(d), Settled(False, 1000))

    def test_cancel(self) -> None:
        d = self.wait(150, 1000)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class StepErrors(SynchronousTestCase):
    def test_inputFailureReleases(self) -> None:
        desktop = FakeDesktop()
        state = makeState(desktop, task.Clock())

        def broken(d: Any) -> defer.Deferred[None]:
            return defer.fail(DesktopError("xdotool exited with status 1"))

        step = Input("Mouse move failed.", broken)
        ctx = Context(desktop, lambda ms: defer.succeed(None))
        f = self.failureResultOf(defer.Deferred.fromCoroutine(state.runner.perform(step, ctx)))
        self.assertEqual((f.value.status, f.value.message), (500, "Mouse move failed."))
        self.assertEqual(desktop.log, [("releaseAll", ())])
