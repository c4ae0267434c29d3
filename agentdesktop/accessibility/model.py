"""
The pure parts of accessibility: AT-SPI state names, node ids, matching an
X window to the accessible that draws it, and the JSON shape of a node.
No reactor, no D-Bus.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentdesktop.errors import UnknownNode
from agentdesktop.interfaces import AccessibleNode

#: The registry's well-known name and the root of the whole desktop.
REGISTRY = "org.a11y.atspi.Registry"
ROOT_PATH = "/org/a11y/atspi/accessible/root"
ACCESSIBLE_PREFIX = "/org/a11y/atspi/accessible/"
NULL_PATH = "/org/a11y/atspi/null"

#: AtspiStateType, in enum order (bit N of GetState's bit field), named as
#: libatspi's GEnum nicknames name them.
STATE_NAMES: tuple[str, ...] = (
    "invalid", "active", "armed", "busy", "checked", "collapsed", "defunct",
    "editable", "enabled", "expandable", "expanded", "focusable", "focused",
    "has-tooltip", "horizontal", "iconified", "modal", "multi-line",
    "multiselectable", "opaque", "pressed", "resizable", "selectable",
    "selected", "sensitive", "showing", "single-line", "stale", "transient",
    "vertical", "visible", "manages-descendants", "indeterminate", "required",
    "truncated", "animated", "invalid-entry", "supports-autocompletion",
    "selectable-text", "is-default", "visited", "checkable", "has-popup",
    "read-only",
)

_INT32_MIN = -(2**31)

_UNIQUE = re.compile(r":\d+\.\d+")
_WELL_KNOWN = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+")
_PATH = re.compile(r"/|(/[A-Za-z0-9_]+)+")
_SHORT_ID = re.compile(r"(\d+\.\d+)-([A-Za-z0-9_]+)")
_LONG_ID = re.compile(r"~([A-Za-z0-9_-]+)")


def stateNames(words: Sequence[int]) -> list[str]:
    """
    The names of the states set in GetState's bit field (32 bits a word,
    least significant first); unknown bits are named C{"state-N"}.
    """
    names = []
    for w, word in enumerate(words):
        for bit in range(32):
            if word & (1 << bit):
                n = w * 32 + bit
                names.append(STATE_NAMES[n] if n < len(STATE_NAMES) else f"state-{n}")
    return names


def encodeNodeId(bus: str, path: str) -> str:
    """
    An opaque, URL-safe id for the accessible at PATH of the connection
    BUS: short (C{"1.42-17"}) for an application's usual paths, else
    C{"~"} and URL-safe base64.
    """
    if _UNIQUE.fullmatch(bus) and path.startswith(ACCESSIBLE_PREFIX):
        rest = path[len(ACCESSIBLE_PREFIX):]
        if re.fullmatch(r"[A-Za-z0-9_]+", rest):
            return f"{bus[1:]}-{rest}"
    raw = f"{bus}\n{path}".encode()
    return "~" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decodeNodeId(nodeId: str) -> tuple[str, str]:
    """
    The bus name and object path of NODEID.

    @raise UnknownNode: when it is no id this service made.
    """
    short = _SHORT_ID.fullmatch(nodeId)
    if short:
        return ":" + short.group(1), ACCESSIBLE_PREFIX + short.group(2)
    long = _LONG_ID.fullmatch(nodeId)
    if long:
        data = long.group(1)
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raw = ""
        bus, _, path = raw.partition("\n")
        if (_UNIQUE.fullmatch(bus) or _WELL_KNOWN.fullmatch(bus)) and _PATH.fullmatch(path):
            return bus, path
    raise UnknownNode(f"{nodeId!r} is not a node id; take ids from GET /accessibility")


def screenBounds(extents: Sequence[int] | None) -> tuple[int, int, int, int] | None:
    """GetExtents' answer as bounds, or C{None} when the node is not on screen."""
    if extents is None or len(extents) != 4:
        return None
    x, y, w, h = (int(v) for v in extents)
    if w <= 0 or h <= 0 or _INT32_MIN in (x, y):
        return None
    return x, y, w, h


@dataclass(frozen=True)
class WindowTarget:
    """
    What the X server says about a client window: its process (from
    C{_NET_WM_PID}, if set), title, and rectangle on screen (without
    decorations).
    """

    windowId: int
    pid: int | None
    title: str
    rect: tuple[int, int, int, int]


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The area of A ∩ B over the area of A ∪ B (0 when they are apart)."""
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def pickToplevel(
    target: WindowTarget,
    candidates: Sequence[tuple[str, tuple[int, int, int, int] | None]],
    sameProcess: bool,
) -> int | None:
    """
    Which of the CANDIDATES (each a top-level accessible's name and
    bounds) draws TARGET: the best overlap with the window's rectangle, a
    matching title counting as much as a perfect overlap.

    @param sameProcess: whether the candidates belong to the window's own
        process; then any overlap or title will do, and a lone candidate is
        taken.  Otherwise (the window names no process) the match must be
        close: the title and some overlap, or nearly the same rectangle.
    @return: the index of the match, or C{None}.
    """
    best, bestScore = None, 0.0
    for i, (name, bounds) in enumerate(candidates):
        score = overlap(target.rect, bounds) if bounds is not None else 0.0
        if target.title and name == target.title:
            score += 1.0
        if score > bestScore:
            best, bestScore = i, score
    if not sameProcess:
        return best if bestScore >= 0.8 else None
    if best is None and len(candidates) == 1:
        return 0
    return best


def actionIndex(names: Sequence[str], wanted: str) -> int | None:
    """
    The index of the action WANTED among NAMES: the exact name, else the
    one name equal to it ignoring case (toolkits differ: C{"click"},
    C{"Click"}).
    """
    if wanted in names:
        return list(names).index(wanted)
    folded = [i for i, n in enumerate(names) if n.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def _firstInside(edge: int, native: int, declared: int) -> int:
    """
    The first declared coordinate that L{geometry.scale} maps to a native
    coordinate at or past EDGE: the least d with d >= edge * declared /
    native - 1/2 (exact integer arithmetic).
    """
    numerator = 2 * edge * declared - native
    return -(-numerator // (2 * native))


def declaredBounds(
    bounds: tuple[int, int, int, int], native: tuple[int, int], declared: tuple[int, int]
) -> list[int]:
    """
    Native bounds in declared space: the declared pixels that map (as
    C{/action} maps them) into the native bounds, so that a click anywhere
    in them, the centre included, lands on the node.  At least one pixel
    wide and high (a node smaller than a declared pixel); not clamped to
    the screen (a node may reach past it).
    """
    if native == declared:
        return list(bounds)
    x, y, w, h = bounds
    x0, y0 = _firstInside(x, native[0], declared[0]), _firstInside(y, native[1], declared[1])
    x1, y1 = _firstInside(x + w, native[0], declared[0]), _firstInside(y + h, native[1], declared[1])
    return [x0, y0, max(1, x1 - x0), max(1, y1 - y0)]


def nodeJSON(
    node: AccessibleNode, native: tuple[int, int], declared: tuple[int, int]
) -> dict[str, Any]:
    """A node and its children as the API answers them."""
    out: dict[str, Any] = {
        "id": node.id,
        "role": node.role,
        "name": node.name,
        "states": list(node.states),
        "bounds": declaredBounds(node.bounds, native, declared) if node.bounds else None,
        "actions": list(node.actions),
        "children": [nodeJSON(c, native, declared) for c in node.children],
    }
    if node.truncated:
        out["truncated"] = True
    return out


def countNodes(node: AccessibleNode) -> int:
    return 1 + sum(countNodes(c) for c in node.children)
