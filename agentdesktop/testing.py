"""
Test doubles that implement this package's interfaces (verified against
them in the tests).  They model state, not calls: a fake desktop knows where
its pointer is and which keys and buttons are down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from agentdesktop.desktop import DesktopInfo
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import IDesktop


@implementer(IDesktop)
class FakeDesktop:
    """
    An in-memory desktop.

    @ivar failing: names of methods that fail with L{DesktopError}.
    @ivar pressedKeys: keysyms currently held.
    @ivar pressedButtons: buttons currently held.
    @ivar log: C{(method, args)} for every call, in order.
    """

    def __init__(self, width: int = 1920, height: int = 1080) -> None:
        self.info = DesktopInfo(":99", "/nonexistent/Xauthority", "/nonexistent/rfb", width, height)
        self.running = False
        self.failing: set[str] = set()
        self.pointerAt = (0, 0)
        self.pressedKeys: list[str] = []
        self.pressedButtons: set[int] = set()
        self.typed = ""
        self.clicks: list[tuple[int, int, int, int, tuple[str, ...]]] = []
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.stopped = False

    def _call(self, name: str, *args: Any) -> None:
        self.log.append((name, args))
        if name in self.failing:
            raise DesktopError(f"{name} failed on purpose")

    def _do(self, name: str, *args: Any) -> defer.Deferred[Any]:
        try:
            self._call(name, *args)
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(None)

    def start(self) -> defer.Deferred[DesktopInfo]:
        if "start" in self.failing:
            return defer.fail(DesktopError("Xvnc exited before its display was ready"))
        self.running = True
        return defer.succeed(self.info)

    def stop(self) -> defer.Deferred[None]:
        self.stopped = True
        self.running = False
        return self.releaseAll()

    def move(self, x: int, y: int) -> defer.Deferred[None]:
        d = self._do("move", x, y)
        if not d.called or d.result is None:
            self.pointerAt = (x, y)
        return d

    def click(
        self, x: int, y: int, button: int, count: int, modifiers: Sequence[str]
    ) -> defer.Deferred[None]:
        self.pointerAt = (x, y)
        d = self._do("click", x, y, button, count, tuple(modifiers))
        if d.result is None:
            self.clicks.append((x, y, button, count, tuple(modifiers)))
        return d

    def buttonDown(self, button: int) -> defer.Deferred[None]:
        d = self._do("buttonDown", button)
        if d.result is None:
            self.pressedButtons.add(button)
        return d

    def buttonUp(self, button: int) -> defer.Deferred[None]:
        d = self._do("buttonUp", button)
        if d.result is None:
            self.pressedButtons.discard(button)
        return d

    def drag(self, start: tuple[int, int], end: tuple[int, int]) -> defer.Deferred[None]:
        self.pointerAt = end
        return self._do("drag", start, end)

    def keys(self, combos: Sequence[Sequence[str]]) -> defer.Deferred[None]:
        return self._do("keys", tuple(tuple(c) for c in combos))

    def keyDown(self, combo: Sequence[str]) -> defer.Deferred[None]:
        d = self._do("keyDown", tuple(combo))
        if d.result is None:
            self.pressedKeys.extend(combo)
        return d

    def keyUp(self, combo: Sequence[str]) -> defer.Deferred[None]:
        d = self._do("keyUp", tuple(combo))
        if d.result is None:
            for k in combo:
                if k in self.pressedKeys:
                    self.pressedKeys.remove(k)
        return d

    def typeText(self, text: str) -> defer.Deferred[None]:
        d = self._do("typeText", text)
        if d.result is None:
            self.typed += text
        return d

    def pointer(self) -> defer.Deferred[tuple[int, int]]:
        try:
            self._call("pointer")
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(self.pointerAt)

    def screenshot(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        format: str,
        quality: int | None,
    ) -> defer.Deferred[bytes]:
        try:
            self._call("screenshot", region, size, format, quality)
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(f"{format}:{size[0]}x{size[1]}:{region}".encode())

    def releaseAll(self) -> defer.Deferred[None]:
        self.log.append(("releaseAll", ()))
        self.pressedKeys.clear()
        self.pressedButtons.clear()
        return defer.succeed(None)
