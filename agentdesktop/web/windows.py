"""
C{/api/v0/desktop/windows}: the managed windows (C{GET}, geometry in the
declared space of C{?scaled_width=&scaled_height=}), one window
(C{GET /windows/<id>}), and what the window manager is asked to do with it
(C{POST /windows/<id>/focus|close|minimize|maximize|restore}).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from twisted.web import resource, server

from agentdesktop import geometry
from agentdesktop.errors import APIError, DesktopError, UnknownWindow, decodeError
from agentdesktop.interfaces import WINDOW_VERBS, WindowInfo
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import (
    CONTROLLED,
    SCALED,
    START_FAILED,
    WINDOW,
    Operation,
    Param,
    Response,
    Segment,
    nullable,
    obj,
    string,
)
from agentdesktop.web.resource import Call, Endpoint, NotFound, ensureDesktop

_WINDOW_ID = re.compile(r"^(?:[0-9]{1,10}|0[xX][0-9a-fA-F]{1,8})$")

WINDOW_ID = Param("window_id", string(
    "The X window id of a managed window (as GET /windows lists it), decimal or 0x-hexadecimal.",
    pattern=_WINDOW_ID.pattern), where="path")

UNKNOWN = "`Window not found.` (no managed window has this id), or `Not found.` (not a window id)."


def parseWindowId(segment: bytes) -> int | None:
    """A window id from a path segment (decimal, or hex with C{0x}), or C{None}."""
    text = segment.decode("ascii", "replace")
    if not _WINDOW_ID.match(text):
        return None
    value = int(text, 16) if text[:2].lower() == "0x" else int(text)
    return value if 0 < value < 2**32 else None


def queryInt(call: Call, name: str) -> int | None:
    """The integer query parameter NAME, or C{None}; 400 when it is not an integer."""
    value = call.arg(name)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"-?[0-9]{1,9}", value):
        raise decodeError(f'query parameter "{name}" must be an integer, got {value!r}')
    return int(value)


def windowJSON(
    window: WindowInfo, native: tuple[int, int], declared: tuple[int, int]
) -> dict[str, Any]:
    """A window as the API shows it, its rectangle in DECLARED space."""
    x, y, w, h = geometry.rectToDeclared(
        (window.x, window.y, window.width, window.height), native, declared
    )
    return {
        "id": window.id,
        "title": window.title,
        "class": window.windowClass,
        "pid": window.pid,
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "focused": window.focused,
        "minimized": window.minimized,
        "maximized": window.maximized,
    }


async def _space(state: ServiceState, call: Call) -> tuple[tuple[int, int], tuple[int, int]]:
    """The native size and the declared size the query asks for."""
    scaledWidth, scaledHeight = queryInt(call, "scaled_width"), queryInt(call, "scaled_height")
    info = await ensureDesktop(state)
    return info.size, geometry.declaredSize(info.size, scaledWidth, scaledHeight)


def _unknown(windowId: int) -> APIError:
    return APIError(
        404, "Window not found.",
        f"No managed window has id {windowId}; GET /api/v0/desktop/windows lists them.",
    )


class _Branch(Endpoint):
    """An endpoint with children; an unknown child is a JSON 404."""

    isLeaf = False

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return NotFound(self.state)


class WindowVerbEndpoint(_Branch):
    """C{POST /windows/<id>/<verb>} → C{{"window": <after> | null}}."""

    api = {"POST": Operation(
        "windowAction", "Ask the window manager to act on a window", tags=["beyond pixels"],
        query=SCALED,
        responses={
            200: Response("The window afterwards (null once closed), in declared space.",
                          obj({"window": nullable(WINDOW)}, ["window"], closed=True)),
            404: UNKNOWN,
            409: CONTROLLED,
            500: "`Window action failed.`, or " + START_FAILED,
        },
    )}

    def __init__(self, state: ServiceState, windowId: int, verb: str) -> None:
        super().__init__(state)
        self.windowId = windowId
        self.verb = verb

    def operations(self) -> Mapping[str, Operation]:
        what = {"restore": "restore (un-minimize and un-maximize)"}.get(self.verb, self.verb)
        return {"POST": replace(self.api["POST"], operationId=f"window_{self.verb}",
                                summary=f"Ask the window manager to {what} a window")}

    async def handle_POST(self, call: Call) -> Any:
        call.action = f"windows/{self.verb}"
        native, declared = await _space(self.state, call)
        return await windowVerb(self.state, self.windowId, self.verb, native, declared)


async def windowVerb(
    state: ServiceState, windowId: int, verb: str, native: tuple[int, int],
    declared: tuple[int, int],
) -> dict[str, Any]:
    """C{{"window": <after> | None}}: agent input (the lease applies)."""
    try:
        async with state.runner.exclusive():
            after = await state.desktop.windowAction(windowId, verb)
    except UnknownWindow:
        raise _unknown(windowId) from None
    except DesktopError as e:
        raise APIError(500, "Window action failed.", str(e)) from None
    return {"window": None if after is None else windowJSON(after, native, declared)}


class WindowEndpoint(_Branch):
    """C{GET /windows/<id>}: that window; its children are the verbs."""

    below = {verb: Segment(verb.encode("ascii")) for verb in WINDOW_VERBS}
    api = {"GET": Operation(
        "window", "One window", tags=["beyond pixels"], query=SCALED,
        responses={200: Response("The window, in declared space.", WINDOW), 404: UNKNOWN,
                   500: "`Failed to list windows.`, or " + START_FAILED},
    )}

    def __init__(self, state: ServiceState, windowId: int) -> None:
        super().__init__(state)
        self.windowId = windowId

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        verb = path.decode("ascii", "replace")
        if verb in WINDOW_VERBS:
            return WindowVerbEndpoint(self.state, self.windowId, verb)
        return NotFound(self.state)

    async def handle_GET(self, call: Call) -> Any:
        call.action = "windows/get"
        native, declared = await _space(self.state, call)
        for window in await _list(self.state):
            if window.id == self.windowId:
                return windowJSON(window, native, declared)
        raise _unknown(self.windowId)


async def _list(state: ServiceState) -> list[WindowInfo]:
    try:
        return await state.desktop.windows()
    except DesktopError as e:
        raise APIError(500, "Failed to list windows.", str(e)) from None


class WindowsEndpoint(_Branch):
    """C{GET /windows} → C{{"windows": [...]}}; C{/windows/<id>} below it."""

    below = {"{window_id}": Segment(b"4194316", WINDOW_ID)}
    api = {"GET": Operation(
        "windows", "The managed windows, in the window manager's order", tags=["beyond pixels"],
        query=SCALED,
        responses={
            200: Response("Every managed top-level window, in declared space.", obj(
                {"windows": {"type": "array", "items": WINDOW}}, ["windows"], closed=True)),
            500: "`Failed to list windows.`, or " + START_FAILED,
        },
    )}

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        if path == b"":
            return self
        windowId = parseWindowId(path)
        if windowId is None:
            return NotFound(self.state)
        return WindowEndpoint(self.state, windowId)

    async def handle_GET(self, call: Call) -> Any:
        call.action = "windows/list"
        native, declared = await _space(self.state, call)
        return await listWindows(self.state, native, declared)


async def listWindows(
    state: ServiceState, native: tuple[int, int], declared: tuple[int, int]
) -> dict[str, Any]:
    """C{{"windows": [...]}}, rectangles in DECLARED space."""
    return {"windows": [windowJSON(w, native, declared) for w in await _list(state)]}
