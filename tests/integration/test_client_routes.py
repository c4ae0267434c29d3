"""
The Python client against routes merged after it was written (clipboard,
windows, launch, control, the OpenAI dialect), on a live service, effects
checked in X clients.
"""

from __future__ import annotations

import subprocess

from agentdesktop.client import DesktopAPIError
from tests.integration.harness import DesktopTestCase


class ClientRoutes(DesktopTestCase):
    geometry = (1280, 720)

    async def test_clipboard(self) -> None:
        await self.startDesktop()
        desk = self.client()
        await desk.set_clipboard("héllo wörld 🙂")
        got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], env=self.env(),
                             capture_output=True, timeout=10).stdout
        self.assertEqual(got.decode("utf-8"), "héllo wörld 🙂")
        self.assertEqual(await desk.get_clipboard(), "héllo wörld 🙂")
        self.assertIsNone(await desk.get_clipboard("primary"))
        with self.assertRaises(DesktopAPIError) as e:
            await desk.get_clipboard("secondary")
        self.assertEqual(e.exception.status, 400)

    async def test_windowsAndLaunch(self) -> None:
        await self.startDesktop()
        desk = self.client()
        started = await desk.launch(["xterm", "-T", "client-test"], wait_for_window=True)
        window = started["window"]
        self.assertEqual(window["title"], "client-test")
        self.assertIn(started["pid"], [p["pid"] for p in await desk.launched()])
        listed = await desk.windows(1280, 720)
        self.assertIn(window["id"], [w["id"] for w in listed])
        after = await desk.window_action(window["id"], "minimize")
        assert after is not None
        self.assertTrue(after["minimized"])
        after = await desk.window_action(window["id"], "restore")
        assert after is not None
        self.assertFalse(after["minimized"])
        self.assertIsNone(await desk.window_action(window["id"], "close"))
        with self.assertRaises(DesktopAPIError) as e:
            await desk.window_action(window["id"], "focus")
        self.assertEqual(e.exception.status, 404)
        with self.assertRaises(DesktopAPIError) as e:
            await desk.launch(["no-such-program-here"])
        self.assertEqual(e.exception.status, 400)
        self.assertIn("no-such-program-here", e.exception.message + e.exception.detail)

    async def test_controlLease(self) -> None:
        await self.startDesktop()
        desk = self.client()
        await desk.mouse_move(5, 5)
        held = await desk.take_control("alice")
        self.assertEqual((held["held"], held["holder"]), (True, "alice"))
        with self.assertRaises(DesktopAPIError) as e:
            await desk.left_click(100, 100)
        self.assertEqual((e.exception.status, e.exception.message),
                         (409, "A person is controlling the desktop."))
        self.assertEqual(self.x.pointer(), (5, 5))
        with self.assertRaises(DesktopAPIError) as e:
            await desk.batch([{"action": "left_click", "coordinate": [100, 100]}])
        self.assertEqual(e.exception.status, 409)
        self.assertEqual((await desk.screenshot()).width, 1280)
        self.assertTrue((await desk.control())["held"])
        await desk.release_control()
        await desk.left_click(100, 100)
        self.assertEqual(self.x.pointer(), (100, 100))

    async def test_openaiDialect(self) -> None:
        await self.startDesktop()
        desk = self.client()
        out = await desk.openai({"type": "computer_call", "call_id": "call_7",
                                 "action": {"type": "click", "button": "left", "x": 321, "y": 123}})
        self.assertEqual(out["output"]["call_id"], "call_7")
        self.assertIsNone(out["error"])
        self.assertEqual(self.x.pointer(), (321, 123))
        checks = [{"id": "sc_1", "code": "malicious_instructions", "message": "careful"}]
        call = {"type": "computer_call", "call_id": "call_8", "pending_safety_checks": checks,
                "action": {"type": "move", "x": 10, "y": 10}}
        with self.assertRaises(DesktopAPIError) as e:
            await desk.openai(call)
        self.assertEqual(e.exception.status, 409)
        self.assertEqual(e.exception.body["pending_safety_checks"][0]["id"], "sc_1")
        self.assertEqual(self.x.pointer(), (321, 123))
        out = await desk.openai(call, acknowledged_safety_checks=["sc_1"])
        self.assertEqual(self.x.pointer(), (10, 10))
        self.assertEqual(out["output"]["acknowledged_safety_checks"][0]["id"], "sc_1")
