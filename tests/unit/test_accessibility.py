"""
Accessibility without D-Bus or processes: state names, node ids, window
matching, declared-space bounds, the routes (StubTreq and FakeDesktop),
the stack's process policy (fake reactor and worker), and the bounded
level-by-level walk (a fake bus answering jeepney messages).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from jeepney.low_level import HeaderFields, Message
from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import geometry
from agentdesktop.accessibility import client, model
from agentdesktop.accessibility.model import WindowTarget
from agentdesktop.accessibility.stack import (
    AccessibilityConfig,
    AccessibilityStack,
    desktopEnvironment,
    unixAddress,
)
from agentdesktop.errors import AccessibilityUnavailable, NodeActionError, UnknownNode
from agentdesktop.interfaces import AccessibleNode
from agentdesktop.testing import FakeAtspiWorker, FakeProcessReactor
from tests.unit.test_desktop import fakeBinary
from tests.unit.test_web import APITestCase


class States(SynchronousTestCase):
    def test_bits(self) -> None:
        # Bits 1 (active), 8 (enabled), 25 (showing); 32 (indeterminate).
        words = [(1 << 1) | (1 << 8) | (1 << 25), 1 << 0]
        self.assertEqual(model.stateNames(words), ["active", "enabled", "showing", "indeterminate"])
        self.assertEqual(model.stateNames([0, 0]), [])
        self.assertEqual(model.stateNames([0, 1 << 31]), ["state-63"])
        self.assertEqual(model.STATE_NAMES.index("read-only"), 43)


class NodeIds(SynchronousTestCase):
    def test_shortAndLong(self) -> None:
        self.assertEqual(model.encodeNodeId(":1.42", "/org/a11y/atspi/accessible/17"), "1.42-17")
        self.assertEqual(model.decodeNodeId("1.42-root"), (":1.42", "/org/a11y/atspi/accessible/root"))
        registry = model.encodeNodeId(model.REGISTRY, model.ROOT_PATH)
        self.assertTrue(registry.startswith("~"))
        self.assertEqual(model.decodeNodeId(registry), (model.REGISTRY, model.ROOT_PATH))

    @given(st.from_regex(r":[0-9]{1,4}\.[0-9]{1,6}", fullmatch=True),
           st.lists(st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True), min_size=1, max_size=6))
    def test_roundTrip(self, bus: str, parts: list[str]) -> None:
        path = "/" + "/".join(parts)
        nodeId = model.encodeNodeId(bus, path)
        self.assertRegex(nodeId, r"^[A-Za-z0-9._~-]+$")
        self.assertEqual(model.decodeNodeId(nodeId), (bus, path))

    def test_notIds(self) -> None:
        for bad in ["", "nonsense", "1.2", "1.2-", "-3", "~", "~!!", "~aGVsbG8", "1.2-a/b", "~" + "A" * 8]:
            self.assertRaises(UnknownNode, model.decodeNodeId, bad)


class Matching(SynchronousTestCase):
    target = WindowTarget(7, 100, "Editor", (201, 170, 400, 200))

    def test_overlap(self) -> None:
        self.assertEqual(model.overlap((0, 0, 10, 10), (0, 0, 10, 10)), 1.0)
        self.assertEqual(model.overlap((0, 0, 10, 10), (10, 0, 10, 10)), 0.0)
        self.assertAlmostEqual(model.overlap((0, 0, 10, 10), (5, 0, 10, 10)), 50 / 150)

    def test_sameProcess(self) -> None:
        frame = (200, 150, 402, 225)
        candidates = [("Other", (800, 600, 100, 100)), ("Editor", frame), ("Editor", None)]
        self.assertEqual(model.pickToplevel(self.target, candidates, True), 1)
        # Without a title, the place decides.
        self.assertEqual(model.pickToplevel(self.target, [("", None), ("", frame)], True), 1)
        # A lone window of the process is taken; several unknown ones are not.
        self.assertEqual(model.pickToplevel(self.target, [("", None)], True), 0)
        self.assertIsNone(model.pickToplevel(self.target, [("", None), ("", None)], True))

    def test_otherProcesses(self) -> None:
        """Without the window's process, only a close match counts."""
        near = ("Other", (201, 170, 400, 200))
        self.assertEqual(model.pickToplevel(self.target, [near], False), 0)
        self.assertIsNone(model.pickToplevel(self.target, [("Other", (0, 0, 400, 200))], False))
        self.assertIsNone(model.pickToplevel(self.target, [("Other", None)], False))
        self.assertEqual(model.pickToplevel(self.target, [("Editor", (250, 200, 50, 50))], False), 0)

    def test_actionIndex(self) -> None:
        self.assertEqual(model.actionIndex(["Click", "click"], "click"), 1)
        self.assertEqual(model.actionIndex(["Click"], "click"), 0)
        self.assertIsNone(model.actionIndex(["press"], "click"))
        self.assertIsNone(model.actionIndex(["A", "a"], "A".lower() + "x"))


