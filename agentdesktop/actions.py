"""
Performs one C{/action} request on an L{IDesktop}: validation (400s),
geometry, serialization of input, timing of holds and waits, and mapping
of desktop failures to the spec's 500 messages.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from agentdesktop import geometry
from agentdesktop.errors import APIError, DesktopError, badRequest
from agentdesktop.interfaces import IDesktop
from agentdesktop.keys import UnknownKey, parseCombo, parseKeys
from agentdesktop.request import ActionRequest

log = Logger()

MAX_DURATION_MS = 60_000
MAX_SCROLL_AMOUNT = 1000
MAX_IMAGE_SIDE = 8192

_CLICKS = {
    "left_click": (1, 1, "Left click failed."),
    "right_click": (3, 1, "Right click failed."),
    "middle_click": (2, 1, "Middle click failed."),
    "double_click": (1, 2, "Double click failed."),
    "triple_click": (1, 3, "Triple click failed."),
}
_SCROLL_BUTTONS = {"up": 4, "down": 5, "left": 6, "right": 7}
_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}


def _unknownKey(e: UnknownKey) -> APIError:
    return badRequest(
        f'Unknown key name: "{e.name}".',
        "Use an X keysym or a common name, e.g. Return, ctrl+shift+t, PageUp, F5.",
    )


def _checkTypeable(text: str) -> None:
    for i, ch in enumerate(text):
        if ch in "\n\r\t":
            continue
        if ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            raise badRequest(
                'Invalid "text" for type action.',
                f"character U+{ord(ch):04X} at index {i} cannot be typed",
            )


class ActionRunner:
    """
    Runs actions against DESKTOP.  Input actions hold one lock so that two
    requests never interleave their steps.
    """

    def __init__(self, desktop: IDesktop, clock: IReactorTime) -> None:
        self.desktop = desktop
        self.clock = clock
        self.lock = defer.DeferredLock()
        self._sleeps: set[defer.Deferred[None]] = set()

    def close(self) -> None:
        """Cut every hold and wait short (their keys are then released)."""
        for d in list(self._sleeps):
            d.cancel()

    async def _sleep(self, ms: int, cancelled: defer.Deferred[Any] | None) -> None:
        d: defer.Deferred[None] = defer.Deferred()
        call = self.clock.callLater(ms / 1000.0, d.callback, None)

        def finished(result: Any) -> None:
            if call.active():
                call.cancel()
            self._sleeps.discard(d)
            if isinstance(result, Failure):
                result.trap(defer.CancelledError)

        d.addBoth(finished)
        self._sleeps.add(d)
        if cancelled is not None:
            cancelled.addErrback(lambda _: None if d.called else d.cancel())
        await d

    async def _input(
        self, failMessage: str, step: Callable[[], Awaitable[Any]], release: bool = True
    ) -> Any:
        """Run STEP under the input lock; map failures to FAILMESSAGE."""
        await self.lock.acquire()
        try:
            return await step()
        except DesktopError as e:
            if release:
                await self._releaseAll()
            raise APIError(500, failMessage, str(e)) from None
        finally:
            self.lock.release()

    async def _releaseAll(self) -> None:
        try:
            await self.desktop.releaseAll()
        except Exception:
            log.failure("Releasing keys and buttons after a failure failed")

    async def run(
        self,
        req: ActionRequest,
        native: tuple[int, int],
        disconnected: defer.Deferred[Any] | None = None,
    ) -> dict[str, Any]:
        """
        Perform REQ.

        @param native: the screen's native size.
        @param disconnected: errbacks if the client goes away; cuts holds
            and waits short.
        @return: the response body.
        @raise APIError: for a bad request (400) or a failure (500).
        """
        action = req.action or ""
        declared = geometry.declaredSize(native, req.scaled_width, req.scaled_height)

        def point(c: tuple[int, int] | None) -> tuple[int, int]:
            assert c is not None
            return geometry.toNative(c, declared, native)

        def done() -> dict[str, Any]:
            return {"output": f"{action} action performed"}

        d = self.desktop
        if action in ("key", "key_down", "key_up", "hold_key", "type"):
            if not req.text:
                raise badRequest(f'Missing "text" for {action} action.')
        if action == "key":
            combos = self._keys(req.text)
            await self._input("Key press failed.", lambda: d.keys(combos))
            return done()
        if action in ("key_down", "key_up"):
            combo = self._combo(req.text)
            if action == "key_down":
                await self._input("Key down failed.", lambda: d.keyDown(combo))
            else:
                await self._input("Key up failed.", lambda: d.keyUp(combo))
            return done()
        if action == "hold_key":
            combo = self._combo(req.text)
            duration = 1000 if req.duration is None else req.duration
            self._checkDuration(duration)
            await self.lock.acquire()
            try:
                try:
                    await d.keyDown(combo)
                except DesktopError as e:
                    await self._releaseAll()
                    raise APIError(500, "Key down failed.", str(e)) from None
                try:
                    await self._sleep(duration, disconnected)
                finally:
                    try:
                        await d.keyUp(combo)
                    except DesktopError as e:
                        await self._releaseAll()
                        raise APIError(500, "Key up failed.", str(e)) from None
            finally:
                self.lock.release()
            return done()
        if action == "type":
            assert req.text is not None
            _checkTypeable(req.text)
            text = req.text
            await self._input("Type action failed.", lambda: d.typeText(text))
            return done()
        if action == "cursor_position":
            try:
                x, y = await d.pointer()
            except DesktopError as e:
                raise APIError(500, "Cursor position failed.", str(e)) from None
            dx, dy = geometry.toDeclared((x, y), native, declared)
            return {"output": f"x={dx},y={dy}"}
        if action == "mouse_move":
            if req.coordinate is None:
                raise badRequest('Missing "coordinate" for mouse_move action.')
            x, y = point(req.coordinate)
            await self._input("Mouse move failed.", lambda: d.move(x, y))
            return done()
        if action in _CLICKS:
            button, count, failMessage = _CLICKS[action]
            if req.coordinate is None:
                raise badRequest(f'Missing "coordinate" for {action} action.')
            x, y = point(req.coordinate)
            mods = self._modifiers(req)
            await self._input(failMessage, lambda: d.click(x, y, button, count, mods))
            return done()
        if action == "left_click_drag":
            if req.coordinate is None or req.start_coordinate is None:
                raise badRequest(
                    'Missing "coordinate" or "start_coordinate" for left_click_drag.'
                )
            start, end = point(req.start_coordinate), point(req.coordinate)
            await self._input("Left click drag failed.", lambda: d.drag(start, end))
            return done()
        if action in ("left_mouse_down", "left_mouse_up"):
            target = point(req.coordinate) if req.coordinate is not None else None
            down = action == "left_mouse_down"

            async def press() -> None:
                if target is not None:
                    await d.move(*target)
                await (d.buttonDown(1) if down else d.buttonUp(1))

            await self._input(
                "Left mouse down failed." if down else "Left mouse up failed.", press
            )
            return done()
        if action == "scroll":
            if req.coordinate is None:
                raise badRequest('Missing "coordinate" for scroll action.')
            direction = "down" if req.scroll_direction is None else req.scroll_direction
            if direction not in _SCROLL_BUTTONS:
                raise badRequest(
                    f"Invalid scroll direction: {direction}",
                    "scroll_direction must be one of up, down, left, right.",
                )
            amount = 3 if req.scroll_amount is None else req.scroll_amount
            if not 0 <= amount <= MAX_SCROLL_AMOUNT:
                raise badRequest(
                    f"Invalid scroll amount: {amount}",
                    f"scroll_amount must be between 0 and {MAX_SCROLL_AMOUNT}.",
                )
            x, y = point(req.coordinate)
            mods = self._modifiers(req)
            button = _SCROLL_BUTTONS[direction]
            if amount == 0:
                await self._input("Scroll failed.", lambda: d.move(x, y))
            else:
                await self._input(
                    "Scroll failed.", lambda: d.click(x, y, button, amount, mods)
                )
            return done()
        if action == "screenshot":
            fmt, quality = self._format(req)
            return await self._image(None, declared, fmt, quality, "screenshot")
        if action == "zoom":
            if req.region is None:
                raise badRequest('Missing "region" for zoom action.')
            x0, y0, x1, y1 = req.region
            if x1 <= x0 or y1 <= y0:
                raise badRequest(
                    'Invalid "region" for zoom action.',
                    "region is [x0, y0, x1, y1] with x1 > x0 and y1 > y0.",
                )
            nx0, ny0 = point((x0, y0))
            nx1, ny1 = point((x1 - 1, y1 - 1))
            box = (nx0, ny0, nx1 + 1, ny1 + 1)
            size = geometry.fitInside((box[2] - box[0], box[3] - box[1]), declared)
            fmt, quality = self._format(req)
            return await self._image(box, size, fmt, quality, "zoom")
        if action == "wait":
            duration = 1000 if req.duration is None else req.duration
            self._checkDuration(duration)
            await self._sleep(duration, disconnected)
            return done()
        raise badRequest(f"Unknown action: {action}")

    async def _image(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        fmt: str,
        quality: int | None,
        output: str,
    ) -> dict[str, Any]:
        if max(size) > MAX_IMAGE_SIDE:
            raise badRequest(
                f"Invalid image size: {size[0]}x{size[1]}",
                f"scaled_width and scaled_height are at most {MAX_IMAGE_SIDE} for images.",
            )
        try:
            data = await self.desktop.screenshot(region, size, fmt, quality)
        except DesktopError as e:
            raise APIError(500, "Screenshot failed.", str(e)) from None
        body: dict[str, Any] = {
            "output": output,
            "screenshot_data": base64.b64encode(data).decode("ascii"),
            "screenshot_width": size[0],
            "screenshot_height": size[1],
        }
        if fmt != "png":
            body["screenshot_format"] = fmt
        return body

    @staticmethod
    def _keys(text: str | None) -> list[list[str]]:
        try:
            return parseKeys(text or "")
        except UnknownKey as e:
            raise _unknownKey(e) from None

    @staticmethod
    def _combo(text: str | None) -> list[str]:
        combos = ActionRunner._keys(text)
        return [k for combo in combos for k in combo]

    @staticmethod
    def _modifiers(req: ActionRequest) -> list[str]:
        text = req.text if req.text else req.key
        if not text:
            return []
        try:
            return parseCombo(text.strip())
        except UnknownKey as e:
            raise _unknownKey(e) from None

    @staticmethod
    def _checkDuration(duration: int) -> None:
        if not 0 <= duration <= MAX_DURATION_MS:
            raise badRequest(
                f"Invalid duration: {duration}",
                f"duration is in milliseconds, between 0 and {MAX_DURATION_MS}.",
            )

    @staticmethod
    def _format(req: ActionRequest) -> tuple[str, int | None]:
        fmt = _FORMATS.get((req.format or "png").lower())
        if fmt is None:
            raise badRequest(
                f"Invalid screenshot format: {req.format}",
                "format must be png, jpeg or webp.",
            )
        if req.quality is not None and not 1 <= req.quality <= 100:
            raise badRequest(
                f"Invalid quality: {req.quality}", "quality must be between 1 and 100."
            )
        return fmt, req.quality
