"""
The fast paths, checked on a real Xvnc: screenshots through the SIMD resize
and the ISA-L PNG writer match the old Pillow pipeline (and are lossless),
and input through the long-lived xdotool is visible to the X server by the
time the answer arrives, survives xdotool's death or hang, and leaves no
xdotool behind.
"""

from __future__ import annotations

import base64
import io
import os
import signal

from PIL import Image, ImageChops, ImageStat
from Xlib import X

from tests.integration.harness import DesktopTestCase, EventWindow, paintPattern, sleep


def decode(out: dict[str, object]) -> Image.Image:
    data = out["screenshot_data"]
    assert isinstance(data, str)
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


class Screenshots(DesktopTestCase):
    async def startStill(self) -> Image.Image:
        """A desktop with a noisy background and an xterm of text; its grab."""
        await self.startDesktop()
        paintPattern(self.info)
        self.spawn(["xterm", "-geometry", "100x30+200+100", "-e", "sh", "-c",
                    "ls -l /usr/bin | head -n 28; exec sleep 60"])
        await self.waitForWindow("XTerm")
        await sleep(0.5)
        return self.x.grab()

    def assertBicubic(self, got: Image.Image, want: Image.Image, up: bool = False) -> None:
        """Within the tolerances tests/unit/test_imaging.py justifies."""
        self.assertEqual(got.size, want.size)
        diff = ImageChops.difference(got.convert("RGB"), want)
        self.assertLessEqual(max(ImageStat.Stat(diff).mean), 1.0 if up else 0.5)
        self.assertLessEqual(max(hi for _, hi in diff.getextrema()), 32 if up else 24)

    async def test_matchesPillowPipeline(self) -> None:
        """
        1080p scaled to 720p, and a zoom, match Pillow's bicubic resize of
        the same grab; the native size is the grab exactly (lossless PNG).
        """
        grab = await self.startStill()
        out = await self.ok(action="screenshot", scaled_width=1280, scaled_height=720)
        shot = decode(out)
        self.assertEqual((shot.format, shot.mode), ("PNG", "RGB"))
        self.assertBicubic(shot, grab.resize((1280, 720), Image.BICUBIC))
        native = decode(await self.ok(action="screenshot"))
        self.assertSameImage(native, grab)
        zoom = decode(await self.ok(action="zoom", region=[200, 100, 520, 280]))
        self.assertBicubic(zoom, grab.crop((200, 100, 520, 280)).resize(zoom.size, Image.BICUBIC),
                           up=True)
        self.assertEqual(zoom.size, (1920, 1080))


class Input(DesktopTestCase):
    windowManager = None

    async def test_visibleWhenAnswered(self) -> None:
        """
        With no wait at all after each answer, the X server already has the
        pointer where asked, the button events delivered, the key down.
        """
        await self.startDesktop()
        window = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(window.close)
        for i in range(20):
            x, y = 37 * i + 5, 23 * i + 7
            await self.ok(action="mouse_move", coordinate=[x, y])
            self.assertEqual(self.x.pointer(), (x, y))
            await self.ok(action="left_click", coordinate=[x + 1, y])
            kinds = [(e[0], e[1], e[2], e[3]) for e in window.events() if e[0] != "motion"]
            self.assertEqual(kinds, [("press", 1, x + 1, y), ("release", 1, x + 1, y)])
        shift = self.x.display.keysym_to_keycode(0xFFE1)
        await self.ok(action="key_down", text="shift")
        self.assertIn(shift, self.pressedKeycodes())
        await self.ok(action="key_up", text="shift")
        self.assertNotIn(shift, self.pressedKeycodes())
        self.assertNothingPressed()

    async def test_oneXdotoolForManyActions(self) -> None:
        await self.startDesktop()
        await self.ok(action="mouse_move", coordinate=[1, 1])
        channel = self.desktop._xdotool
        assert channel is not None
        for i in range(10):
            await self.ok(action="left_click", coordinate=[10 + i, 10])
            await self.ok(action="key", text="shift")
        self.assertIs(self.desktop._xdotool, channel)
        self.assertFalse(channel.exited)

    async def test_replacedWhenKilled(self) -> None:
        await self.startDesktop()
        await self.ok(action="mouse_move", coordinate=[1, 1])
        old = self.desktop._xdotool
        assert old is not None and old.pid is not None
        os.kill(old.pid, signal.SIGKILL)
        await old.whenEnded()
        await self.ok(action="mouse_move", coordinate=[300, 200])
        self.assertEqual(self.x.pointer(), (300, 200))
        new = self.desktop._xdotool
        assert new is not None
        self.assertNotEqual(new.pid, old.pid)

    async def test_hungXdotoolTimesOut(self) -> None:
        """
        A hung xdotool: the action fails with the spec's message once the
        tool timeout is over, the process is killed, the next action works.
        """
        await self.startDesktop(toolTimeout=1.0)
        await self.ok(action="mouse_move", coordinate=[1, 1])
        old = self.desktop._xdotool
        assert old is not None and old.pid is not None
        os.kill(old.pid, signal.SIGSTOP)
        code, out = await self.action(action="left_click", coordinate=[50, 60])
        self.assertEqual((code, out["message"]), (500, "Left click failed."))
        self.assertIn("did not answer", out["detail"])
        await old.whenEnded()
        await self.ok(action="left_click", coordinate=[70, 80])
        self.assertEqual(self.x.pointer(), (70, 80))
        self.assertEqual(self.pointerMask() & X.Button1Mask, 0)

    async def test_stoppedWithTheDesktop(self) -> None:
        await self.startDesktop()
        await self.ok(action="mouse_move", coordinate=[1, 1])
        channel = self.desktop._xdotool
        assert channel is not None and channel.pid is not None
        await self.desktop.stop()
        self.assertTrue(channel.exited)
        self.assertRaises(ProcessLookupError, os.kill, channel.pid, 0)


class KeyboardMap(DesktopTestCase):
    async def test_freshXdotoolAfterTypingBindsKeys(self) -> None:
        """
        Typing that binds keycodes retires the long-lived xdotool (it reads
        the keyboard map once, when it starts); keys pressed after it, by a
        fresh one, arrive as they should.
        """
        await self.startDesktop()
        path = await self.catTerminal()
        await self.ok(action="key", text="x")
        old = self.desktop._xdotool
        assert old is not None
        await self.ok(action="type", text="é日")
        await self.ok(action="key", text="eacute")
        await self.ok(action="type", text="ok\n")
        # The old xdotool, unaware of the new binding, loses the é.
        expected = "xé日éok\n".encode()
        self.assertEqual(await self.waitForContent(path, expected), expected)
        self.assertIsNot(self.desktop._xdotool, old)
        await old.whenEnded()
        await self.ok(action="type", text="plain ascii\n")
        channel = self.desktop._xdotool
        await self.ok(action="key", text="Return")
        self.assertIs(self.desktop._xdotool, channel)
