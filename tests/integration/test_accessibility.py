"""
Accessibility on real processes: the desktop's own session bus and AT-SPI
stack, a real GTK 3 application (L{harness.GTKAPP}), and what that
application itself reports.
"""

from __future__ import annotations

import os
import signal
from typing import Any
from urllib.parse import quote

from agentdesktop import geometry
from tests.integration.harness import DesktopTestCase, session, sleep


def find(node: dict[str, Any], role: str, name: str | None = None) -> dict[str, Any] | None:
    """The first node (depth first) with ROLE (and NAME)."""
    if node["role"] == role and (name is None or node["name"] == name):
        return node
    for child in node["children"]:
        found = find(child, role, name)
        if found is not None:
            return found
    return None


def liveMembers(pgid: int) -> list[str]:
    """The commands of the processes of group PGID that still run (zombies have ended)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        command, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[2]) == pgid and rest[0] != "Z":
            found.append(command)
    return found


class AccessibilityTestCase(DesktopTestCase):
    async def tree(self, query: str, timeout: float = 20) -> dict[str, Any]:
        """
        GET /accessibility?QUERY, waiting while the window's application
        has not registered yet (404) or its tree is still being built.
        """
        for _ in range(int(timeout / 0.1)):
            code, body = await self.request("GET", "accessibility?" + query)
            if code == 200 and find(body, "push button") is not None:
                return body
            if code not in (200, 404):
                break
            await sleep(0.1)
        self.fail(f"no tree for {query}: {code} {body}")

    def clientRect(self, windowId: int) -> tuple[int, int, int, int]:
        window = self.x.display.create_resource_object("window", windowId)
        geometry = window.get_geometry()
        origin = self.x.root.translate_coords(window, 0, 0)
        return origin.x, origin.y, geometry.width, geometry.height


class Tree(AccessibilityTestCase):
    async def test_buttonFoundPressedAndTextSet(self) -> None:
        """
        The tree of a GTK window lists its button with its name, role and
        on-screen bounds; a click on the bounds' centre through /action
        presses it, so does the node's action, and set_text reaches the
        entry.
        """
        await self.startDesktop()
        proc, output, wid = await self.startGtkApp("a11y test window")
        tree = await self.tree(f"window={wid}")
        self.assertEqual((tree["role"], tree["name"]), ("frame", "a11y test window"))
        button = find(tree, "push button", "Press me")
        assert button is not None, tree
        self.assertIn("click", [a.lower() for a in button["actions"]])
        self.assertIn("showing", button["states"])
        # The bounds are where the X server has the window: the button
        # spans the client area's width, at its top.
        x, y, w, h = self.clientRect(wid)
        bx, by, bw, bh = button["bounds"]
        self.assertEqual((bx, by, bw), (x, y, w))
        self.assertTrue(10 <= bh < h, button["bounds"])

        await self.ok(action="left_click", coordinate=[bx + bw // 2, by + bh // 2])
        await self.waitForLine(output, "pressed", 1)
        self.assertNothingPressed()

        code, after = await self.request("POST", f"accessibility/{button['id']}", {"action": "click"})
        self.assertEqual(code, 200, after)
        self.assertEqual((after["id"], after["name"]), (button["id"], "Press me"))
        await self.waitForLine(output, "pressed", 2)

        entry = find(tree, "text")
        assert entry is not None, tree
        self.assertIn("editable", entry["states"])
        text = "héllo wörld 🙂 日本"
        code, body = await self.request("POST", f"accessibility/{entry['id']}", {"set_text": text})
        self.assertEqual(code, 200, body)
        await self.waitForLine(output, "text:" + text)

    async def test_declaredSpaceDesktopAndSubtree(self) -> None:
        await self.startDesktop()
        _, _, wid = await self.startGtkApp("a11y scaled window")
        native = await self.tree(f"window={wid}")
        half = await self.tree(f"window={wid:#x}&scaled_width=960&scaled_height=540")
        nb = find(native, "push button")["bounds"]  # type: ignore[index]
        hb = find(half, "push button")["bounds"]  # type: ignore[index]
        # Half the size, and every declared pixel of it is on the button.
        self.assertEqual([abs(h - n / 2) <= 1 for h, n in zip(hb, nb, strict=True)], [True] * 4)
        for point in [(hb[0], hb[1]), (hb[0] + hb[2] - 1, hb[1] + hb[3] - 1)]:
            px, py = geometry.toNative(point, (960, 540), (1920, 1080))
            self.assertTrue(nb[0] <= px < nb[0] + nb[2] and nb[1] <= py < nb[1] + nb[3], point)

        code, desktop = await self.request("GET", "accessibility?max_depth=1")
        self.assertEqual(code, 200, desktop)
        self.assertEqual((desktop["role"], desktop["bounds"]), ("desktop frame", [0, 0, 1920, 1080]))
        [app] = [c for c in desktop["children"] if c["name"] == "gtkapp.py"]
        self.assertEqual((app["role"], app["children"], app["truncated"]), ("application", [], True))

        code, frame = await self.request("GET", f"accessibility/{quote(native['id'])}?max_depth=0")
        self.assertEqual(code, 200, frame)
        self.assertEqual((frame["name"], frame["children"], frame["truncated"]),
                         ("a11y scaled window", [], True))
        code, whole = await self.request("GET", f"accessibility/{native['id']}")
        self.assertEqual(whole, native)


class BadInput(AccessibilityTestCase):
    async def test_unknownWindowsNodesAndActions(self) -> None:
        await self.startDesktop()
        proc, output, wid = await self.startGtkApp("a11y bad input")
        tree = await self.tree(f"window={wid}")
        button, entry = find(tree, "push button"), find(tree, "text")
        assert button is not None and entry is not None

        for query, status, message in [
            (f"window={self.x.root.id}", 404, "Window not found."),
            ("window=4294967295", 404, "Window not found."),
            ("window=abc", 400, "Invalid window: 'abc'"),
            ("max_depth=-1", 400, "Invalid max_depth: '-1'"),
            ("max_depth=101", 400, "Invalid max_depth: '101'"),
        ]:
            code, body = await self.request("GET", "accessibility?" + query)
            self.assertEqual((code, body["message"]), (status, message), query)

        self.spawn(["xterm", "-T", "plain xterm"])
        xterm = await self.windowId("plain xterm")
        code, body = await self.request("GET", f"accessibility?window={xterm}")
        self.assertEqual((code, body["message"]), (404, "Window has no accessibility tree."))
        self.assertIn("not registered with AT-SPI", body["detail"])

        for path, body_, status, message in [
            ("accessibility/nonsense", {"action": "click"}, 404, "Accessibility node not found."),
            ("accessibility/1.999-3", {"action": "click"}, 404, "Accessibility node not found."),
            (f"accessibility/{button['id']}", {"action": "explode"}, 400, "Invalid accessibility action."),
            (f"accessibility/{button['id']}", {"set_text": "x"}, 400, "Invalid accessibility action."),
            (f"accessibility/{button['id']}", {}, 400, "Send exactly one of action and set_text."),
            (f"accessibility/{button['id']}", {"action": 1}, 400, "Failed to decode request body."),
            (f"accessibility/{button['id']}", {"actoin": "click"}, 400, "Failed to decode request body."),
            ("accessibility", {"action": "click"}, 405, "Method not allowed."),
        ]:
            code, body = await self.request("POST", path, body_)
            self.assertEqual((code, body["message"]), (status, message), (path, body_))
        code, body = await self.request("POST", f"accessibility/{button['id']}", {"action": "explode"})
        self.assertIn("'Click'", body["detail"])

        # A node whose application has gone is gone.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code, body = await self.request("POST", f"accessibility/{button['id']}", {"action": "click"})
        self.assertEqual((code, body["message"]), (404, "Accessibility node not found."))
        code, body = await self.request("GET", f"accessibility/{button['id']}")
        self.assertEqual(code, 404, body)
        self.assertEqual(self.lines(output).count("pressed"), 0)
        # Nothing broke: the X worker threads still answer, nothing is held.
        await self.ok(action="screenshot", scaled_width=640, scaled_height=360)
        await self.ok(action="mouse_move", coordinate=[5, 6])
        self.assertEqual(self.x.pointer(), (5, 6))
        self.assertNothingPressed()


class Lifecycle(AccessibilityTestCase):
    windowManager = None

    async def test_restartsWithTheDesktopAndStopsWithIt(self) -> None:
        await self.startDesktop()
        stack = self.desktop.a11y
        assert stack.bus is not None and stack.launcher is not None
        firstBus, firstLauncher = stack.bus, stack.launcher
        self.assertEqual(sorted(liveMembers(firstLauncher.pid or 0)), ["at-spi-bus-laun", "dbus-daemon"])
        self.assertEqual(self.env()["DBUS_SESSION_BUS_ADDRESS"], stack.address)

        # The launcher dies: another starts, on the same session bus.
        await firstLauncher.kill()
        for _ in range(100):
            if stack.running and stack.launcher is not firstLauncher:
                break
            await sleep(0.05)
        _, _, wid = await self.startGtkApp("a11y after launcher")
        await self.tree(f"window={wid}")
        self.assertIs(stack.bus, firstBus)
        self.assertIsNot(stack.launcher, firstLauncher)

        # Xvnc dies: the fresh desktop has fresh buses.
        xvnc = self.desktop._xvnc
        assert xvnc is not None
        await xvnc.kill()
        await firstBus.whenEnded()
        await self.ok(action="cursor_position")
        assert self.desktop.info is not None
        self.info = self.desktop.info
        self.x = session(self.info)
        self.addCleanup(self.x.close)
        self.assertIsNot(stack.bus, firstBus)
        _, _, wid = await self.startGtkApp("a11y after restart")
        await self.tree(f"window={wid}")

        launcher = stack.launcher
        assert launcher is not None and launcher.pid is not None
        await self.desktop.stop()
        # The launcher's group held the accessibility bus and the registry:
        # they were sent KILL, and are gone as soon as the kernel has run it.
        for _ in range(40):
            if not liveMembers(launcher.pid):
                break
            await sleep(0.05)
        self.assertEqual(liveMembers(launcher.pid), [])
        self.assertTrue(stack.bus is None and stack.launcher is None)


class Unavailable(DesktopTestCase):
    windowManager = None

    async def test_missingLauncher(self) -> None:
        await self.startDesktop(atspiBusLauncher="/nonexistent/at-spi-bus-launcher")
        code, body = await self.request("GET", "accessibility")
        self.assertEqual((code, body["message"]), (503, "Accessibility is unavailable."))
        self.assertIn("/nonexistent/at-spi-bus-launcher was not found", body["detail"])
        code, body = await self.request("POST", "accessibility/1.1-3", {"action": "click"})
        self.assertEqual(code, 503, body)
        # The desktop works without it, and its session bus still runs.
        await self.ok(action="cursor_position")
        self.assertIn("DBUS_SESSION_BUS_ADDRESS", self.desktop.env)
