"""
Batches and the section 12 actions on a real desktop, checked as the X
server, xterm and the files they write saw them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat

import treq
from PIL import Image
from Xlib import X, Xatom

from tests.integration.harness import DesktopTestCase, EventWindow, sleep

#: xterm's default green (colour 2) as it draws it.
GREEN = (0, 205, 0)


def image(obs: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(obs["screenshot_data"]))).convert("RGB")


def count(img: Image.Image, rgb: tuple[int, int, int]) -> int:
    return sum(1 for p in img.getdata() if p == rgb)


class BatchTests(DesktopTestCase):
    geometry = (1280, 720)

    async def batch(self, **body: object) -> dict:
        code, out = await self.request("POST", "batch", body)
        self.assertEqual(code, 200, out)
        return out

    async def shell(self) -> None:
        """An interactive shell in a focused xterm at the top left."""
        self.spawn(["xterm", "-u8", "-geometry", "100x30+0+0", "-e", "sh"])
        await self.waitForWindow("XTerm")
        await sleep(0.3)

    async def test_typedTextIsObserved(self) -> None:
        """
        A batch types a command into an xterm; its observation, taken once
        the screen settled, shows the command's output (a green bar).
        """
        await self.startDesktop()
        await self.shell()
        out = await self.batch(actions=[
            {"action": "type", "text": "printf '\\033[42m%60s\\033[0m\\n' ''"},
            {"action": "key", "text": "Return"},
        ], observe={"settle_ms": 150})
        self.assertEqual(out["failed_index"], None)
        obs = out["observation"]
        self.assertTrue(obs["settled"])
        self.assertGreaterEqual(obs["waited_ms"], 150)
        self.assertEqual((obs["screenshot_width"], obs["screenshot_height"]), (1280, 720))
        self.assertGreater(count(image(obs), GREEN), 60 * 6 * 10)

    async def test_waitsForTheEndOfOutput(self) -> None:
        """
        An xterm prints for about half a second: the observation waits for
        the end (the green bar printed last is in it), and says it settled.
        """
        await self.startDesktop()
        await self.shell()
        command = ("for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.05; done; "
                   "printf '\\033[42m%60s\\033[0m\\n' ''")
        out = await self.batch(actions=[{"action": "type", "text": command + "\n"}],
                               # Longer than the printing loop's pauses, even on a
                               # busy machine.
                               observe={"settle_ms": 400, "timeout_ms": 5000})
        obs = out["observation"]
        self.assertTrue(obs["settled"], obs["waited_ms"])
        self.assertGreater(count(image(obs), GREEN), 60 * 6 * 10)

    async def test_busyScreenTimesOut(self) -> None:
        """A screen that never stops changing (top) ends at timeout_ms, not settled."""
        await self.startDesktop()
        self.spawn(["xterm", "-geometry", "100x30+0+0", "-e", "top", "-d", "0.1"])
        await self.waitForWindow("XTerm")
        # top takes a moment before it redraws for the first time.
        await sleep(1)
        out = await self.batch(actions=[{"action": "wait", "duration": 0}],
                               observe={"settle_ms": 400, "timeout_ms": 1500, "screenshot": False})
        self.assertEqual(out["observation"]["settled"], False, out["observation"])
        self.assertGreaterEqual(out["observation"]["waited_ms"], 1500)
        self.assertNotIn("screenshot_data", out["observation"])

    async def test_stillScreenSettles(self) -> None:
        await self.startDesktop()
        out = await self.batch(actions=[{"action": "mouse_move", "coordinate": [5, 5]}],
                               observe={"settle_ms": 300, "timeout_ms": 5000})
        obs = out["observation"]
        self.assertTrue(obs["settled"])
        self.assertGreaterEqual(obs["waited_ms"], 300)
        self.assertLess(obs["waited_ms"], 5000)

    async def test_hundredItems(self) -> None:
        await self.startDesktop()
        path = await self.catTerminal()
        text = "".join(chr(ord("a") + i % 26) for i in range(99)) + "\n"
        out = await self.batch(actions=[{"action": "type", "text": ch} for ch in text])
        self.assertEqual(len(out["results"]), 100)
        self.assertEqual(await self.waitForContent(path, text.encode()), text.encode())

    async def test_concurrentBatchesDoNotInterleave(self) -> None:
        await self.startDesktop()
        path = await self.catTerminal()

        def items(word: str) -> list[dict]:
            out: list[dict] = []
            for ch in word:
                out += [{"action": "type", "text": ch}, {"action": "wait", "duration": 20}]
            return out

        words = ["FIRSTBATCH", "secondbatch", "ThirdBatch"]
        from twisted.internet import defer

        await defer.gatherResults([
            defer.ensureDeferred(self.batch(actions=items(w) + [{"action": "key", "text": "Return"}]))
            for w in words
        ])
        expected = sum(len(w) + 1 for w in words)
        data = await self.waitForContent(path, b"x" * expected)
        self.assertEqual(sorted(data.decode().split()), sorted(words))

    async def test_failureStopsAndReleases(self) -> None:
        """
        An item whose tool fails stops the batch: later items do not run,
        and the keys and buttons earlier items pressed are released.
        """
        wrapper = os.path.abspath(self.mktemp())
        with open(wrapper, "w") as f:
            # One xdotool per command (argv) or one reading commands (-):
            # either way "mousemove 1234" makes xdotool report an error.
            f.write('#!/bin/sh\ncase " $* " in *" mousemove 1234 "*) '
                    'echo "refusing 1234 on purpose" >&2; exit 1;; esac\n'
                    'if [ "$*" = "-" ]; then sed -u "s/^mousemove 1234 .*/refusing-1234-on-purpose/"'
                    ' | exec xdotool -; fi\nexec xdotool "$@"\n')
        os.chmod(wrapper, stat.S_IRWXU)
        await self.startDesktop(xdotool=wrapper)
        path = await self.catTerminal()
        out = await self.batch(actions=[
            {"action": "key_down", "text": "shift"},
            {"action": "left_mouse_down"},
            {"action": "left_click", "coordinate": [1234, 10]},
            {"action": "type", "text": "never"},
        ])
        self.assertEqual(out["failed_index"], 2)
        self.assertEqual([r["status"] for r in out["results"]], [200, 200, 500])
        self.assertEqual(out["results"][2]["message"], "Left click failed.")
        self.assertRegex(out["results"][2]["detail"], "refusing.1234.on.purpose")
        self.assertNothingPressed()
        await sleep(0.5)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"")

    async def test_disconnectMidBatch(self) -> None:
        """A client gone during a wait: nothing more runs, nothing stays pressed."""
        await self.startDesktop()
        path = await self.catTerminal()
        pending = treq.post(self.base + "batch", json.dumps({"actions": [
            {"action": "key_down", "text": "shift"},
            {"action": "left_mouse_down"},
            {"action": "wait", "duration": 3000},
            {"action": "type", "text": "never"},
        ]}).encode(), pool=self.pool)
        await sleep(0.7)
        self.assertNotEqual(self.pressedKeycodes(), [])
        pending.cancel()
        pending.addErrback(lambda f: None)
        for _ in range(40):
            await sleep(0.05)
            if not self.pressedKeycodes():
                break
        self.assertNothingPressed()
        await sleep(3)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"")
        # The input lock is free again.
        await self.ok(action="mouse_move", coordinate=[3, 4])
        self.assertEqual(self.x.pointer(), (3, 4))


    async def test_keyRepeat(self) -> None:
        await self.startDesktop()
        path = await self.catTerminal()
        await self.ok(action="key", text="a b", repeat=4)
        await self.ok(action="key", text="Return")
        self.assertEqual(await self.waitForContent(path, b"abababab\n"), b"abababab\n")


class CompletedActions(DesktopTestCase):
    """SPEC section 12, as an X client of our own saw it."""

    geometry = (1280, 720)
    windowManager = None

    async def test_backForwardAndHeldModifiers(self) -> None:
        await self.startDesktop()
        win = EventWindow(self.info, (0, 0, 1280, 720))
        self.addCleanup(win.close)
        await self.ok(action="back_click", coordinate=[100, 100])
        await self.ok(action="forward_click", coordinate=[110, 100], text="ctrl")
        presses = [(d, x, y, s & X.ControlMask) for k, d, x, y, s in win.events() if k == "press"]
        self.assertEqual(presses, [(8, 100, 100, 0), (9, 110, 100, X.ControlMask)])
        await self.ok(action="mouse_move", coordinate=[200, 150], text="shift")
        moves = [(x, y, s) for k, _, x, y, s in win.events() if k == "motion"]
        self.assertEqual(moves[-1][:2], (200, 150))
        self.assertTrue(moves[-1][2] & X.ShiftMask)
        self.assertNothingPressed()

    async def test_dragAlongPath(self) -> None:
        await self.startDesktop()
        win = EventWindow(self.info, (0, 0, 1280, 720))
        self.addCleanup(win.close)
        path = [[100, 100], [300, 120], [500, 400], [50, 600]]
        await self.ok(action="left_click_drag", path=path, key="shift")
        events = win.events()
        # The pointer moves to the start, then the button goes down there.
        events = events[next(i for i, e in enumerate(events) if e[0] == "press"):]
        self.assertEqual(events[0][:4], ("press", 1, 100, 100))
        self.assertEqual(events[-1][:4], ("release", 1, 50, 600))
        moved = [(x, y) for k, _, x, y, s in events if k == "motion" and s & X.Button1Mask]
        self.assertEqual(moved, [(300, 120), (500, 400), (50, 600)])
        self.assertTrue(all(e[4] & X.ShiftMask for e in events))
        self.assertNothingPressed()

    async def test_buttonAtCoordinateAndReset(self) -> None:
        await self.startDesktop()
        await self.ok(action="left_mouse_down", coordinate=[640, 360], scaled_width=640,
                      scaled_height=360)
        self.assertEqual(self.x.pointer(), (1279, 719))
        self.assertTrue(self.pointerMask() & X.Button1Mask)
        await self.ok(action="key_down", text="ctrl+alt")
        self.assertEqual(len(self.pressedKeycodes()), 2)
        out = await self.ok(action="reset_input")
        self.assertEqual(out["output"], "reset_input action performed")
        self.assertNothingPressed()


class MultiClicks(DesktopTestCase):
    """Double and triple clicks register as one gesture, every time."""

    geometry = (1280, 720)

    async def test_twentyDoubleAndTripleClicks(self) -> None:
        await self.startDesktop()
        self.spawn(["xterm", "-fn", "fixed", "-geometry", "80x10+0+0", "-e", "sh", "-c",
                    "echo 'alpha bravo charlie'; exec sleep 600"])
        await self.waitForWindow("XTerm")
        await sleep(0.3)
        owner = self.x.root.create_window(0, 0, 1, 1, 0, self.x.screen.root_depth)
        # The xterm's client area starts under openbox's title bar.
        origin = self.clientOrigin()
        # "fixed" is 6x13: "bravo" spans columns 6-10 of the first row.
        word = (origin[0] + 2 + 8 * 6 + 3, origin[1] + 2 + 6)
        results: dict[str, list[bytes]] = {"double_click": [], "triple_click": []}
        for _ in range(20):
            for action in results:
                # Someone else owns PRIMARY before each click.
                owner.set_selection_owner(Xatom.PRIMARY, X.CurrentTime)
                self.x.display.sync()
                await self.ok(action=action, coordinate=list(word))
                # The X server has the clicks when the answer arrives; the
                # xterm takes PRIMARY when it gets round to reading them.
                for _ in range(100):
                    if self.x.display.get_selection_owner(Xatom.PRIMARY) != owner:
                        results[action].append(self.primary().rstrip(b"\n"))
                        break
                    await sleep(0.02)
                else:
                    results[action].append(b"(nothing selected)")
                # Past xterm's multi-click time before the next gesture.
                await sleep(0.35)
        self.assertEqual(results["double_click"], [b"bravo"] * 20)
        self.assertEqual(results["triple_click"], [b"alpha bravo charlie"] * 20)

    def clientOrigin(self) -> tuple[int, int]:
        """Where the focused xterm's own window is on the screen."""
        atom = self.x.display.intern_atom("_NET_ACTIVE_WINDOW")
        active = self.x.root.get_full_property(atom, X.AnyPropertyType).value[0]
        window = self.x.display.create_resource_object("window", active)
        pos = window.translate_coords(self.x.root, 0, 0)
        return -pos.x, -pos.y


class ClickEffects(DesktopTestCase):
    """
    openbox grabs clicks on the windows it manages (to focus and raise
    them) and replays them: the answer waits until the applications have
    the release, so nothing an agent does next comes before it.
    """

    geometry = (1280, 720)

    async def test_releaseSeenWhenAnswered(self) -> None:
        await self.clicks()

    async def test_releaseSeenWhenAnsweredPerAction(self) -> None:
        """The same with one xdotool process per action (no acknowledging round trip)."""
        await self.clicks(xdotoolChannel=False)

    async def clicks(self, **config: object) -> None:
        await self.startDesktop(**config)
        self.spawn(["xterm", "-geometry", "60x20+0+0"])
        await self.waitForWindow("XTerm")
        self.spawn(["xterm", "-geometry", "60x20+600+300"])
        await sleep(1)
        held = []
        for target in ([100, 100], [800, 400]) * 6:
            await self.ok(action="left_click", coordinate=target)
            held.append(self.pointerMask() & X.Button1Mask)
        await self.ok(action="left_click_drag", start_coordinate=[120, 120], coordinate=[820, 420])
        held.append(self.pointerMask() & X.Button1Mask)
        self.assertEqual(held, [0] * 13)
