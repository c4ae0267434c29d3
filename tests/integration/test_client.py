"""
agentdesktop.client and agentdesktop-ctl against the live service on a real
desktop, checked as the X server, an X client of ours, xterm, ffprobe and
Pillow saw the effects.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import uuid

from PIL import Image
from twisted.internet import protocol, reactor
from twisted.internet.error import ConnectionRefusedError
from Xlib import XK, X

from agentdesktop.client import DesktopAPIError, DesktopClient, Screenshot
from agentdesktop.recording import Recorder, RecorderConfig
from tests.integration.harness import DesktopTestCase, EventWindow, paintSolid, sleep
from tests.integration.test_recording import probe

TYPED = "-n \"double\" 'single' $HOME \\ é ü ß € 日本 🙂 end"
S = {"scaled_width": 1280, "scaled_height": 720}


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def addRecorder(case: DesktopTestCase) -> None:
    """Give the service a real recorder (ffmpeg) writing to a fresh directory."""
    directory = tempfile.mkdtemp(prefix="client-rec-")
    case.addCleanup(os.rmdir, directory)  # runs last: the recorder empties it on close
    recorder = Recorder(reactor, reactor, case.desktop, RecorderConfig(directory=directory))
    case.state.recorder = recorder
    case.addCleanup(recorder.close)


async def paint(case: DesktopTestCase, seconds: float) -> None:
    for i in range(int(seconds / 0.25)):
        paintSolid(case.info, [0xFF0000, 0x00FF00, 0x0000FF, 0xFFFFFF][i % 4])
        await sleep(0.25)


class Pointer(DesktopTestCase):
    windowManager = None

    async def setUp(self) -> None:
        await self.startDesktop()
        self.desk = self.client()
        self.win = EventWindow(self.info, (0, 0, 1920, 1080))
        self.addCleanup(self.win.close)

    def presses(self) -> list[tuple[int, int, int, int]]:
        """(button, x, y, modifier state) of every press since the last call."""
        mods = X.ShiftMask | X.ControlMask
        return [(d, x, y, s & mods) for k, d, x, y, s in self.win.events() if k == "press"]

    async def test_infoClicksAndCursor(self) -> None:
        info = await self.desk.info()
        self.assertEqual((info["width"], info["height"], info["display"]), (1920, 1080, self.info.display))
        self.assertEqual((info["recommended_width"], info["recommended_height"]), (1280, 720))
        out = await self.desk.left_click(640, 360, **S)
        self.assertEqual(out, "left_click action performed")
        self.assertEqual(self.x.pointer(), (960, 540))
        self.assertEqual(self.presses(), [(1, 960, 540, 0)])
        await self.desk.right_click(10, 20)
        await self.desk.middle_click(30, 40, "shift")
        await self.desk.back_click(50, 60)
        await self.desk.forward_click(70, 80, modifiers="ctrl")
        self.assertEqual(self.presses(), [(3, 10, 20, 0), (2, 30, 40, X.ShiftMask), (8, 50, 60, 0),
                                          (9, 70, 80, X.ControlMask)])
        await self.desk.double_click(100, 100)
        self.assertEqual(self.presses(), [(1, 100, 100, 0)] * 2)
        await self.desk.triple_click(200, 100)
        self.assertEqual(self.presses(), [(1, 200, 100, 0)] * 3)
        await self.desk.mouse_move(853, 402, **S)
        self.assertEqual(self.x.pointer(), (1280, 603))
        self.assertEqual(await self.desk.cursor_position(1366, 768), (911, 429))
        self.assertEqual(await self.desk.cursor_position(), (1280, 603))
        self.assertNothingPressed()

    async def test_dragButtonsScroll(self) -> None:
        await self.desk.left_click_drag((10, 10), (300, 200))
        events = [e[:4] for e in self.win.events() if e[0] != "motion"]
        self.assertEqual(events, [("press", 1, 10, 10), ("release", 1, 300, 200)])
        await self.desk.left_click_drag(path=[(100, 100), (300, 120), (50, 600)], modifiers="shift")
        events = [e for e in self.win.events() if e[0] != "motion"]
        self.assertEqual([e[:4] for e in events], [("press", 1, 100, 100), ("release", 1, 50, 600)])
        self.assertTrue(all(e[4] & X.ShiftMask for e in events))
        await self.desk.left_mouse_down((640, 360), **S)
        self.assertEqual(self.x.pointer(), (960, 540))
        self.assertTrue(self.pointerMask() & X.Button1Mask)
        await self.desk.left_mouse_up()
        self.assertFalse(self.pointerMask() & X.Button1Mask)
        self.win.events()
        await self.desk.scroll(400, 300)
        await self.desk.scroll(410, 300, "up", 2, "ctrl")
        self.assertEqual(self.presses(), [(5, 400, 300, 0)] * 3 + [(4, 410, 300, X.ControlMask)] * 2)
        self.assertNothingPressed()


class Keyboard(DesktopTestCase):
    async def test_typeKeysHoldReset(self) -> None:
        await self.startDesktop()
        desk = self.client()
        path = await self.catTerminal()
        await desk.left_click(100, 100)
        self.assertEqual(await desk.type(TYPED + "\n"), "type action performed")
        await desk.key("x", repeat=3)
        await desk.key("shift+y Return")
        expected = (TYPED + "\nxxxY\n").encode()
        self.assertEqual(await self.waitForContent(path, expected), expected)
        ctrl = self.x.display.keysym_to_keycode(XK.string_to_keysym("Control_L"))
        shift = self.x.display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
        await desk.key_down("ctrl")
        self.assertIn(ctrl, self.pressedKeycodes())
        await desk.key_up("ctrl")
        self.assertNotIn(ctrl, self.pressedKeycodes())
        hold = desk.hold_key("shift", 1500)
        await sleep(0.7)
        self.assertIn(shift, self.pressedKeycodes())
        self.assertEqual(await hold, "hold_key action performed")
        self.assertNotIn(shift, self.pressedKeycodes())
        await desk.key_down("ctrl+alt")
        await desk.left_mouse_down()
        self.assertEqual(len(self.pressedKeycodes()), 2)
        self.assertEqual(await desk.reset_input(), "reset_input action performed")
        self.assertNothingPressed()
        began = time.monotonic()
        self.assertEqual(await desk.wait(300), "wait action performed")
        self.assertGreaterEqual(time.monotonic() - began, 0.3)


class Screen(DesktopTestCase):
    windowManager = None

    async def test_screenshotZoomBatch(self) -> None:
        await self.startDesktop()
        desk = self.client()
        paintSolid(self.info, 0x0000FF)
        shot = await desk.screenshot(**S)
        self.assertEqual((shot.width, shot.height, shot.format), (1280, 720, "png"))
        image = picture(shot.data)
        self.assertEqual((image.format, image.size), ("PNG", (1280, 720)))
        self.assertEqual(image.convert("RGB").getpixel((640, 360)), (0, 0, 255))
        shot = await desk.screenshot(format="jpeg", quality=60)
        self.assertEqual((shot.format, picture(shot.data).format, picture(shot.data).size), ("jpeg", "JPEG", (1920, 1080)))
        shot = await desk.zoom((0, 0, 320, 180), **S)
        self.assertEqual(picture(shot.data).size, (1280, 720))
        answer = await desk.batch(
            [{"action": "mouse_move", "coordinate": [640, 360]}, {"action": "left_mouse_down"},
             {"action": "left_mouse_up"}],
            observe={"settle_ms": 50}, **S,
        )
        self.assertEqual(answer["failed_index"], None)
        self.assertEqual([r["status"] for r in answer["results"]], [200, 200, 200])
        self.assertEqual(self.x.pointer(), (960, 540))
        observed = Screenshot.fromAnswer(answer["observation"])
        self.assertEqual(picture(observed.data).size, (1280, 720))
        with self.assertRaises(DesktopAPIError) as caught:
            await desk.batch([{"action": "mouse_move", "coordinate": [1, 1]}, {"action": "left_click"}])
        e = caught.exception
        self.assertEqual((e.status, e.message, e.detail),
                         (400, "Invalid action at index 1.", 'Missing "coordinate" for left_click action.'))
        self.assertEqual(self.x.pointer(), (960, 540))


class Errors(DesktopTestCase):
    windowManager = None

    async def test_errorsRaiseDesktopAPIError(self) -> None:
        await self.startDesktop()
        desk = self.client()
        for call, status, message, detail in [
            (lambda: desk.action(action="bogus"), 400, "Unknown action: bogus", ""),
            (lambda: desk.key("ctrl+nosuchkey"), 400, 'Unknown key name: "nosuchkey".',
             "Use an X keysym or a common name, e.g. Return, ctrl+shift+t, PageUp, F5."),
            (lambda: desk.left_click("1", 2), 400, "Failed to decode request body.",  # type: ignore[arg-type]
             'field "coordinate" must be an array of 2 integers, got an array holding a string, an integer'),
            (lambda: desk.hold_key("alt", 70000), 400, "Invalid duration: 70000",
             "duration is in milliseconds, between 0 and 60000."),
            (lambda: desk.request("GET", "nothing"), 404, "Not found.", "No resource at /api/v0/desktop/nothing."),
            (lambda: desk.request("GET", "action"), 405, "Method not allowed.", "Use POST for this path."),
        ]:
            with self.assertRaises(DesktopAPIError) as caught:
                await call()
            e = caught.exception
            self.assertEqual((e.status, e.message, e.detail), (status, message, detail))
        self.assertNothingPressed()

    async def test_tokenRequiredAndSent(self) -> None:
        await self.startDesktop(token="s3cret-tøken")
        for token in (None, "wrong"):
            with self.assertRaises(DesktopAPIError) as caught:
                await self.client(token).mouse_move(5, 5)
            e = caught.exception
            self.assertEqual((e.status, e.message, e.detail),
                             (401, "Unauthorized.", "Send Authorization: Bearer <token>."))
        self.assertNotEqual(self.x.pointer(), (5, 5))
        desk = self.client("s3cret-tøken")
        self.assertEqual((await desk.info())["display"], self.info.display)
        await desk.mouse_move(5, 5)
        self.assertEqual(self.x.pointer(), (5, 5))

    async def test_connectionErrorsStayTwisted(self) -> None:
        port = reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        desk = DesktopClient(f"http://127.0.0.1:{number}", reactor=reactor)
        self.addCleanup(desk.close)
        with self.assertRaises(ConnectionRefusedError):
            await desk.info()


class Recording(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def test_startStop(self) -> None:
        await self.startDesktop()
        await addRecorder(self)
        desk = self.client()
        rid = await desk.start_recording()
        self.assertEqual(str(uuid.UUID(rid)), rid)
        await paint(self, 2)
        await desk.mouse_move(10, 10)
        recording = await desk.stop_recording(rid)
        path = self.mktemp() + ".mp4"
        with open(path, "wb") as f:
            f.write(recording.video)
        info = probe(path)
        self.assertEqual((info["streams"][0]["codec_name"], info["streams"][0]["width"]), ("h264", 640))
        self.assertGreater(float(info["format"]["duration"]), 1.0)
        assert recording.thumbnail is not None
        self.assertEqual(picture(recording.thumbnail).format, "JPEG")
        self.assertEqual(await desk.stop_recording(rid.upper()), recording)
        with self.assertRaises(DesktopAPIError) as caught:
            await desk.stop_recording(str(uuid.uuid4()))
        self.assertEqual((caught.exception.status, caught.exception.message, caught.exception.detail),
                         (404, "Recording not found.", "unknown recording ID"))


class CommandLine(DesktopTestCase):
    """agentdesktop-ctl as a separate process against the live service."""

    async def succeeds(self, *args: str, stdin: bytes = b"", script: str | None = None) -> str:
        code, out, err = await self.ctl(*args, stdin=stdin, script=script)
        self.assertEqual(code, 0, err)
        return out.decode()

    async def test_infoScreenshotClick(self) -> None:
        await self.startDesktop()
        info = json.loads(await self.succeeds("info"))
        self.assertEqual((info["width"], info["display"]), (1920, self.info.display))
        png = os.path.abspath(self.mktemp() + ".png")
        out = await self.succeeds("screenshot", "-o", png, "--scaled", "1280x720")
        self.assertIn("1280x720 png", out)
        self.assertEqual((picture(open(png, "rb").read()).format, picture(open(png, "rb").read()).size),
                         ("PNG", (1280, 720)))
        jpg = os.path.abspath(self.mktemp() + ".jpg")
        await self.succeeds("screenshot", "-o", jpg)
        self.assertEqual(picture(open(jpg, "rb").read()).format, "JPEG")
        out = await self.succeeds("click", "640", "360", "--scaled", "1280x720")
        self.assertEqual(out, "left_click action performed\n")
        self.assertEqual(self.x.pointer(), (960, 540))
        await self.succeeds("click", "--button", "right", "--", "7", "8")
        self.assertEqual(self.x.pointer(), (7, 8))
        # The installed console script, with the API URL spelt out.
        info = json.loads(await self.succeeds(
            "--url", self.base, "info",
            script=os.path.join(os.path.dirname(sys.executable), "agentdesktop-ctl")))
        self.assertEqual(info["display"], self.info.display)

    async def test_typeKeyBatch(self) -> None:
        await self.startDesktop()
        path = await self.catTerminal()
        await self.succeeds("click", "100", "100")
        self.assertEqual(await self.succeeds("type", TYPED), "type action performed\n")
        await self.succeeds("key", "Return")
        batch = os.path.abspath(self.mktemp())
        with open(batch, "w") as f:
            json.dump({"actions": [{"action": "type", "text": "from a file"}, {"action": "key", "text": "Return"}],
                       "observe": {"settle_ms": 50}}, f)
        answer = json.loads(await self.succeeds("batch", batch))
        self.assertEqual((answer["failed_index"], len(answer["results"])), (None, 2))
        self.assertIn("screenshot_data", answer["observation"])
        stdin = json.dumps([{"action": "type", "text": "from stdin\n"}]).encode()
        answer = json.loads(await self.succeeds("batch", "-", stdin=stdin))
        self.assertEqual(answer["results"], [{"status": 200, "output": "type action performed"}])
        expected = (TYPED + "\nfrom a file\nfrom stdin\n").encode()
        self.assertEqual(await self.waitForContent(path, expected), expected)

    async def test_record(self) -> None:
        await self.startDesktop()
        await addRecorder(self)
        rid = (await self.succeeds("record", "start")).strip()
        self.assertEqual(str(uuid.UUID(rid)), rid)
        await paint(self, 2)
        video = os.path.abspath(self.mktemp() + ".mp4")
        thumb = os.path.abspath(self.mktemp() + ".jpg")
        await self.succeeds("record", "stop", rid, "-o", video, "--thumbnail", thumb)
        info = probe(video)
        self.assertEqual(info["streams"][0]["codec_name"], "h264")
        self.assertGreater(float(info["format"]["duration"]), 1.0)
        self.assertEqual(picture(open(thumb, "rb").read()).format, "JPEG")

    async def test_errorsAndUsage(self) -> None:
        await self.startDesktop(token="tok-123")
        code, out, err = await self.ctl("info")
        self.assertEqual((code, out, err), (1, b"", b"Unauthorized.: Send Authorization: Bearer <token>.\n"))
        token = os.path.abspath(self.mktemp())
        with open(token, "w") as f:
            f.write("tok-123\n")
        code, out, err = await self.ctl("--token-file", token, "key", "ctrl+nosuchkey")
        self.assertEqual((code, err), (1, b'Unknown key name: "nosuchkey".: '
                                          b"Use an X keysym or a common name, e.g. Return, ctrl+shift+t, PageUp, F5.\n"))
        code, out, err = await self.ctl("--token-file", token, "type", "")
        self.assertEqual((code, err), (1, b'Missing "text" for type action.\n'))
        code, out, err = await self.ctl("record", "stop", "not-a-uuid", "-o", "x.mp4", env={"AGENTDESKTOP_TOKEN": "tok-123"})
        self.assertEqual((code, err), (1, b"Invalid recording_id format.: recording_id must be a valid UUID.\n"))
        self.assertFalse(os.path.exists("x.mp4"))
        code, out, err = await self.ctl("click", "1", env={"AGENTDESKTOP_TOKEN": "tok-123"})
        self.assertEqual(code, 2)
        self.assertIn(b"required: y", err)
        await self.succeeds("--token", "tok-123", "click", "3", "4")
        self.assertEqual(self.x.pointer(), (3, 4))
        self.assertNothingPressed()

