"""
The accessibility routes (SPEC section 15):

  - C{GET /accessibility?window=<id>&max_depth=<n>&scaled_width=&scaled_height=}:
    the tree of one window, or of the whole desktop;
  - C{GET /accessibility/<node id>?max_depth=<n>}: the tree below one node;
  - C{POST /accessibility/<node id>} C{{"action": "<name>"}} or
    C{{"set_text": "..."}}: act on a node; answers the node afterwards.

Bounds are in the declared space the C{scaled_width}/C{scaled_height}
parameters give (query parameters for GET, body fields for POST).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import unquote

from twisted.web import resource, server

from agentdesktop import geometry
from agentdesktop.accessibility.model import nodeJSON
from agentdesktop.errors import (
    AccessibilityUnavailable,
    APIError,
    DesktopError,
    InaccessibleWindow,
    NodeActionError,
    UnknownNode,
    UnknownWindow,
    badRequest,
    decodeError,
)
from agentdesktop.interfaces import AccessibleNode, DesktopInfo
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import (
    CONTROLLED,
    NODE,
    SCALED,
    START_FAILED,
    Operation,
    Param,
    Response,
    Segment,
    integer,
    obj,
    string,
)
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop

T = TypeVar("T")

#: The depth a tree has when the request names none, and the most it may ask.
DEFAULT_DEPTH = 30
MAX_DEPTH = 100
#: The largest declared size.
MAX_DECLARED = 65535

UNAVAILABLE = "Accessibility is unavailable."

_DECIMAL = re.compile(r"\d{1,20}")
_HEX = re.compile(r"0[xX][0-9a-fA-F]{1,16}")
_POST_FIELDS = ("action", "set_text", "scaled_width", "scaled_height")

DEPTH = Param("max_depth", integer(f"Levels below the root (default {DEFAULT_DEPTH}).",
                                   minimum=0, maximum=MAX_DEPTH))
NODE_ID = Param("node_id", string("A node's id, from a tree this service answered."),
                where="path")
ERRORS = {
    404: "`Window not found.`, `Window has no accessibility tree.` or `Accessibility node not "
         "found.`",
    500: "`Accessibility request failed.`, or " + START_FAILED,
    503: "`Accessibility is unavailable.` (detail: why), or `Desktop API is shutting down.`",
}


def queryInt(call: Call, name: str, maximum: int, hexadecimal: bool = False) -> int | None:
    """
    The query parameter NAME as an integer in C{[0, MAXIMUM]}, or C{None}
    when absent.

    @raise APIError: 400 naming the parameter otherwise.
    """
    raw = call.arg(name)
    if raw is None or raw == "":
        return None
    if _DECIMAL.fullmatch(raw):
        value = int(raw)
    elif hexadecimal and _HEX.fullmatch(raw):
        value = int(raw, 16)
    else:
        kind = "a decimal or 0x-hexadecimal integer" if hexadecimal else "a non-negative integer"
        raise badRequest(f"Invalid {name}: {raw!r}", f"{name} must be {kind}.")
    if value > maximum:
        raise badRequest(f"Invalid {name}: {raw!r}", f"{name} is at most {maximum}.")
    return value


def declaredSize(info: DesktopInfo, width: int | None, height: int | None) -> tuple[int, int]:
    return geometry.declaredSize(info.size, width, height)


async def guard(work: Awaitable[T]) -> T:
    """WORK's result, with the desktop's accessibility errors as the API's."""
    try:
        return await work
    except AccessibilityUnavailable as e:
        raise APIError(503, UNAVAILABLE, str(e)) from None
    except UnknownWindow as e:
        raise APIError(404, "Window not found.", str(e)) from None
    except InaccessibleWindow as e:
        raise APIError(404, "Window has no accessibility tree.", str(e)) from None
    except UnknownNode as e:
        raise APIError(404, "Accessibility node not found.", str(e)) from None
    except NodeActionError as e:
        raise APIError(400, "Invalid accessibility action.", str(e)) from None
    except DesktopError as e:
        raise APIError(500, "Accessibility request failed.", str(e)) from None


def _depth(call: Call) -> int:
    depth = queryInt(call, "max_depth", MAX_DEPTH)
    return DEFAULT_DEPTH if depth is None else depth


def _answer(node: AccessibleNode, info: DesktopInfo, width: int | None, height: int | None) -> Any:
    return nodeJSON(node, info.size, declaredSize(info, width, height))


