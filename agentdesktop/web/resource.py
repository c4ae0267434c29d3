"""
The render skeleton every route uses: L{Endpoint}.  A route writes only its
handlers (C{async def handle_POST(self, call)}); the skeleton does the rest
the same way everywhere: the bearer token, 503 while shutting down, 405 for
a method the route does not serve, the JSON error envelope, and one log
line per request.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server
from twisted.web.util import redirectTo

from agentdesktop import jsonbody
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.request import MAX_BODY_BYTES, decodeObject
from agentdesktop.state import ServiceState

log = Logger()

TOKEN_COOKIE = "agentdesktop_token"

SHUTTING_DOWN = "Desktop API is shutting down."

#: Names the request fields that nothing read (the request still succeeds,
#: as the reference API ignores unknown keys).
IGNORED_HEADER = b"X-Agentdesktop-Ignored-Fields"

#: A handler returns this when it handed the connection to another
#: protocol (a WebSocket): the skeleton then neither writes nor finishes.
TAKEN_OVER = object()


@dataclass(frozen=True)
class Page:
    """A non-JSON response body."""

    body: bytes
    contentType: bytes


class LimitedRequest(server.Request):
    """
    A request that stops buffering its body past L{MAX_BODY_BYTES} and
    remembers that it did, so the resource can answer 413 without parsing.
    """

    bodyTooLarge = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY_BYTES:
            self.bodyTooLarge = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.bodyTooLarge:
            return
        self._received += len(data)
        if self._received > MAX_BODY_BYTES:
            self.bodyTooLarge = True
            return
        super().handleContentChunk(data)


def writeJSON(request: server.Request, status: int, body: Any) -> None:
    # Written in pieces: a screenshot's base64 goes out without another copy.
    pieces = jsonbody.parts(body)
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-length", str(sum(map(len, pieces))).encode())
    for piece in pieces:
        request.write(piece)


def writeError(request: server.Request, error: APIError) -> None:
    writeJSON(request, error.status, error.body())


class Call:
    """
    One request being answered: its body, its client's presence, and what
    its log line says.

    @ivar action: the action (or operation) the log line names.
    @ivar status: the status answered.
    """

    def __init__(self, request: server.Request) -> None:
        self.request = request
        self.started = time.monotonic()
        self.action: str | None = None
        self.ignored: list[str] = []
        self.status = 200
        self.gone = False
        request.notifyFinish().addBoth(self._finished)

    def _finished(self, _: Any) -> None:
        self.gone = True

    def body(self) -> bytes:
        """
        The request body.

        @raise APIError: 413 when it is over L{MAX_BODY_BYTES}.
        """
        request = self.request
        if getattr(request, "bodyTooLarge", False):
            raise APIError(413, "Request body too large.", f"The limit is {MAX_BODY_BYTES} bytes.")
        assert request.content is not None
        request.content.seek(0)
        data: bytes = request.content.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise APIError(413, "Request body too large.", f"The limit is {MAX_BODY_BYTES} bytes.")
        return data

    def json(self) -> dict[str, Any]:
        """The body as one JSON object; 400 C{Failed to decode request body.} else."""
        return decodeObject(self.body())

    def arg(self, name: str) -> str | None:
        """The first query parameter NAME, or C{None}."""
        args: dict[bytes, list[bytes]] = self.request.args or {}
        values = args.get(name.encode())
        return values[0].decode("utf-8", "replace") if values else None

    def ignore(self, fields: list[str]) -> None:
        """
        Tell the client (a header) and the log which fields it sent that
        nothing reads, e.g. a misspelt C{scaled_widht}.
        """
        self.ignored = fields
        if fields:
            self.request.setHeader(IGNORED_HEADER, ", ".join(fields).encode("utf-8", "replace"))

    def disconnected(self) -> defer.Deferred[None]:
        """A Deferred that errbacks if the client goes away first."""
        return self.request.notifyFinish()

    def bearer(self) -> str | None:
        """The token the client sent: header, C{?token=}, or cookie."""
        request = self.request
        header = request.getHeader(b"authorization")
        if header and header[:7].lower() == b"bearer ":
            return header[7:].strip().decode("utf-8", "replace")
        token = self.arg("token")
        if token:
            return unquote(token)
        cookie = request.getCookie(TOKEN_COOKIE.encode())
        if cookie:
            return unquote(cookie.decode("utf-8", "replace"))
        return None

    def logLine(self) -> None:
        log.info(
            "{method} {path} action={action} status={status} ms={ms}{ignoring}",
            method=self.request.method.decode("ascii", "replace"),
            path=self.request.path.decode("ascii", "replace"),
            action=self.action,
            status=self.status,
            ms=round((time.monotonic() - self.started) * 1000, 1),
            ignoring=" ignored=" + ",".join(self.ignored) if self.ignored else "",
            ignored=self.ignored,
        )


Handler = Callable[[Call], Awaitable[Any]]


def tokenMatches(given: str | None, token: str) -> bool:
    """Whether GIVEN is TOKEN, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class Endpoint(resource.Resource):
    """
    A route: a leaf whose C{handle_<METHOD>(call)} methods are async
    handlers.  A handler returns the JSON body, a L{Page}, L{TAKEN_OVER},
    or C{None} when it wrote the response itself.

    @cvar public: whether the route is open without the bearer token.
    """

    isLeaf = True
    public = False
    #: Whether to answer 503 while shutting down before looking at the
    #: request; routes that must validate first check L{refuseWhileStopping}.
    shutdownFirst = True

    def __init__(self, state: ServiceState) -> None:
        super().__init__()
        self.state = state

    def handler(self, method: bytes) -> Handler | None:
        """The handler for METHOD (HEAD falls back to GET), or C{None}."""
        found = getattr(self, "handle_" + method.decode("ascii", "replace"), None)
        if found is None and method == b"HEAD":
            found = getattr(self, "handle_GET", None)
        return found

    def methods(self) -> list[str]:
        names = {name[len("handle_"):] for name in dir(self) if name.startswith("handle_")}
        if "GET" in names:
            names.add("HEAD")
        return sorted(names)

    def refuseWhileStopping(self) -> None:
        """@raise APIError: 503 once the service began stopping."""
        if self.state.shuttingDown:
            raise APIError(503, SHUTTING_DOWN)

    def authorized(self, call: Call) -> bool:
        token = self.state.token
        return self.public or token is None or tokenMatches(call.bearer(), token)

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        call = Call(request)
        defer.Deferred.fromCoroutine(self.respond(call))
        return server.NOT_DONE_YET

    async def respond(self, call: Call) -> None:
        request = call.request
        result: Any = None
        try:
            result = await self.dispatch(call)
            if result is TAKEN_OVER:
                call.status = 101
            elif isinstance(result, Page) and not call.gone:
                request.setHeader(b"content-type", result.contentType)
                request.setHeader(b"content-length", str(len(result.body)).encode())
                request.write(result.body)
            elif result is not None and not call.gone:
                writeJSON(request, 200, result)
        except APIError as e:
            call.status = e.status
            if not call.gone:
                writeError(request, e)
        except Exception:
            call.status = 500
            log.failure("Unexpected error handling {path}", path=request.path)
            if not call.gone:
                writeError(request, APIError(500, "Internal error.", "see the service log"))
        finally:
            if result is not TAKEN_OVER and not call.gone:
                request.finish()
            call.logLine()

    async def dispatch(self, call: Call) -> Any:
        """Check the request, then run its handler."""
        request = call.request
        if not self.authorized(call):
            request.setHeader(b"www-authenticate", b'Bearer realm="agentdesktop"')
            raise APIError(401, "Unauthorized.", "Send Authorization: Bearer <token>.")
        if self.shutdownFirst:
            self.refuseWhileStopping()
        handler = self.handler(request.method)
        if handler is None:
            allowed = ", ".join(self.methods())
            request.setHeader(b"allow", allowed.encode("ascii"))
            raise APIError(405, "Method not allowed.", f"Use {allowed} for this path.")
        try:
            return await handler(call)
        except Exception as e:
            if self.state.shuttingDown and not (isinstance(e, APIError) and e.status < 500):
                # The work failed because the service began stopping.
                raise APIError(503, SHUTTING_DOWN) from None
            raise


