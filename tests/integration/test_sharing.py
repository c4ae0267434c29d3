"""
People and agents sharing one desktop (SPEC section 16), on real
processes: the control lease taken with the viewer page's button in
headless Chromium, server-side view-only checked as the X server sees it,
one-time tickets, and X access by cookie only.
"""

from __future__ import annotations

import os
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.client import HTTPConnectionPool
from Xlib import XK

from agentdesktop.control import CONTROLLED
from tests.integration.harness import CDP, DesktopTestCase, sleep

TOKEN = "s3cret-token"

#: The viewer page's state, once it is connected and knows who is in control.
PAGE = """
(() => document.body.dataset.connected === '1' && document.body.dataset.control ? {
  control: document.body.dataset.control,
  text: document.getElementById('control').textContent,
  take: !document.getElementById('take').hidden,
  handBack: !document.getElementById('handback').hidden,
  viewOnly: window.rfb.viewOnly,
} : null)()
"""

CANVAS = """
(() => { const r = document.querySelector('#screen canvas').getBoundingClientRect();
         return [r.x, r.y, r.width, r.height]; })()
"""


class SharingTestCase(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def ticket(self, scope: str, ttl: float = 30) -> str:
        code, out = await self.request("POST", "tickets", {"scope": scope, "ttl_s": ttl})
        self.assertEqual(code, 200, out)
        return str(out["ticket"])

    async def held(self) -> bool:
        code, out = await self.request("GET", "control")
        self.assertEqual(code, 200, out)
        return bool(out["held"])

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """A plain GET without the bearer token; the response, body read."""
        response = await treq.get(
            self.base + path, headers=headers, pool=HTTPConnectionPool(reactor, False)
        )
        response.body = await response.content()
        return response


class BrowserControl(SharingTestCase):
    async def openViewer(self, ticket: str) -> CDP:
        cdp = await self.startChromium()
        await cdp.call("Page.navigate", url=self.base + "?ticket=" + ticket)
        page = await self.waitFor(cdp, PAGE, lambda v: v is not None)
        self.assertIsNotNone(page, "the viewer never connected")
        return cdp

    async def canvasPoint(self, cdp: CDP, fx: float, fy: float) -> tuple[float, float, int, int]:
        """A page point at fractions FX, FY of the canvas, and the desktop pixel under it."""
        x, y, w, h = await cdp.evaluate(CANVAS)
        px, py = x + w * fx, y + h * fy
        return px, py, int((px - x) * self.geometry[0] / w), int((py - y) * self.geometry[1] / h)

    async def pointerSettles(self, away: tuple[int, int]) -> tuple[int, int]:
        for _ in range(100):
            if self.x.pointer() != away:
                break
            await sleep(0.02)
        return self.x.pointer()

    async def test_personTakesControlAndHandsBack(self) -> None:
        """
        A person clicks "Take control" on the viewer page: the agent's click
        gets 409 and the pointer does not move, while the person's mouse
        does move it; "Hand back" gives the agent its clicks again.
        """
        await self.startDesktop(token=TOKEN)
        await self.ok(action="mouse_move", coordinate=[5, 5])
        cdp = await self.openViewer(await self.ticket("control"))
        page = await cdp.evaluate(PAGE)
        self.assertEqual((page["control"], page["take"], page["viewOnly"]), ("agent", True, True))

        await cdp.click("#take")
        page = await self.waitFor(cdp, PAGE, lambda v: v["control"] == "yours")
        self.assertEqual((page["text"], page["viewOnly"], page["handBack"]),
                         ("You are in control", False, True))
        self.assertTrue(await self.held())

        code, out = await self.action(action="left_click", coordinate=[100, 100])
        self.assertEqual((code, out), (409, {"message": CONTROLLED}))
        self.assertEqual(self.x.pointer(), (5, 5))
        self.assertNothingPressed()

        px, py, dx, dy = await self.canvasPoint(cdp, 0.5, 0.5)
        await cdp.mouse("mouseMoved", px, py)
        got = await self.pointerSettles((5, 5))
        self.assertLessEqual(abs(got[0] - dx), 2, (got, dx, dy))
        self.assertLessEqual(abs(got[1] - dy), 2, (got, dx, dy))

        await cdp.click("#handback")
        page = await self.waitFor(cdp, PAGE, lambda v: v["control"] == "agent")
        self.assertEqual((page["viewOnly"], page["take"]), (True, True))
        self.assertFalse(await self.held())
        await self.ok(action="left_click", coordinate=[100, 100])
        self.assertEqual(self.x.pointer(), (100, 100))
        self.assertNothingPressed()

    async def test_idleTimeoutReturnsControl(self) -> None:
        """
        Control returns to the agent once the person sent no input for
        --control-idle-timeout: input keeps it, silence ends it.
        """
        await self.startDesktop(token=TOKEN, sharing={"controlIdleTimeout": 1.5})
        cdp = await self.openViewer(await self.ticket("control"))
        await cdp.click("#take")
        await self.waitFor(cdp, PAGE, lambda v: v["control"] == "yours")
        for i in range(10):  # 3 s of the person moving the mouse: still theirs
            px, py, _, _ = await self.canvasPoint(cdp, 0.2 + 0.05 * i, 0.5)
            await cdp.mouse("mouseMoved", px, py)
            await sleep(0.3)
        self.assertTrue(await self.held())
        code, _ = await self.action(action="left_click", coordinate=[9, 9])
        self.assertEqual(code, 409)
        page = await self.waitFor(cdp, PAGE, lambda v: v["control"] == "agent", tries=100)
        self.assertEqual((page["control"], page["viewOnly"]), ("agent", True))
        self.assertFalse(await self.held())
        await self.ok(action="left_click", coordinate=[9, 9])
        self.assertEqual(self.x.pointer(), (9, 9))


class ServerSideViewOnly(SharingTestCase):
    async def sendInput(self, client: Any) -> None:
        """Pointer events (one pressing a button), a key pressed, then a full update."""
        a = XK.string_to_keysym("a")
        client.pointerEvent(0, 300, 200)
        client.pointerEvent(1, 310, 210)
        client.keyEvent(a, True)
        # Xvnc handles a viewer's messages in order: once the update
        # requested after them arrives, it has handled them.
        await self.fullUpdate(client)

    async def test_viewTicketViewerMovesNothing(self) -> None:
        """
        A person holds control, so only its scope keeps this viewer (a view
        ticket) out: its pointer and key events never reach the X server,
        and its update requests still get updates.
        """
        await self.startDesktop(token=TOKEN)
        await self.ok(action="mouse_move", coordinate=[7, 9])
        self.assertEqual((await self.request("POST", "control", {"take": True}))[0], 200)
        client, _ = await self.viewer(url=self.wsURL + "?ticket=" + await self.ticket("view"))
        await self.sendInput(client)
        self.assertEqual(self.x.pointer(), (7, 9))
        self.assertNothingPressed()
        image = await self.fullUpdate(client)
        self.assertEqual(image.size, self.geometry)

    async def test_nobodyInControlMeansNoViewerInput(self) -> None:
        """Even the bearer token's viewer is view-only while nobody holds control."""
        await self.startDesktop(token=TOKEN)
        await self.ok(action="mouse_move", coordinate=[7, 9])
        client, _ = await self.viewer(headers=self.bearer())
        await self.sendInput(client)
        self.assertEqual(self.x.pointer(), (7, 9))
        self.assertNothingPressed()

    async def test_controllingViewerDoesReachTheDesktop(self) -> None:
        """
        The same events from a viewer that may send input (the bearer
        token's, while control is held) do reach the X server; handing
        back releases what it left pressed.
        """
        await self.startDesktop(token=TOKEN)
        await self.ok(action="mouse_move", coordinate=[7, 9])
        await self.request("POST", "control", {"take": True})
        client, _ = await self.viewer(headers=self.bearer())
        await self.sendInput(client)
        self.assertEqual(self.x.pointer(), (310, 210))
        self.assertNotEqual(self.pressedKeycodes(), [])
        await self.request("POST", "control", {"take": False})
        await self.fullUpdate(client)  # Xvnc has handled what came before
        self.assertNothingPressed()

    async def test_viewerInputAlways(self) -> None:
        """--viewer-input always: a view ticket's viewer types with nobody in control."""
        await self.startDesktop(token=TOKEN, sharing={"viewerInput": "always"})
        client, _ = await self.viewer(url=self.wsURL + "?ticket=" + await self.ticket("view"))
        await self.sendInput(client)
        self.assertEqual(self.x.pointer(), (310, 210))
        client.keyEvent(XK.string_to_keysym("a"), False)
        client.pointerEvent(0, 310, 210)
        await self.fullUpdate(client)
        self.assertNothingPressed()


class Tickets(SharingTestCase):
    async def test_onceOnly(self) -> None:
        """A ticket opens /vnc once; the second try is refused with 401."""
        await self.startDesktop(token=TOKEN)
        ticket = await self.ticket("view")
        client, _ = await self.viewer(url=self.wsURL + "?ticket=" + ticket)
        self.assertEqual((client.width, client.height), self.geometry)
        response = await self.get("vnc?ticket=" + ticket)
        self.assertEqual(response.code, 401)
        with self.assertRaises(ConnectionError):
            await self.viewer(url=self.wsURL + "?ticket=" + ticket)

    async def test_notAfterTTL(self) -> None:
        await self.startDesktop(token=TOKEN)
        ticket = await self.ticket("control", ttl=1)
        await sleep(1.1)
        response = await self.get("?ticket=" + ticket)
        self.assertEqual(response.code, 401)

    async def test_scope(self) -> None:
        """
        The page a view ticket opened cannot take control (403); one a
        control ticket opened can.  Each page's session cookie works for its
        own page only: not for the rest of the API.
        """
        await self.startDesktop(token=TOKEN)
        for scope, status in (("view", 403), ("control", 200)):
            response = await self.get("?ticket=" + await self.ticket(scope))
            self.assertEqual(response.code, 200)
            (cookie,) = response.headers.getRawHeaders("set-cookie")
            headers = {"Cookie": cookie.split(";", 1)[0]}
            code, out = await self.request("POST", "control", {"take": True}, headers)
            self.assertEqual(code, status, (scope, out))
            code, _ = await self.request("POST", "action", {"action": "wait"}, headers)
            self.assertEqual(code, 401)
        self.assertTrue(await self.held())

    async def test_tokenInURLRefused(self) -> None:
        await self.startDesktop(token=TOKEN)
        response = await self.get("?token=" + TOKEN)
        self.assertEqual(response.code, 401)
        self.assertIn(b"--allow-token-in-url", response.body)


class XAccess(DesktopTestCase):
    windowManager = None

    async def xdpyinfo(self, xauthority: str) -> tuple[bytes, bytes, int]:
        env = dict(os.environ, DISPLAY=self.info.display, XAUTHORITY=xauthority)
        return await getProcessOutputAndValue("xdpyinfo", [], env=env)

    async def test_cookieOnly(self) -> None:
        """
        A client without the cookie (an empty authority file) cannot open
        the display, and no host or user is let in by xhost; the service
        and a client with the cookie work normally.
        """
        info = await self.startDesktop()
        empty = os.path.abspath(self.mktemp())
        open(empty, "w").close()
        out, err, code = await self.xdpyinfo(empty)
        self.assertNotEqual(code, 0)
        self.assertIn(b"unable to open display", err)
        out, err, code = await self.xdpyinfo(info.xauthority)
        self.assertEqual(code, 0, err)
        self.assertIn(b"name of display", out)
        out, err, code = await getProcessOutputAndValue("xhost", [], env=self.env())
        self.assertEqual(code, 0, err)
        self.assertEqual(out.decode().strip().splitlines(),
                         ["access control enabled, only authorized clients can connect"])
        await self.ok(action="left_click", coordinate=[20, 30])
        self.assertEqual(self.x.pointer(), (20, 30))
        shot = await self.ok(action="screenshot")
        self.assertTrue(shot["screenshot_data"])