class AccessibilityEndpoint(Endpoint):
    """C{GET /accessibility}: a window's tree, or the whole desktop's."""

    isLeaf = False
    below = {"{node_id}": Segment(b"1.7-3", NODE_ID)}
    api = {"GET": Operation(
        "accessibilityTree", "A window's accessibility tree, or the whole desktop's",
        tags=["accessibility"],
        query=(Param("window", string("An X window id (decimal or 0x-hexadecimal); absent: "
                                      "every application.",
                                      pattern=r"^(?:[0-9]{1,20}|0[xX][0-9a-fA-F]{1,16})$")),
               DEPTH, *SCALED),
        responses={200: Response("The tree, bounds in declared space.", NODE), **ERRORS},
    )}

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        if path == b"":
            return self
        return NodeEndpoint(self.state, unquote(path.decode("utf-8", "replace")))

    async def handle_GET(self, call: Call) -> Any:
        call.action = "accessibility"
        window = queryInt(call, "window", 2**32 - 1, hexadecimal=True)
        depth = _depth(call)
        width = queryInt(call, "scaled_width", MAX_DECLARED)
        height = queryInt(call, "scaled_height", MAX_DECLARED)
        return await accessibilityTree(self.state, window, depth, width, height)


async def accessibilityTree(
    state: ServiceState, window: int | None, depth: int, width: int | None, height: int | None
) -> Any:
    """WINDOW's tree (the desktop's when C{None}), bounds in the declared space."""
    info = await ensureDesktop(state)
    node = await guard(state.desktop.accessibilityTree(window, depth, None))
    return _answer(node, info, width, height)


class NodeEndpoint(Endpoint):
    """C{GET|POST /accessibility/<node id>}: one node's tree, or an action on it."""

    api = {
        "GET": Operation(
            "accessibilityNode", "The tree below one node", tags=["accessibility"],
            query=(DEPTH, *SCALED),
            responses={200: Response("The tree, bounds in declared space.", NODE), **ERRORS},
        ),
        "POST": Operation(
            "accessibilityAction", "Do a node's action, or set its text", tags=["accessibility"],
            body=dict(obj({
                "action": string("One of the node's actions, e.g. click.", minLength=1),
                "set_text": string("The text to give an editable node."),
                "scaled_width": integer(minimum=0, maximum=MAX_DECLARED),
                "scaled_height": integer(minimum=0, maximum=MAX_DECLARED),
            }, closed=True, description="Exactly one of action and set_text."),
                oneOf=[{"required": ["action"]}, {"required": ["set_text"]}]),
            responses={200: Response("The node afterwards (no children).", NODE),
                       400: "The request is wrong, or `Invalid accessibility action.` (the "
                            "node offers no such action, or has no editable text).",
                       409: CONTROLLED, **ERRORS},
        ),
    }

    def __init__(self, state: Any, nodeId: str) -> None:
        super().__init__(state)
        self.nodeId = nodeId

    def _only(self, call: Call) -> None:
        if call.request.postpath:
            path = call.request.path.decode("ascii", "replace")
            raise APIError(404, "Not found.", f"No resource at {path}.")

    async def handle_GET(self, call: Call) -> Any:
        call.action = "accessibility"
        self._only(call)
        depth = _depth(call)
        width = queryInt(call, "scaled_width", MAX_DECLARED)
        height = queryInt(call, "scaled_height", MAX_DECLARED)
        info = await ensureDesktop(self.state)
        node = await guard(self.state.desktop.accessibilityTree(None, depth, self.nodeId))
        return _answer(node, info, width, height)

    async def handle_POST(self, call: Call) -> Any:
        call.action = "accessibility_action"
        self._only(call)
        if self.state.recorder is not None:
            self.state.recorder.activity()
        action, text, width, height = decodeNodeRequest(call.json())
        info = await ensureDesktop(self.state)
        # Pressing a button is agent input: one at a time, and not while a
        # person holds control.
        async with self.state.runner.exclusive():
            node = await guard(self.state.desktop.accessibilityAction(self.nodeId, action, text))
        return _answer(node, info, width, height)


def decodeNodeRequest(body: dict[str, Any]) -> tuple[str | None, str | None, int | None, int | None]:
    """
    C{(action, set_text, scaled_width, scaled_height)} from the body of
    C{POST /accessibility/<node id>}: exactly one of C{action} (a
    non-empty string) and C{set_text} (a string).

    @raise APIError: 400 saying what to fix.
    """
    for key in body:
        if key not in _POST_FIELDS:
            raise decodeError(f'unknown field "{key}"; send "action" or "set_text"')
    action, text = body.get("action"), body.get("set_text")
    if action is not None and not isinstance(action, str):
        raise decodeError('field "action" must be a string')
    if text is not None and not isinstance(text, str):
        raise decodeError('field "set_text" must be a string')
    if (action is None) == (text is None):
        raise badRequest(
            "Send exactly one of action and set_text.",
            'e.g. {"action": "click"} or {"set_text": "hello"}; a node\'s actions are in its "actions".',
        )
    if action == "":
        raise badRequest("Missing action.", "action names one of the node's actions.")
    sizes = []
    for name in ("scaled_width", "scaled_height"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_DECLARED):
            raise decodeError(f'field "{name}" must be an integer between 0 and {MAX_DECLARED}')
        sizes.append(value)
    return action, text, sizes[0], sizes[1]
