"""
What the X server knows about one client window, for matching it to its
accessible: its process, title and rectangle on screen.  Blocking
python-xlib work, run in an X worker thread.
"""

from __future__ import annotations

from Xlib import X, Xatom
from Xlib import error as xerror

from agentdesktop.accessibility.model import WindowTarget
from agentdesktop.errors import UnknownWindow
from agentdesktop.x11.session import XSession


def _isClient(session: XSession, windowId: int) -> bool:
    """
    Whether WINDOWID is in the window manager's C{_NET_CLIENT_LIST}, or,
    without a window manager, a mapped child of the root.
    """
    atom = session.display.intern_atom("_NET_CLIENT_LIST")
    clients = session.root.get_full_property(atom, Xatom.WINDOW)
    if clients is not None:
        return windowId in list(clients.value)
    for child in session.root.query_tree().children:
        if child.id == windowId:
            return bool(child.get_attributes().map_state == X.IsViewable)
    return False


def _title(session: XSession, window: object) -> str:
    d = session.display
    utf8 = window.get_full_property(  # type: ignore[attr-defined]
        d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
    if utf8 is not None:
        return bytes(utf8.value).decode("utf-8", "replace")
    legacy = window.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)  # type: ignore[attr-defined]
    if legacy is not None:
        value = legacy.value
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def windowTarget(session: XSession, windowId: int) -> WindowTarget:
    """
    The process (C{_NET_WM_PID}), title and on-screen rectangle of the
    client window WINDOWID.

    @raise UnknownWindow: when it is no client window of this desktop.
    """
    if not 0 < windowId < 2**32 or not _isClient(session, windowId):
        raise UnknownWindow(f"{windowId} is not a client window; GET /windows lists them")
    window = session.display.create_resource_object("window", windowId)
    try:
        geometry = window.get_geometry()
        origin = session.root.translate_coords(window, 0, 0)
        pid = window.get_full_property(session.display.intern_atom("_NET_WM_PID"), Xatom.CARDINAL)
        title = _title(session, window)
    except (xerror.BadWindow, xerror.BadDrawable):
        raise UnknownWindow(f"window {windowId} is gone") from None
    return WindowTarget(
        windowId,
        int(pid.value[0]) if pid is not None and len(pid.value) else None,
        title,
        (origin.x, origin.y, geometry.width, geometry.height),
    )
