"""
Top-level windows through the window manager's EWMH hints (python-xlib):
the list of managed windows with their titles, classes, pids, on-screen
rectangles and states, and the client messages that ask the window manager
to focus, close, minimize, maximize or restore one.  Everything here
blocks; the desktop runs it in a worker thread (C{X11Desktop._onX}).

The state arithmetic (L{isMinimized}, L{isMaximized}, L{stateMessage},
L{reached}) is plain code on atom names, tested without an X server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from Xlib import X, Xatom
from Xlib.error import XError
from Xlib.protocol import event as xevent

from agentdesktop.errors import UnknownWindow
from agentdesktop.interfaces import WINDOW_VERBS, WindowInfo
from agentdesktop.x11.session import XSession

#: ICCCM WM_STATE values.
NORMAL_STATE = 1
ICONIC_STATE = 3

#: EWMH source indication: a pager or taskbar, i.e. direct user action,
#: which window managers obey without focus-stealing prevention.
SOURCE_PAGER = 2

#: _NET_WM_STATE actions.
STATE_REMOVE, STATE_ADD = 0, 1

MAXIMIZED = ("_NET_WM_STATE_MAXIMIZED_VERT", "_NET_WM_STATE_MAXIMIZED_HORZ")
HIDDEN = "_NET_WM_STATE_HIDDEN"

#: How long a verb waits for the window manager to carry it out.
VERB_TIMEOUT = 2.0
POLL_INTERVAL = 0.02


# -- state arithmetic (pure)


def isMinimized(netState: Sequence[str], wmState: int | None) -> bool:
    """Iconified: EWMH says hidden, or ICCCM says iconic."""
    return HIDDEN in netState or wmState == ICONIC_STATE


def isMaximized(netState: Sequence[str]) -> bool:
    """Maximized both ways."""
    return all(atom in netState for atom in MAXIMIZED)


def stateMessage(action: int, first: str, second: str | None = None) -> list[Any]:
    """The data of a C{_NET_WM_STATE} client message (atom names unresolved)."""
    return [action, first, second, SOURCE_PAGER, 0]


def reached(verb: str, window: WindowInfo | None) -> bool:
    """Whether WINDOW (C{None}: gone) shows that VERB was carried out."""
    if verb == "close":
        return window is None
    if window is None:
        return False
    if verb == "focus":
        return window.focused
    if verb == "minimize":
        return window.minimized
    if verb == "maximize":
        return window.maximized
    if verb == "restore":
        return not window.minimized and not window.maximized
    raise ValueError(f"unknown window verb {verb!r}")


# -- reading


def _atom(session: XSession, name: str) -> int:
    return int(session.display.intern_atom(name))


def _cardinals(window: Any, atom: int, kind: int = X.AnyPropertyType) -> list[int]:
    reply = window.get_full_property(atom, kind)
    if reply is None or reply.format != 32:
        return []
    return [int(v) for v in reply.value]


def clientList(session: XSession) -> list[int]:
    """The ids in C{_NET_CLIENT_LIST} (empty without an EWMH window manager)."""
    return _cardinals(session.root, _atom(session, "_NET_CLIENT_LIST"), Xatom.WINDOW)


def activeWindow(session: XSession) -> int | None:
    """C{_NET_ACTIVE_WINDOW}, or C{None}."""
    ids = _cardinals(session.root, _atom(session, "_NET_ACTIVE_WINDOW"), Xatom.WINDOW)
    return ids[0] if ids and ids[0] else None


def _text(session: XSession, window: Any, name: str) -> str | None:
    reply = window.get_full_property(_atom(session, name), X.AnyPropertyType)
    if reply is None or reply.format != 8:
        return None
    data = bytes(reply.value)
    if reply.property_type == Xatom.STRING:
        return data.decode("latin-1")
    return data.decode("utf-8", "replace")


def _title(session: XSession, window: Any) -> str:
    for name in ("_NET_WM_NAME", "WM_NAME"):
        title = _text(session, window, name)
        if title is not None:
            return title
    return ""


def _windowClass(window: Any) -> str:
    names = window.get_wm_class()
    return names[1] if names else ""


def describe(session: XSession, windowId: int, active: int | None) -> WindowInfo:
    """One window's description; C{XError} when it is gone."""
    d = session.display
    window = d.create_resource_object("window", windowId)
    geometry = window.get_geometry()
    origin = session.root.translate_coords(window, 0, 0)
    pids = _cardinals(window, _atom(session, "_NET_WM_PID"), Xatom.CARDINAL)
    netState = [
        d.get_atom_name(a) for a in _cardinals(window, _atom(session, "_NET_WM_STATE"), Xatom.ATOM)
    ]
    wmState = _cardinals(window, _atom(session, "WM_STATE"))
    return WindowInfo(
        id=windowId,
        title=_title(session, window),
        windowClass=_windowClass(window),
        pid=pids[0] if pids else None,
        x=int(origin.x),
        y=int(origin.y),
        width=int(geometry.width),
        height=int(geometry.height),
        focused=windowId == active,
        minimized=isMinimized(netState, wmState[0] if wmState else None),
        maximized=isMaximized(netState),
    )


