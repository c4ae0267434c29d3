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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from agentdesktop import jsonbody
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.request import MAX_BODY_BYTES, decodeObject
from agentdesktop.state import ServiceState
from agentdesktop.tickets import Session
from agentdesktop.web.apischema import Operation, Response, Segment

log = Logger()

#: The cookie holding a viewer page's session.
SESSION_COOKIE = "agentdesktop_session"

SHUTTING_DOWN = "Desktop API is shutting down."

#: Names the request fields that nothing read (the request still succeeds,
#: as the reference API ignores unknown keys).
IGNORED_HEADER = b"X-Agentdesktop-Ignored-Fields"

#: A handler returns this when it handed the connection to another
#: protocol (a WebSocket): the skeleton then neither writes nor finishes.
TAKEN_OVER = object()


@dataclass(frozen=True)
class Page:
    """A non-JSON response body (with STATUS)."""

    body: bytes
    contentType: bytes
    status: int = 200


@dataclass(frozen=True)
class Grant:
    """
    What a request's credentials allow (SPEC section 16).

    @ivar scope: C{"control"} (may take control; its viewers may send input
        while a person holds it) or C{"view"}.
    @ivar source: where it came from: C{"header"} (the bearer token in
        C{Authorization}), C{"url"} (in C{?token=}), C{"open"} (no token
        configured), C{"ticket"} or C{"session"}.
    @ivar session: the viewer page's session it came with, or C{None}.
    """

    scope: str
    source: str
    session: Session | None = None

    @property
    def mayControl(self) -> bool:
        return self.scope == "control"

    @property
    def owner(self) -> object:
        """Who the control lease counts as holder: a session, or the token."""
        return self.session if self.session is not None else TOKEN_OWNER


#: The control lease's owner for everyone using the bearer token itself.
TOKEN_OWNER = object()

