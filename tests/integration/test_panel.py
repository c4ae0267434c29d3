"""
The default desktop on a real Xvnc: the background and the tint2 panel are
on the very first screenshot, the panel's Terminal button opens an xterm
(clicked through C{/action}, as the README's first example does), the
panel comes back with a fresh desktop, and C{--desktop minimal} has none
of it.
"""

from __future__ import annotations

import base64
import io
import os

from PIL import Image
from twisted.internet import reactor
from twisted.internet.threads import deferToThreadPool

from agentdesktop.x11 import panel
from tests.integration.harness import DesktopTestCase, session, sleep

#: The Terminal button on a 1920x1080 desktop, as the README clicks it.
TERMINAL_BUTTON = (50, 1062)


def panelShown(info: object) -> bool:
    x = session(info)  # type: ignore[arg-type]
    try:
        return panel.panelShown(x)
    finally:
        x.close()


class DefaultDesktop(DesktopTestCase):
    desktopKind = "default"

    async def screenshot(self) -> Image.Image:
        out = await self.ok(action="screenshot")
        return Image.open(io.BytesIO(base64.b64decode(out["screenshot_data"]))).convert("RGB")

    def assertPanel(self, image: Image.Image) -> None:
        """The background above, the panel's colours along the bottom 36 rows."""
        w, h = image.size
        self.assertEqual(image.getpixel((w // 2, h // 2)), panel.BACKGROUND)
        self.assertEqual(image.getpixel((w - 5, h - 5)), (0x1E, 0x2A, 0x33))
        row = [image.getpixel((x, h - 18)) for x in range(w)]
        self.assertNotIn(panel.BACKGROUND, row)
        # The buttons are drawn: their icons and labels.
        self.assertGreater(len(set(row[:400])), 10)

    async def test_firstScreenshotShowsThePanel(self) -> None:
        await self.startDesktop()
        self.assertPanel(await self.screenshot())

    async def test_stillDesktopSettles(self) -> None:
        """Nothing on the panel changes by itself (no clock): a batch's observation settles."""
        await self.startDesktop()
        code, out = await self.request("POST", "batch", {
            "actions": [{"action": "wait", "duration": 0}],
            "observe": {"settle_ms": 1500, "timeout_ms": 5000, "screenshot": False},
        })
        self.assertEqual(code, 200, out)
        self.assertTrue(out["observation"]["settled"], out["observation"])

    async def test_terminalButtonOpensATerminal(self) -> None:
        """
        The README's first example: click the Terminal button, type a
        command into the terminal that opens, and it runs.
        """
        # A plain shell: the machine's login files are none of this test's business.
        await self.startDesktop(extraEnv={"SHELL": "/bin/sh"})
        out = os.path.abspath(self.mktemp())
        open(out, "wb").close()
        x, y = TERMINAL_BUTTON
        await self.ok(action="left_click", coordinate=[x, y])
        terminal = None
        for _ in range(200):
            code, windows = await self.request("GET", "windows")
            self.assertEqual(code, 200, windows)
            terminal = next((w for w in windows["windows"] if w["class"] == "XTerm"), None)
            if terminal is not None and terminal["focused"]:
                break
            await sleep(0.05)
        assert terminal is not None, windows
        self.assertTrue(terminal["focused"], terminal)
        # Started by the desktop, as a launched program.
        code, launched = await self.request("GET", "launch")
        self.assertEqual([p["command"][0] for p in launched["processes"]], ["xterm"])
        await self.ok(action="type", text=f"echo hello from the agent > {out}\n")
        data = await self.waitForContent(out, b"hello from the agent\n")
        self.assertEqual(data, b"hello from the agent\n")
        # A new window on the task bar did not take the panel down.
        self.assertTrue(await deferToThreadPool(reactor, reactor.getThreadPool(), panelShown, self.info))

    async def windowOfClass(self, cls: str, seconds: float = 30) -> dict | None:
        """The first managed window of class CLS (as C{GET /windows} lists it) once there is one."""
        for _ in range(int(seconds / 0.1)):
            code, windows = await self.request("GET", "windows")
            self.assertEqual(code, 200, windows)
            found = next((w for w in windows["windows"] if w["class"] == cls), None)
            if found is not None:
                return found
            await sleep(0.1)
        return None

    async def test_browserAndEditorButtons(self) -> None:
        """
        The Browser button opens Chromium on this desktop (with the
        desktop's own profile, so no Chromium elsewhere takes the window),
        the Text editor button l3afpad.
        """
        await self.startDesktop()
        await self.ok(action="left_click", coordinate=[165, 1062])
        await self.ok(action="left_click", coordinate=[285, 1062])
        self.assertIsNotNone(await self.windowOfClass("Chromium"))
        self.assertIsNotNone(await self.windowOfClass("L3afpad"))
        code, launched = await self.request("GET", "launch")
        commands = {p["command"][0]: p["command"] for p in launched["processes"]}
        profile = os.path.join(os.path.dirname(self.info.xauthority), "chromium")
        self.assertIn(f"--user-data-dir={profile}", commands["chromium"])
        self.assertEqual(commands["l3afpad"], ["l3afpad"])

    async def test_panelBackAfterXvncDied(self) -> None:
        await self.startDesktop()
        xvnc = self.desktop._xvnc
        assert xvnc is not None
        await xvnc.kill()
        info = await self.desktop.start()
        self.assertIsNot(self.desktop._xvnc, xvnc)
        self.assertTrue(await deferToThreadPool(reactor, reactor.getThreadPool(), panelShown, info))


class MinimalDesktop(DesktopTestCase):
    desktopKind = "minimal"

    async def test_noPanel(self) -> None:
        await self.startDesktop()
        self.assertFalse(await deferToThreadPool(reactor, reactor.getThreadPool(), panelShown, self.info))
        self.assertEqual(self.desktop._panel, None)
        out = await self.ok(action="screenshot")
        image = Image.open(io.BytesIO(base64.b64decode(out["screenshot_data"]))).convert("RGB")
        w, h = image.size
        self.assertEqual(len({image.getpixel((x, h - 18)) for x in range(w)}), 1)