def listWindows(session: XSession) -> list[WindowInfo]:
    """Every managed window; one that vanishes while we look is left out."""
    active = activeWindow(session)
    out = []
    for windowId in clientList(session):
        try:
            out.append(describe(session, windowId, active))
        except XError:
            continue
    return out


def findWindow(session: XSession, windowId: int) -> tuple[bool, WindowInfo | None]:
    """
    Whether WINDOWID is in the window manager's list, and its description
    (C{None} when it is not, or when it is destroyed but still listed).
    """
    if windowId not in clientList(session):
        return False, None
    try:
        return True, describe(session, windowId, activeWindow(session))
    except XError:
        return True, None


# -- acting


def _message(session: XSession, windowId: int, kind: str, data: Sequence[Any]) -> None:
    """Send the client message KIND about WINDOWID to the root, as EWMH asks."""
    values = [_atom(session, v) if isinstance(v, str) else int(v or 0) for v in data]
    ev = xevent.ClientMessage(
        window=windowId, client_type=_atom(session, kind),
        data=(32, (values + [0] * 5)[:5]),
    )
    session.root.send_event(
        ev, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask
    )


def _focus(session: XSession, window: WindowInfo) -> None:
    _message(session, window.id, "_NET_ACTIVE_WINDOW", [SOURCE_PAGER, X.CurrentTime, 0])


def _close(session: XSession, window: WindowInfo) -> None:
    _message(session, window.id, "_NET_CLOSE_WINDOW", [X.CurrentTime, SOURCE_PAGER])


def _minimize(session: XSession, window: WindowInfo) -> None:
    _message(session, window.id, "WM_CHANGE_STATE", [ICONIC_STATE])


def _maximize(session: XSession, window: WindowInfo) -> None:
    _message(session, window.id, "_NET_WM_STATE", stateMessage(STATE_ADD, *MAXIMIZED))


def _restore(session: XSession, window: WindowInfo) -> None:
    if window.minimized:
        # ICCCM 4.1.4: a client leaves the iconic state by mapping its window.
        session.display.create_resource_object("window", window.id).map()
    if window.maximized:
        _message(session, window.id, "_NET_WM_STATE", stateMessage(STATE_REMOVE, *MAXIMIZED))


_VERBS: dict[str, Callable[[XSession, WindowInfo], None]] = {
    "focus": _focus,
    "close": _close,
    "minimize": _minimize,
    "maximize": _maximize,
    "restore": _restore,
}
assert tuple(_VERBS) == WINDOW_VERBS


def windowAction(
    session: XSession, windowId: int, verb: str, timeout: float = VERB_TIMEOUT
) -> WindowInfo | None:
    """
    Ask the window manager to carry out VERB on WINDOWID, then wait up to
    TIMEOUT seconds until the window shows it.

    @return: the window afterwards, C{None} once it is gone.
    @raise UnknownWindow: when WINDOWID is not a managed window.
    @raise ValueError: for an unknown verb.
    """
    act = _VERBS.get(verb)
    if act is None:
        raise ValueError(f"unknown window verb {verb!r}")
    _, window = findWindow(session, windowId)
    if window is None:
        raise UnknownWindow(windowId)
    before = window
    act(session, window)
    session.display.sync()
    deadline = time.monotonic() + timeout
    while True:
        managed, after = findWindow(session, windowId)
        done = settledAfter(verb, before, after, managed)
        if done or time.monotonic() >= deadline:
            return after
        time.sleep(POLL_INTERVAL)


def settledAfter(verb: str, before: WindowInfo, after: WindowInfo | None, managed: bool) -> bool:
    """
    Whether the window manager has finished VERB: closed means unmanaged
    (dropped from its list); a maximize or restore that changes the state
    also changes the rectangle, which the window manager sets after the
    state, so that is waited for too.
    """
    if verb == "close":
        return not managed
    if not reached(verb, after):
        return False
    if verb in ("maximize", "restore") and not reached(verb, before):
        assert after is not None
        return rectangle(after) != rectangle(before)
    return True


def rectangle(window: WindowInfo) -> tuple[int, int, int, int]:
    return window.x, window.y, window.width, window.height