class Bounds(SynchronousTestCase):
    def test_screenBounds(self) -> None:
        self.assertEqual(model.screenBounds((1, 2, 3, 4)), (1, 2, 3, 4))
        for bad in [None, (1, 2, 0, 4), (1, 2, 3, -1), (-(2**31), 0, 5, 5), (1, 2, 3)]:
            self.assertIsNone(model.screenBounds(bad))

    def test_declared(self) -> None:
        self.assertEqual(model.declaredBounds((201, 170, 400, 34), (1920, 1080), (1920, 1080)),
                         [201, 170, 400, 34])
        self.assertEqual(model.declaredBounds((201, 170, 400, 34), (1920, 1080), (960, 540)),
                         [100, 85, 200, 17])
        # Native rows 1-4 are declared rows 0-1 at half size (row 2 is native 5).
        self.assertEqual(model.declaredBounds((0, 1, 4, 4), (640, 480), (320, 240)), [0, 0, 2, 2])
        self.assertEqual(model.declaredBounds((0, 0, 1, 1), (1920, 1080), (192, 108)), [0, 0, 1, 1])

    @given(st.integers(640, 3840), st.integers(480, 2160), st.floats(0.25, 2.0),
           st.integers(0, 3000), st.integers(0, 2000), st.integers(1, 600), st.integers(1, 400))
    def test_everyDeclaredPixelLandsInside(self, nw: int, nh: int, factor: float,
                                           x: int, y: int, w: int, h: int) -> None:
        """
        Every pixel of the declared bounds (the centre too), clicked through
        /action, lands on the node; when the node is as big as a declared
        pixel, the bounds cover all of it but the rounding at each edge.
        """
        x, y = min(x, nw - w), min(y, nh - h)
        if x < 0 or y < 0:
            return
        declared = (max(1, int(nw * factor)), max(1, int(nh * factor)))
        dx, dy, dw, dh = model.declaredBounds((x, y, w, h), (nw, nh), declared)
        sx, sy = nw / declared[0], nh / declared[1]
        if w >= sx and h >= sy:
            for px, py in [(dx, dy), (dx + dw - 1, dy + dh - 1), (dx + dw // 2, dy + dh // 2)]:
                cx, cy = geometry.toNative((px, py), declared, (nw, nh))
                self.assertTrue(x <= cx < x + w and y <= cy < y + h, (px, py, cx, cy))
        self.assertLessEqual(abs(dw - w / sx), 1)
        self.assertLessEqual(abs(dh - h / sy), 1)


BUTTON = AccessibleNode("1.5-3", "push button", "Press me", ("enabled", "showing"),
                        (201, 170, 400, 34), ("click",))
ENTRY = AccessibleNode("1.5-4", "text", "", ("editable",), (201, 214, 400, 34), ("activate",))
FRAME = AccessibleNode("1.5-1", "frame", "Editor", ("active",), (200, 150, 402, 225), (),
                       (AccessibleNode("1.5-2", "filler", "", (), (201, 170, 400, 200), (), (BUTTON, ENTRY)),))


class Routes(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.desktop.accessibleWindows[4194307] = FRAME

    def test_windowTree(self) -> None:
        code, body = self.request("GET", "accessibility?window=4194307")
        self.assertEqual(code, 200, body)
        self.assertEqual((body["id"], body["role"], body["name"]), ("1.5-1", "frame", "Editor"))
        button = body["children"][0]["children"][0]
        self.assertEqual(button, {"id": "1.5-3", "role": "push button", "name": "Press me",
                                  "states": ["enabled", "showing"], "bounds": [201, 170, 400, 34],
                                  "actions": ["click"], "children": []})
        self.assertEqual(self.desktop.log[-1], ("accessibilityTree", (4194307, 30, None)))
        code, hexed = self.request("GET", "accessibility?window=0x400003")
        self.assertEqual(hexed, body)

    def test_scaledDepthAndDesktop(self) -> None:
        code, body = self.request("GET", "accessibility?window=4194307&max_depth=1"
                                         "&scaled_width=960&scaled_height=540")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["bounds"], [100, 75, 201, 112])
        [filler] = body["children"]
        self.assertEqual((filler["children"], filler["truncated"]), ([], True))
        code, desktop = self.request("GET", "accessibility?max_depth=0")
        self.assertEqual((desktop["role"], desktop["bounds"], desktop["truncated"]),
                         ("desktop frame", [0, 0, 1920, 1080], True))
        code, sub = self.request("GET", "accessibility/1.5-2?scaled_width=960&scaled_height=540")
        self.assertEqual(code, 200, sub)
        self.assertEqual(sub["children"][0]["bounds"], [100, 85, 200, 17])

    def test_actions(self) -> None:
        code, body = self.request("POST", "accessibility/1.5-3", json.dumps({"action": "click"}).encode())
        self.assertEqual((code, body["id"], body["children"]), (200, "1.5-3", []))
        code, body = self.request("POST", "accessibility/1.5-4",
                                  json.dumps({"set_text": "héllo", "scaled_width": 960}).encode())
        self.assertEqual(code, 200, body)
        self.assertEqual(body["bounds"], [100, 214, 200, 34])
        self.assertEqual(self.desktop.nodeActions, [("1.5-3", "click", None), ("1.5-4", None, "héllo")])

    def test_badRequests(self) -> None:
        for method, path, raw, status, message in [
            ("GET", "accessibility?window=12", None, 404, "Window not found."),
            ("GET", "accessibility?window=x12", None, 400, "Invalid window: 'x12'"),
            ("GET", "accessibility?window=99999999999", None, 400, "Invalid window: '99999999999'"),
            ("GET", "accessibility?max_depth=1.5", None, 400, "Invalid max_depth: '1.5'"),
            ("GET", "accessibility?scaled_width=-3", None, 400, "Invalid scaled_width: '-3'"),
            ("GET", "accessibility/9.9-9", None, 404, "Accessibility node not found."),
            ("GET", "accessibility/1.5-3/more", None, 404, "Not found."),
            ("POST", "accessibility", b"{}", 405, "Method not allowed."),
            ("POST", "accessibility/1.5-3", b"[]", 400, "Failed to decode request body."),
            ("POST", "accessibility/1.5-3", b'{"action": "click", "set_text": "a"}', 400,
             "Send exactly one of action and set_text."),
            ("POST", "accessibility/1.5-3", b'{"action": ""}', 400, "Missing action."),
            ("POST", "accessibility/1.5-3", b'{"set_text": 5}', 400, "Failed to decode request body."),
            ("POST", "accessibility/1.5-3", b'{"action": "click", "x": 1}', 400, "Failed to decode request body."),
            ("POST", "accessibility/1.5-3", b'{"action": "click", "scaled_width": true}', 400,
             "Failed to decode request body."),
            ("POST", "accessibility/1.5-3", b'{"action": "fly"}', 400, "Invalid accessibility action."),
            ("POST", "accessibility/1.5-3", b'{"set_text": "a"}', 400, "Invalid accessibility action."),
            ("POST", "accessibility/1.5-99", b'{"action": "click"}', 404, "Accessibility node not found."),
        ]:
            code, body = self.request(method, path, raw)
            self.assertEqual((code, body["message"]), (status, message), (method, path, raw))
        self.assertEqual(self.desktop.nodeActions, [])

    def test_unavailable(self) -> None:
        self.desktop.accessibilityReason = "at-spi-bus-launcher was not found (Debian package at-spi2-core)"
        for method, path, raw in [("GET", "accessibility", None),
                                  ("POST", "accessibility/1.5-3", b'{"action": "click"}')]:
            code, body = self.request(method, path, raw)
            self.assertEqual(code, 503)
            self.assertEqual(body, {"message": "Accessibility is unavailable.",
                                    "detail": self.desktop.accessibilityReason})

    def test_desktopFailure(self) -> None:
        self.desktop.failing.add("accessibilityTree")
        code, body = self.request("GET", "accessibility")
        self.assertEqual((code, body["message"]), (500, "Accessibility request failed."))


class Stack(SynchronousTestCase):
    """The stack's process policy, with a fake reactor and worker."""

    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.worker = FakeAtspiWorker()
        self.dbus = fakeBinary(self, "dbus-daemon")
        self.launcherPath = fakeBinary(self, "at-spi-bus-launcher")
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.stack = AccessibilityStack(
            self.reactor, AccessibilityConfig(self.dbus, self.launcherPath), self.worker)
        self.env = {"DISPLAY": ":5", "NO_AT_BRIDGE": "1", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/theirs"}

    def bus(self) -> Any:
        return self.reactor.named(self.dbus)[-1]

    def launcher(self) -> Any:
        return self.reactor.named(self.launcherPath)[-1]

    def started(self) -> None:
        d = self.stack.start(self.dir, self.env)
        self.bus().output(3, b"unix:path=" + self.dir.encode() + b"/bus,guid=1\n")
        self.successResultOf(d)

    def test_start(self) -> None:
        self.started()
        self.assertTrue(self.stack.running)
        self.assertIsNone(self.stack.reason)
        bus, launcher = self.bus(), self.launcher()
        self.assertEqual(bus.command[1:], ["--session", "--nofork", "--print-address=3",
                                           f"--address=unix:path={self.dir}/bus"])
        self.assertEqual(bus.childFDs[3], "r")
        self.assertEqual(launcher.command[1:], ["--launch-immediately"])
        env = launcher.env
        # Without the guid: valid for a session bus restarted on that socket.
        self.assertEqual(env["DBUS_SESSION_BUS_ADDRESS"], unixAddress(f"{self.dir}/bus"))
        self.assertEqual(unixAddress("/run/a b/é-_.x"), "unix:path=/run/a%20b/%c3%a9-_.x")
        self.assertEqual((env["GSETTINGS_BACKEND"], env["XDG_RUNTIME_DIR"]), ("memory", self.dir))
        self.assertNotIn("NO_AT_BRIDGE", env)
        self.assertNotIn("DBUS_SESSION_BUS_ADDRESS", bus.env)
        self.assertEqual([c[0] for c in self.worker.calls], ["launcherReady", "enable"])

    def test_environment(self) -> None:
        env = desktopEnvironment({"A": "1", "NO_AT_BRIDGE": "1", "AT_SPI_BUS_ADDRESS": "x",
                                  "GTK_A11Y": "none"}, "unix:path=/b")
        self.assertEqual(env, {"A": "1", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/b",
                               "QT_ACCESSIBILITY": "1", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"})

    def test_missingBinary(self) -> None:
        stack = AccessibilityStack(self.reactor, AccessibilityConfig("/nonexistent/dbus-daemon"), self.worker)
        self.successResultOf(stack.start(self.dir, self.env))
        self.assertFalse(stack.running)
        self.assertEqual(stack.reason, "/nonexistent/dbus-daemon was not found (Debian package dbus-daemon)")
        self.assertEqual(self.reactor.spawned, [])
        self.assertIn("was not found", str(self.failureResultOf(stack.call(client.AtspiClient.tree)).value))

    def test_busExitsEarly(self) -> None:
        d = self.stack.start(self.dir, self.env)
        self.bus().output(2, b"Failed to start message bus: no config\n")
        self.bus().end(error.ProcessTerminated(1))
        self.successResultOf(d)
        self.assertEqual(self.stack.reason, "dbus-daemon exited: Failed to start message bus: no config")

    def test_launcherNeverReady(self) -> None:
        self.worker.launcherUp = False
        d = self.stack.start(self.dir, self.env)
        self.bus().output(3, b"unix:path=/b\n")
        self.reactor.pump([0.05] * 201)
        self.successResultOf(d)
        self.assertEqual(self.stack.reason, "at-spi-bus-launcher did not take org.a11y.Bus in time")
        self.assertEqual(self.launcher().signals, ["KILL"])
        # The session bus stays: programs on the desktop use it.
        self.assertFalse(self.bus().ended)

    def test_launcherCrashRestartsItAlone(self) -> None:
        self.started()
        first, bus = self.launcher(), self.bus()
        first.output(2, b"oops\n")
        first.end(error.ProcessTerminated(1))
        # Restarted at once, on the same session bus.
        self.assertIsNot(self.launcher(), first)
        self.assertIs(self.bus(), bus)
        self.assertTrue(self.stack.running)
        for _ in range(3):
            self.launcher().end(error.ProcessTerminated(1))
        # Not in a loop: the reason stays until a request restarts it.
        self.assertFalse(self.stack.running)
        self.assertEqual(self.stack.reason, "at-spi-bus-launcher exited: A process has ended with a probable error "
                                            "condition: process ended with exit code 1.")
        self.assertEqual(len(self.reactor.named(self.launcherPath)), 4)

    def test_stop(self) -> None:
        self.started()
        bus, launcher = self.bus(), self.launcher()
        d = self.stack.stop()
        self.assertEqual((bus.signals, launcher.signals), (["TERM"], ["TERM"]))
        self.successResultOf(d)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertFalse(self.stack.running)

    def test_stopWaitsForAnEarlierStop(self) -> None:
        """
        A second stop (the desktop's, after a stop it did not wait for when
        Xvnc died) fires only once the first one's children have exited.
        """
        self.reactor.dieOnSignal = False
        self.started()
        bus, launcher = self.bus(), self.launcher()
        self.stack.stop()
        d = self.stack.stop()
        self.assertNoResult(d)
        bus.end()
        self.assertNoResult(d)
        launcher.end()
        self.successResultOf(d)


class FakeBus(client.Bus):
    """
    Answers the client's calls from a table: object path -> node (role,
    name, children paths, interfaces), all on one connection C{:1.5};
    a path not in it is an unknown service.
    """

    def __init__(self, nodes: dict[str, tuple[str, str, list[str], list[str]]]) -> None:
        self.timeout = 0.5
        self.nodes = nodes
        self.rounds = 0
        self.silent: set[str] = set()
        self.done: list[tuple[str, str, tuple[Any, ...]]] = []

    def many(self, messages: list[Message], deadline: float | None = None) -> list[Any]:
        self.rounds += 1
        return [self.answer(m) for m in messages]

    def answer(self, message: Message) -> Any:
        fields = message.header.fields
        path, member = fields[HeaderFields.path], fields[HeaderFields.member]
        if path in self.silent:
            return None
        if path not in self.nodes:
            return client.Failed("org.freedesktop.DBus.Error.ServiceUnknown",
                                 f"The name {fields[HeaderFields.destination]} was not provided by any .service files")
        role, name, children, interfaces = self.nodes[path]
        if member in ("DoAction", "SetTextContents"):
            self.done.append((path, member, message.body))
            return (member == "DoAction",)
        if member == "Get":
            prop = message.body[1]
            return (("s", name),) if prop == "Name" else (("i", len(children)),)
        return {
            "GetRoleName": (role,),
            "GetState": ([1 << 25, 0],),
            "GetInterfaces": (interfaces,),
            "GetChildren": ([(":1.5", c) for c in children],),
            "GetExtents": ((10, 20, 30, 40),),
            "GetActions": ([("click", "", "")],),
        }[member]


P = "/org/a11y/atspi/accessible/"
ACC = [client.ACCESSIBLE]


class Walking(SynchronousTestCase):
    def tree(self, depth: int, bus: FakeBus, **limits: Any) -> AccessibleNode:
        return client.Walk(bus, client.Limits(depth, **limits)).run((":1.5", P + "1")).freeze()

    def nodes(self, fanout: int) -> dict[str, tuple[str, str, list[str], list[str]]]:
        kids = [P + str(10 + i) for i in range(fanout)]
        table = {P + "1": ("frame", "Win", kids, ACC + [client.COMPONENT])}
        for k in kids:
            table[k] = ("push button", "B" + k[-2:], [], ACC + [client.COMPONENT, client.ACTION])
        return table

    def test_levelsAndDetails(self) -> None:
        bus = FakeBus(self.nodes(3))
        tree = self.tree(5, bus)
        self.assertEqual((tree.id, tree.role, tree.name, tree.states), ("1.5-1", "frame", "Win", ("showing",)))
        self.assertEqual((tree.bounds, tree.actions), ((10, 20, 30, 40), ()))
        self.assertEqual([c.name for c in tree.children], ["B10", "B11", "B12"])
        self.assertEqual((tree.children[0].actions, tree.truncated), (("click",), False))
        # Two round trips a level (the node, then its bounds and actions).
        self.assertEqual(bus.rounds, 4)

    def test_depthLimit(self) -> None:
        tree = self.tree(0, FakeBus(self.nodes(3)))
        self.assertEqual((tree.children, tree.truncated), ((), True))

    def test_nodeLimit(self) -> None:
        tree = self.tree(5, FakeBus(self.nodes(300)), maxNodes=100)
        self.assertEqual((len(tree.children), tree.truncated), (99, True))

    def test_silentNodesAndDeadline(self) -> None:
        bus = FakeBus(self.nodes(3))
        bus.silent.add(P + "11")
        tree = self.tree(5, bus)
        self.assertEqual([c.name for c in tree.children], ["B10", "B12"])
        self.assertTrue(tree.truncated)
        tree = self.tree(5, FakeBus(self.nodes(3)), walkTimeout=0)
        self.assertEqual((tree.role, tree.children), ("", ()))


class Acting(SynchronousTestCase):
    def client(self, bus: FakeBus) -> client.AtspiClient:
        c = client.AtspiClient("unix:path=/nonexistent", 0.5)
        c.a11y = bus
        return c

    def test_registryMissing(self) -> None:
        c = self.client(FakeBus({}))
        e = self.assertRaises(AccessibilityUnavailable, c.tree, None, None, client.Limits(1))
        self.assertEqual(str(e), "the AT-SPI registry did not answer: The name org.a11y.atspi.Registry "
                                 "was not provided by any .service files")

    def test_actions(self) -> None:
        bus = FakeBus({P + "3": ("push button", "OK", [], ACC + [client.ACTION]),
                       P + "4": ("label", "Hi", [], ACC)})
        c = self.client(bus)
        node = c.act((":1.5", P + "3"), "CLICK", None)
        self.assertEqual((node.id, node.name, node.actions), ("1.5-3", "OK", ("click",)))
        self.assertEqual(bus.done, [(P + "3", "DoAction", (0,))])
        e = self.assertRaises(NodeActionError, c.act, (":1.5", P + "3"), "explode", None)
        self.assertEqual(str(e), "the node has no action 'explode'; its actions: 'click'")
        e = self.assertRaises(NodeActionError, c.act, (":1.5", P + "3"), None, "x")
        self.assertEqual(str(e), "the node has no editable text")
        e = self.assertRaises(NodeActionError, c.act, (":1.5", P + "4"), "click", None)
        self.assertEqual(str(e), "the node has no actions")
        self.assertRaises(UnknownNode, c.act, (":1.5", P + "99"), "click", None)
        self.assertEqual(len(bus.done), 1)
