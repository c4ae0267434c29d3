"""
The action API on a real Xvnc, checked as the X server sees it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess

import treq
from PIL import Image, ImageChops
from twisted.internet import defer
from Xlib import XK, X

from tests.integration.harness import DesktopTestCase, session, sleep

TYPED = "-n \"double\" 'single' `tick` $HOME \\ é ü ß € 日本 🙂 end"


class Pointer(DesktopTestCase):
    async def test_clickLandsOnNativePixel(self) -> None:
        await self.startDesktop()
        await self.ok(action="left_click", coordinate=[640, 360], scaled_width=1280, scaled_height=720)
        self.assertEqual(self.x.pointer(), (960, 540))
        await self.ok(action="mouse_move", coordinate=[853, 402], scaled_width=1280, scaled_height=720)
        self.assertEqual(self.x.pointer(), (1280, 603))
        out = await self.ok(action="cursor_position", scaled_width=1366, scaled_height=768)
        self.assertEqual(out["output"], "x=911,y=429")
        self.assertEqual(self.pointerMask() & X.Button1Mask, 0)

    async def test_dragAndButtons(self) -> None:
        await self.startDesktop()
        await self.ok(action="left_click_drag", start_coordinate=[10, 10], coordinate=[300, 200])
        self.assertEqual(self.x.pointer(), (300, 200))
        self.assertEqual(self.pointerMask() & X.Button1Mask, 0)
        await self.ok(action="left_mouse_down")
        self.assertNotEqual(self.pointerMask() & X.Button1Mask, 0)
        await self.ok(action="left_mouse_up")
        self.assertEqual(self.pointerMask() & X.Button1Mask, 0)
        await self.ok(action="scroll", coordinate=[50, 60], scroll_direction="up", scroll_amount=2,
                      text="shift")
        self.assertEqual(self.x.pointer(), (50, 60))
        self.assertEqual(self.pressedKeycodes(), [])


class Keyboard(DesktopTestCase):
    async def test_holdKeyPressesThenReleases(self) -> None:
        await self.startDesktop()
        shift = self.x.display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
        hold = defer.ensureDeferred(self.ok(action="hold_key", text="shift", duration=1500))
        await sleep(0.7)
        self.assertIn(shift, self.pressedKeycodes())
        await hold
        self.assertNotIn(shift, self.pressedKeycodes())

    async def test_holdKeyReleasedWhenClientGoesAway(self) -> None:
        await self.startDesktop()
        alt = self.x.display.keysym_to_keycode(XK.string_to_keysym("Alt_L"))
        hold = treq.post(self.base + "action", json.dumps(
            {"action": "hold_key", "text": "alt", "duration": 30000}).encode(), pool=self.pool)
        await sleep(0.7)
        self.assertIn(alt, self.pressedKeycodes())
        hold.cancel()
        hold.addErrback(lambda f: None)
        for _ in range(50):
            await sleep(0.05)
            if alt not in self.pressedKeycodes():
                break
        self.assertNotIn(alt, self.pressedKeycodes())
        # The input queue is free again.
        await self.ok(action="mouse_move", coordinate=[3, 4])
        self.assertEqual(self.x.pointer(), (3, 4))

    async def test_keyDownUpAndUnknownKey(self) -> None:
        await self.startDesktop()
        ctrl = self.x.display.keysym_to_keycode(XK.string_to_keysym("Control_L"))
        await self.ok(action="key_down", text="ctrl")
        self.assertIn(ctrl, self.pressedKeycodes())
        await self.ok(action="key_up", text="ctrl")
        self.assertNotIn(ctrl, self.pressedKeycodes())
        code, out = await self.action(action="key", text="ctrl+nosuchkey")
        self.assertEqual((code, out["message"]), (400, 'Unknown key name: "nosuchkey".'))

    async def test_typingIsExact20Times(self) -> None:
        """
        Mixed ASCII and Unicode text typed into a real xterm 20 times in a
        row arrives byte for byte every time.
        """
        await self.startDesktop()
        path = os.path.abspath(self.mktemp())
        self.spawn(["xterm", "-u8", "-geometry", "120x20+0+0", "-e", "sh", "-c", f"cat > '{path}'"])
        await self.waitForWindow("XTerm")
        await self.ok(action="left_click", coordinate=[100, 100])
        results = []
        for _ in range(20):
            before = os.path.getsize(path)
            await self.ok(action="type", text=TYPED + "\n")
            expected = before + len((TYPED + "\n").encode())
            for _ in range(50):
                if os.path.getsize(path) >= expected:
                    break
                await sleep(0.05)
            with open(path, "rb") as f:
                f.seek(before)
                results.append(f.read())
        self.assertEqual(results, [(TYPED + "\n").encode()] * 20)


class Screen(DesktopTestCase):
    windowManager = None

    async def test_screenshotSizeAndContent(self) -> None:
        await self.startDesktop()
        first = await self.ok(action="screenshot", scaled_width=1280, scaled_height=720)
        self.assertEqual((first["screenshot_width"], first["screenshot_height"]), (1280, 720))
        before = Image.open(io.BytesIO(base64.b64decode(first["screenshot_data"])))
        self.assertEqual((before.format, before.size), ("PNG", (1280, 720)))
        self.spawn(["xterm", "-bg", "red", "-geometry", "80x24+600+300"])
        changed = None
        for _ in range(50):
            await sleep(0.1)
            out = await self.ok(action="screenshot", scaled_width=1280, scaled_height=720)
            after = Image.open(io.BytesIO(base64.b64decode(out["screenshot_data"]))).convert("RGB")
            changed = ImageChops.difference(before.convert("RGB"), after).getbbox()
            if changed:
                break
        self.assertIsNotNone(changed)
        # The window's top-left corner at native (600, 300) is at declared (400, 200).
        assert changed is not None
        self.assertLessEqual(abs(changed[0] - 400), 2)
        self.assertLessEqual(abs(changed[1] - 200), 2)
        self.assertEqual(after.getpixel((changed[0] + 20, changed[1] + 40)), (255, 0, 0))

        jpeg = await self.ok(action="screenshot", format="jpeg", quality=70)
        self.assertEqual(jpeg["screenshot_format"], "jpeg")
        self.assertEqual(Image.open(io.BytesIO(base64.b64decode(jpeg["screenshot_data"]))).size,
                         (1920, 1080))
        zoom = await self.ok(action="zoom", region=[600, 300, 700, 350])
        img = Image.open(io.BytesIO(base64.b64decode(zoom["screenshot_data"])))
        self.assertEqual(img.size, (1920, 960))


class SharedMemoryGrab(DesktopTestCase):
    geometry = (800, 600)

    async def test_equalsGetImage(self) -> None:
        from agentdesktop.x11.xshm import ShmGrabber

        await self.startDesktop()
        subprocess.run(["xsetroot", "-solid", "#336699"], env=self.env(), check=True)
        self.spawn(["xterm", "-bg", "yellow", "-geometry", "40x10+50+60"])
        await self.waitForWindow("XTerm")
        shm = self.x.grab()
        self.assertIsInstance(self.x._shm, ShmGrabber)
        plain = session(self.info)
        self.addCleanup(plain.close)
        plain._shm = False
        self.assertIsNone(ImageChops.difference(shm, plain.grab()).getbbox())
        self.assertEqual(shm.getpixel((5, 5)), (0x33, 0x66, 0x99))
        region = self.x.grab((40, 50, 300, 200))
        self.assertEqual(region.size, (260, 150))
        self.assertIsNone(ImageChops.difference(region, shm.crop((40, 50, 300, 200))).getbbox())


class Restart(DesktopTestCase):
    windowManager = None

    async def test_freshDesktopAfterXvncDies(self) -> None:
        await self.startDesktop()
        old = self.desktop._xvnc
        assert old is not None
        await old.kill()
        self.assertFalse(self.desktop.running)
        out = await self.ok(action="cursor_position")
        self.assertTrue(out["output"].startswith("x="))
        self.assertTrue(self.desktop.running)
        assert self.desktop._xvnc is not None
        self.assertNotEqual(self.desktop._xvnc.pid, old.pid)
