"""
The viewer: C{GET /api/v0/desktop/} (a page around noVNC) and noVNC's own
files under C{/novnc/}.
"""

from __future__ import annotations

import os
from importlib import resources as importlib_resources
from typing import Any

from twisted.web import resource, server, static

from agentdesktop.errors import APIError
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import SESSION_COOKIE, Call, Endpoint, Page, writeError

#: Where Debian's C{novnc} package puts noVNC; C{AGENTDESKTOP_NOVNC_DIR}
#: overrides it.
DEFAULT_NOVNC_DIR = "/usr/share/novnc"


def novncDirectory() -> str:
    """noVNC's files: C{$AGENTDESKTOP_NOVNC_DIR}, else Debian's package."""
    return os.environ.get("AGENTDESKTOP_NOVNC_DIR") or DEFAULT_NOVNC_DIR


def viewerHTML() -> bytes:
    return importlib_resources.files("agentdesktop.vnc").joinpath("viewer.html").read_bytes()


class ViewerPage(Endpoint):
    """
    C{GET /api/v0/desktop/}: the noVNC viewer page.

    Opened with a ticket (or, with C{--allow-token-in-url}, the token in
    its URL), or with no token configured, it gets a session: an HttpOnly,
    SameSite=Strict cookie for the API path, with which its own requests
    (C{/control}) and its C{/vnc} connections, reconnects included, get in
    with the same scope.
    """

    viewer = True
    ticketed = True

    def __init__(self, state: ServiceState) -> None:
        super().__init__(state)
        self.page = viewerHTML()

    async def handle_GET(self, call: Call) -> Any:
        call.action = "viewer"
        request = call.request
        grant = call.grant
        assert grant is not None
        if grant.source in ("ticket", "url", "open"):
            session = self.state.sessions.open(grant.scope)
            path = request.path.decode("ascii", "replace")
            request.addCookie(
                SESSION_COOKIE, session.secret, path=path[: path.rfind("/") + 1],
                httpOnly=True, sameSite="strict", secure=request.isSecure(),
            )
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return Page(self.page, b"text/html; charset=utf-8")


class _MissingNoVNC(resource.Resource):
    isLeaf = True

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        writeError(
            request,
            APIError(404, "noVNC is not installed.", f"No noVNC files in {self.directory}."),
        )
        return b""


class _NoVNCFiles(static.File):
    """Static files with a JavaScript type browsers accept for modules, no listings."""

    contentTypes = dict(
        static.File.contentTypes, **{".js": "text/javascript", ".mjs": "text/javascript"}
    )

    def directoryListing(self) -> resource.Resource:
        return _MissingNoVNC(self.path)


def novncResource(directory: str | None = None) -> resource.Resource:
    """noVNC's ES modules, served from DIRECTORY (default L{novncDirectory})."""
    directory = directory or novncDirectory()
    if not os.path.isfile(os.path.join(directory, "core", "rfb.js")):
        return _MissingNoVNC(directory)
    return _NoVNCFiles(directory)
