"""
Operations on the live service (SPEC section 17): GET /metrics scraped
after real actions, a real /vnc viewer and a control hand-over, parsed with
prometheus_client's own parser; GET /healthz through a crash of Xvnc;
405 over real HTTP.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet import reactor

from agentdesktop.control import CONTROLLED
from tests import rfbclient
from tests.integration.harness import DesktopTestCase, sleep

TOKEN = "s3cret-token"

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def value(scrape: Scrape, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


class LiveMetrics(DesktopTestCase):
    geometry = (800, 600)
    windowManager = None

    def moved(self, before: Scrape, after: Scrape, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    async def test_countersFollowWhatWasDone(self) -> None:
        await self.startDesktop(token=TOKEN)
        before = await self.scrape()
        # A click (the X server saw the pointer go there), and a screenshot.
        await self.ok(action="left_click", coordinate=[123, 45])
        self.assertEqual(self.x.pointer(), (123, 45))
        shot = await self.ok(action="screenshot")
        # A batch of two with an observation in JPEG.
        code, batch = await self.request("POST", "batch", {
            "actions": [{"action": "mouse_move", "coordinate": [7, 8]},
                        {"action": "cursor_position"}],
            "observe": {"format": "jpeg", "settle_ms": 50, "timeout_ms": 1000}})
        self.assertEqual(code, 200, batch)
        self.assertEqual(batch["results"][1]["output"], "x=7,y=8")
        # Control taken by a person (an agent click is refused meanwhile), then handed back.
        self.assertEqual((await self.request("POST", "control", {"take": True}))[0], 200)
        held = await self.scrape()
        code, out = await self.action(action="left_click", coordinate=[1, 1])
        self.assertEqual((code, out["message"]), (409, CONTROLLED))
        self.assertEqual((await self.request("POST", "control", {"take": False}))[0], 200)
        after = await self.scrape()

        def moved(name: str, **labels: str) -> float:
            return self.moved(before, after, name, **labels)

        actions = "agentdesktop_actions_total"
        self.assertEqual(moved(actions, action="left_click", status="200"), 1)
        self.assertEqual(moved(actions, action="left_click", status="409"), 1)
        self.assertEqual(moved(actions, action="screenshot", status="200"), 1)
        self.assertEqual(moved(actions, action="mouse_move", status="200"), 1)
        self.assertEqual(moved(actions, action="cursor_position", status="200"), 1)
        self.assertEqual(sum(v for (name, _), v in after.items() if name == actions)
                         - sum(v for (name, _), v in before.items() if name == actions), 5)
        self.assertEqual(moved("agentdesktop_action_duration_seconds_count", action="left_click"), 1)
        self.assertEqual(moved("agentdesktop_batch_actions_count"), 1)
        self.assertEqual(moved("agentdesktop_batch_actions_sum"), 2)
        self.assertEqual(moved("agentdesktop_settle_wait_seconds_count", outcome="settled")
                         + moved("agentdesktop_settle_wait_seconds_count", outcome="timed_out"), 1)
        waited = batch["observation"]["waited_ms"] / 1000
        outcome = "settled" if batch["observation"]["settled"] else "timed_out"
        self.assertAlmostEqual(moved("agentdesktop_settle_wait_seconds_sum", outcome=outcome), waited)
        # The screenshots' bytes, exactly as they were sent.
        png = len(base64.b64decode(shot["screenshot_data"]))
        jpeg = len(base64.b64decode(batch["observation"]["screenshot_data"]))
        self.assertEqual(moved("agentdesktop_screenshot_bytes_count", format="png"), 1)
        self.assertEqual(moved("agentdesktop_screenshot_bytes_sum", format="png"), png)
        self.assertEqual(moved("agentdesktop_screenshot_bytes_count", format="jpeg"), 1)
        self.assertEqual(moved("agentdesktop_screenshot_bytes_sum", format="jpeg"), jpeg)
        self.assertEqual(moved("agentdesktop_screenshot_duration_seconds_count", format="png"), 1)
        # The lease: held while the person had it, one hand-over each way.
        self.assertEqual(value(held, "agentdesktop_control_held"), 1)
        self.assertEqual(value(after, "agentdesktop_control_held"), 0)
        self.assertEqual(moved("agentdesktop_control_handovers_total", to="person"), 1)
        self.assertEqual(moved("agentdesktop_control_handovers_total", to="agent"), 1)
        self.assertEqual(moved("agentdesktop_desktop_restarts_total", part="desktop"), 0)

    async def test_vncViewer(self) -> None:
        """
        A /vnc viewer counts as one open websocket connection while it is
        connected, and every byte it sent and received is counted.
        """
        await self.startDesktop(token=TOKEN)
        before = await self.scrape()
        client, proto = await rfbclient.connectWebSocket(
            reactor, self.wsURL, headers={"Authorization": f"Bearer {TOKEN}"})
        self.addCleanup(self.closeWebSocket, proto)
        sent = 0
        send = client.send

        def counting(data: bytes) -> None:
            nonlocal sent
            sent += len(data)
            send(data)

        client.send = counting
        await client.handshake()
        await self.fullUpdate(client)
        connected = await self.scrape()
        self.assertEqual(value(connected, "agentdesktop_vnc_connections", listener="websocket"), 1)
        self.assertEqual(value(connected, "agentdesktop_vnc_connections", listener="raw"), 0)
        proto.sendClose(code=1000)
        await proto.closedWith
        for _ in range(100):
            after = await self.scrape()
            if value(after, "agentdesktop_vnc_connections", listener="websocket") == 0:
                break
            await sleep(0.05)
        self.assertEqual(value(after, "agentdesktop_vnc_connections", listener="websocket"), 0)
        relayed = "agentdesktop_vnc_relayed_bytes_total"
        self.assertEqual(self.moved(before, after, relayed, direction="to_viewer"),
                         client.reader.received)
        self.assertEqual(self.moved(before, after, relayed, direction="to_server"), sent)
        # At least a full 800x600 frame at 4 bytes a pixel went to the viewer.
        self.assertGreater(client.reader.received, 800 * 600 * 4)
        # Version, security type, ClientInit, SetPixelFormat, SetEncodings,
        # one FramebufferUpdateRequest: nothing was dropped or added.
        self.assertEqual(sent, 12 + 1 + 1 + 20 + 8 + 10)

    async def test_rawViewer(self) -> None:
        await self.startDesktop()
        client, proto, _ = await self.rawViewer()
        await self.fullUpdate(client)
        scrape = await self.scrape()
        self.assertEqual(value(scrape, "agentdesktop_vnc_connections", listener="raw"), 1)
        proto.transport.loseConnection()
        for _ in range(100):
            scrape = await self.scrape()
            if value(scrape, "agentdesktop_vnc_connections", listener="raw") == 0:
                break
            await sleep(0.05)
        self.assertEqual(value(scrape, "agentdesktop_vnc_connections", listener="raw"), 0)

    async def test_metricsNeedTheToken(self) -> None:
        await self.startDesktop(token=TOKEN)
        code, headers, _ = await self.fetch("GET", self.origin + "/metrics")
        self.assertEqual(code, 401)
        await self.scrape()


class LiveMetricsWithoutAuth(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def test_open(self) -> None:
        await self.startDesktop(token=TOKEN, sharing={"metricsWithoutAuth": True})
        code, headers, body = await self.fetch("GET", self.origin + "/metrics")
        self.assertEqual(code, 200)
        self.assertIn(b"agentdesktop_actions", body)
        self.assertEqual((await self.fetch("GET", self.base + "info"))[0], 401)


class LiveHealth(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def health(self) -> tuple[int, dict[str, Any]]:
        # No token: probes have none.
        code, _, body = await self.fetch("GET", self.origin + "/healthz")
        return code, json.loads(body)

    async def test_throughACrash(self) -> None:
        """
        /healthz answers 200 while the desktop runs; after Xvnc died it
        starts a fresh one (counted as a restart) and answers 200 again,
        with the new display; a desktop that cannot start is a 503 saying why.
        """
        await self.startDesktop(token=TOKEN)
        code, body = await self.health()
        self.assertEqual((code, body["status"], body["display"]), (200, "ok", self.info.display))
        old = self.desktop._xvnc
        assert old is not None
        await old.kill()
        self.assertFalse(self.desktop.running)
        code, body = await self.health()
        self.assertEqual((code, body["status"]), (200, "ok"))
        self.assertTrue(self.desktop.running)
        assert self.desktop._xvnc is not None
        self.assertNotEqual(self.desktop._xvnc.pid, old.pid)
        scrape = await self.scrape()
        self.assertEqual(value(scrape, "agentdesktop_desktop_restarts_total", part="desktop"), 1)
        # An Xvnc that cannot run: the next probe says so.
        await self.desktop._xvnc.kill()
        self.desktop.config.xvnc = "/nonexistent/Xvnc"
        code, body = await self.health()
        self.assertEqual((code, body["status"]), (503, "unavailable"))
        self.assertIn("/nonexistent/Xvnc", body["detail"])
        self.flushLoggedErrors()


class LiveMethods(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def test_405OverHTTP(self) -> None:
        """TRACE and other methods get 405 with Allow on every kind of route, over real HTTP."""
        await self.startDesktop(token=TOKEN)
        for method, url, allow in [
            ("TRACE", self.origin + "/metrics", "GET, HEAD"),
            ("DELETE", self.origin + "/healthz", "GET, HEAD"),
            ("TRACE", self.origin + "/", "GET, HEAD"),
            ("PUT", self.base + "novnc/core/rfb.js", "GET, HEAD"),
            ("TRACE", self.base + "action", "POST"),
            ("PATCH", self.base + "control", "GET, HEAD, POST"),
            ("TRACE", self.base + "vnc", "GET, HEAD"),
        ]:
            code, headers, body = await self.fetch(method, url)
            self.assertEqual(code, 405, (method, url))
            self.assertEqual(headers.getRawHeaders("allow"), [allow])
            self.assertEqual(json.loads(body)["message"], "Method not allowed.")
        code, headers, _ = await self.fetch("GET", self.origin + "/?ticket=x")
        self.assertEqual((code, headers.getRawHeaders("location")), (302, ["/api/v0/desktop/?ticket=x"]))
        code, _, body = await self.fetch("GET", self.base + "novnc/core/rfb.js")
        self.assertEqual(code, 200)
        self.assertIn(b"export default class RFB", body)
