"""
The viewer: C{GET /api/v0/desktop/} (a page around noVNC) and noVNC's own
files under C{/novnc/}.
"""

from __future__ import annotations

import os
from importlib import resources as importlib_resources
from typing import Any

from twisted.python.filepath import FilePath, InsecurePath
from twisted.web import static

from agentdesktop.errors import APIError
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import Operation, Param, Response, Segment, string
from agentdesktop.web.resource import SESSION_COOKIE, Call, Endpoint, Page

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
    api = {"GET": Operation(
        "viewer", "The browser viewer (noVNC) page", tags=["viewer"],
        description="Opened with `?ticket=` (or, with --allow-token-in-url, `?token=`), or with "
                    "no token configured, the page gets a session cookie its own requests and "
                    "its /vnc connections use. See docs/sharing.md.",
        query=(Param("ticket", string("A one-time ticket from POST /tickets.")),),
        responses={200: Response("The page.", contentType="text/html")},
    )}

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


#: Content types of noVNC's files; JavaScript with a type browsers accept
#: for ES modules.
_TYPES = dict(static.loadMimeTypes(), **{".js": "text/javascript", ".mjs": "text/javascript"})

NOVNC_FILE = Param("file", string("A file below noVNC's directory, e.g. core/rfb.js (slashes "
                                  "separate directories)."), where="path")


class NoVNCFiles(Endpoint):
    """
    C{GET /novnc/<path>}: noVNC's files (its ES modules), from DIRECTORY;
    public (they are the same for everyone), never a directory listing.
    """

    public = True
    below = {"{file}": Segment(b"core/rfb.js", NOVNC_FILE)}
    api = {"GET": Operation(
        "novncFile", "A file of noVNC (the viewer's JavaScript)", tags=["viewer"],
        responses={200: Response("The file.", contentType="*/*"),
                   404: "`Not found.` (no such file; directories are not listed), or `noVNC is "
                        "not installed.`"},
    )}

    def __init__(self, state: ServiceState, directory: str | None = None) -> None:
        super().__init__(state)
        self.directory = directory or novncDirectory()

    async def handle_GET(self, call: Call) -> Any:
        call.action = "novnc"
        if not os.path.isfile(os.path.join(self.directory, "core", "rfb.js")):
            raise APIError(404, "noVNC is not installed.", f"No noVNC files in {self.directory}.")
        path = FilePath(self.directory)
        try:
            for segment in call.request.postpath or []:
                if b"\0" in segment:
                    raise InsecurePath("a NUL character")
                path = path.child(segment.decode("utf-8"))
        except (InsecurePath, UnicodeDecodeError):
            path = FilePath(self.directory)
        if not path.isfile():
            where = call.request.path.decode("ascii", "replace")
            raise APIError(404, "Not found.", f"No resource at {where}.")
        contentType, _ = static.getTypeAndEncoding(
            path.basename(), _TYPES, {}, "application/octet-stream"
        )
        return Page(path.getContent(), contentType.encode("ascii"))