async def ensureDesktop(state: ServiceState) -> DesktopInfo:
    """
    The running desktop's info, starting it if need be.

    @raise APIError: 500 C{Failed to start desktop session.}
    """
    try:
        return await state.desktop.start()
    except DesktopError as e:
        raise APIError(500, "Failed to start desktop session.", str(e)) from None


class NotFound(Endpoint):
    """Any method on an unknown path: 404."""

    def handler(self, method: bytes) -> Handler | None:
        return self.missing

    async def missing(self, call: Call) -> Any:
        path = call.request.path.decode("ascii", "replace")
        raise APIError(404, "Not found.", f"No resource at {path}.")


class Tree(resource.Resource):
    """An inner node of the tree: unknown children are L{NotFound}."""

    def __init__(self, state: ServiceState) -> None:
        super().__init__()
        self.state = state

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return NotFound(self.state)

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        if b"" in self.children and not request.path.endswith(b"/"):
            # /api/v0/desktop -> /api/v0/desktop/ (the viewer's relative URLs
            # need the slash); keep the query, which may carry a ticket.
            _, sep, query = request.uri.partition(b"?")
            return redirectTo(request.path + b"/" + sep + query, request)
        return NotFound(self.state).render(request)


class Site(server.Site):
    """A site that leaves request logging to the resources' one line each."""

    noisy = False

    def log(self, request: Any) -> None:
        pass


def makeSite(root: resource.Resource) -> server.Site:
    site = Site(root)
    site.requestFactory = LimitedRequest
    site.displayTracebacks = False
    return site