#: The grant of a public route's request without credentials.
ANONYMOUS = Grant("view", "none")


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
        self.grant: Grant | None = None
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

    def bearer(self, inURL: bool = False) -> str | None:
        """
        The token the client sent in its C{Authorization} header, or, if
        INURL, in C{?token=}.
        """
        header = self.request.getHeader(b"authorization")
        if header and header[:7].lower() == b"bearer ":
            return header[7:].strip().decode("utf-8", "replace")
        if inURL:
            return self.arg("token")
        return None

    def cookie(self, name: str) -> str | None:
        """The value of the cookie NAME, or C{None}."""
        value = self.request.getCookie(name.encode())
        return value.decode("utf-8", "replace") if value else None

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
    @cvar viewer: whether a viewer page's session cookie admits it.
    @cvar ticketed: whether C{?ticket=} admits it (once).
    @cvar api: method → its L{Operation}, for the OpenAPI document; every
        method the route serves needs one (a unit test walks the tree).
    @cvar below: the path segments below the route that its C{getChild}
        answers (for a leaf, that it reads itself), for the document.
    """

    isLeaf = True
    public = False
    viewer = False
    ticketed = False
    api: ClassVar[Mapping[str, Operation]] = {}
    below: ClassVar[Mapping[str, Segment]] = {}
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

    def operations(self) -> Mapping[str, Operation]:
        """What this route declares for the OpenAPI document (L{api})."""
        return self.api

    def refuseWhileStopping(self) -> None:
        """@raise APIError: 503 once the service began stopping."""
        if self.state.shuttingDown:
            raise APIError(503, SHUTTING_DOWN)

    def authorized(self, call: Call) -> bool:
        """Whether CALL may use this route; sets C{call.grant}."""
        if self.public:
            try:
                call.grant = self.grant(call) or ANONYMOUS
            except APIError:
                call.grant = ANONYMOUS
            return True
        call.grant = self.grant(call)
        return call.grant is not None

    def grant(self, call: Call) -> Grant | None:
        """
        What CALL's credentials allow here, or C{None} for nothing: a
        ticket (on L{ticketed} routes, used up now), the bearer token, a
        viewer page's session cookie (on L{viewer} routes), or anything when
        no token is configured.

        @raise APIError: 401 for a bad ticket, or a token in the URL without
            C{--allow-token-in-url}.
        """
        state = self.state
        if self.ticketed and call.arg("ticket") is not None:
            scope = state.tickets.redeem(call.arg("ticket"))
            if scope is None:
                raise APIError(401, "Unauthorized.", "The ticket is unknown, expired or already used.")
            return Grant(scope, "ticket")
        token = state.token
        if token is not None and tokenMatches(call.bearer(), token):
            return Grant("control", "header")
        if self.viewer:
            session = state.sessions.find(call.cookie(SESSION_COOKIE))
            if session is not None:
                return Grant(session.scope, "session", session)
        if token is None:
            return Grant("control", "open")
        if call.arg("token") is not None:
            if not state.allowTokenInURL:
                raise APIError(
                    401, "Unauthorized.",
                    "Tokens in URLs are refused (unless the service runs with "
                    "--allow-token-in-url): send Authorization: Bearer <token>, or open the "
                    "viewer with a ticket from POST /api/v0/desktop/tickets.",
                )
            if tokenMatches(call.bearer(inURL=True), token):
                return Grant("control", "url")
        return None

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
                call.status = result.status
                request.setResponseCode(result.status)
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
        """Check the request (method, credentials, shutdown), then run its handler."""
        request = call.request
        handler = self.handler(request.method)
        if handler is None:
            # Before the credentials: which methods a path serves is no secret.
            allowed = ", ".join(self.methods())
            request.setHeader(b"allow", allowed.encode("ascii"))
            raise APIError(405, "Method not allowed.", f"Use {allowed} for this path.")
        try:
            if not self.authorized(call):
                raise APIError(401, "Unauthorized.", "Send Authorization: Bearer <token>.")
        except APIError as e:
            if e.status == 401:
                request.setHeader(b"www-authenticate", b'Bearer realm="agentdesktop"')
            raise
        if self.shutdownFirst:
            self.refuseWhileStopping()
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


class Redirect(Endpoint):
    """
    C{GET}: a 302 to TARGET (by default this path with a slash added: the
    viewer's relative URLs need it), keeping the query string, which may
    carry a ticket for the page.  Public: it reveals nothing, and the
    page it leads to checks the credentials.
    """

    public = True
    api = {"GET": Operation(
        "redirect", "Redirect to the viewer page", tags=["viewer"],
        description="Answers 302 to the viewer page `/api/v0/desktop/`, keeping the query "
                    "string (a `?ticket=` goes along).",
        responses={302: Response("To the viewer page.", contentType=None,
                                 headers={"Location": {"type": "string"}})},
    )}

    def __init__(self, state: ServiceState, target: bytes | None = None) -> None:
        super().__init__(state)
        self.target = target

    def operations(self) -> Mapping[str, Operation]:
        if self.target is None:
            return self.api
        return {"GET": replace(self.api["GET"], operationId="rootRedirect",
                               summary="Redirect the site root to the viewer page")}

    async def handle_GET(self, call: Call) -> Any:
        call.action = "redirect"
        request = call.request
        target = self.target if self.target is not None else request.path + b"/"
        _, sep, query = request.uri.partition(b"?")
        request.setHeader(b"location", target + sep + query)
        return Page(b"", b"text/plain", 302)


class Tree(resource.Resource):
    """
    An inner node of the tree: unknown children are L{NotFound}; its own
    path is answered by L{own}.
    """

    def __init__(self, state: ServiceState) -> None:
        super().__init__()
        self.state = state

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return NotFound(self.state)

    def own(self) -> Endpoint:
        """
        What answers this node's own path (no trailing slash): a
        L{Redirect} to its index (C{/api/v0/desktop} → C{/api/v0/desktop/})
        when it has one, else L{NotFound}.
        """
        if b"" in self.children:
            return Redirect(self.state)
        return NotFound(self.state)

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        return self.own().render(request)


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
