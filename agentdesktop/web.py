"""
The HTTP API: a twisted.web resource tree under C{/api/v0/desktop}.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.util import redirectTo

from agentdesktop import __version__, geometry
from agentdesktop.actions import ActionRunner
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop
from agentdesktop.request import MAX_BODY_BYTES, decodeAction

log = Logger()

TOKEN_COOKIE = "agentdesktop_token"


class State:
    """What the resources share: the desktop, the action runner, flags."""

    def __init__(
        self,
        desktop: IDesktop,
        runner: ActionRunner,
        token: str | None = None,
        recorder: Any = None,
    ) -> None:
        self.desktop = desktop
        self.runner = runner
        self.token = token
        self.recorder = recorder
        self.shuttingDown = False


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
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-length", str(len(data)).encode())
    request.write(data)


def writeError(request: server.Request, error: APIError) -> None:
    writeJSON(request, error.status, error.body())


def readBody(request: server.Request) -> bytes:
    """
    The request body.

    @raise APIError: 413 when it is over L{MAX_BODY_BYTES}.
    """
    if getattr(request, "bodyTooLarge", False):
        raise APIError(
            413, "Request body too large.", f"The limit is {MAX_BODY_BYTES} bytes."
        )
    assert request.content is not None
    request.content.seek(0)
    data: bytes = request.content.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise APIError(
            413, "Request body too large.", f"The limit is {MAX_BODY_BYTES} bytes."
        )
    return data


Handler = Callable[[server.Request], Awaitable[Any]]


class APIResource(resource.Resource):
    """
    A leaf resource whose methods are async handlers returning a JSON body
    (or writing the response themselves and returning C{None}).  Errors
    become the JSON envelope; every request logs one line.
    """

    isLeaf = True

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def handlers(self) -> dict[bytes, Handler]:
        """The handler for each allowed method; subclasses list theirs."""
        return {}

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        started = time.monotonic()
        handler = self.handlers().get(request.method)
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))
        fields: dict[str, Any] = {"action": None}

        async def respond() -> None:
            status = 200
            try:
                if self.state.shuttingDown:
                    raise APIError(503, "Desktop API is shutting down.")
                if handler is None:
                    allowed = b", ".join(sorted(self.handlers()))
                    request.setHeader(b"allow", allowed)
                    raise APIError(
                        405,
                        "Method not allowed.",
                        f"Use {allowed.decode()} for this path.",
                    )
                body = await handler(request)
                if body is not None and not finished[0]:
                    writeJSON(request, 200, body)
            except APIError as e:
                status = e.status
                if not finished[0]:
                    writeError(request, e)
            except Exception:
                status = 500
                log.failure("Unexpected error handling {path}", path=request.path)
                if not finished[0]:
                    writeError(
                        request,
                        APIError(500, "Internal error.", "see the service log"),
                    )
            finally:
                if not finished[0]:
                    request.finish()
                log.info(
                    "{method} {path} action={action} status={status} ms={ms}",
                    method=request.method.decode("ascii", "replace"),
                    path=request.path.decode("ascii", "replace"),
                    action=fields["action"],
                    status=status,
                    ms=round((time.monotonic() - started) * 1000, 1),
                )

        request.fields = fields  # type: ignore[attr-defined]
        defer.Deferred.fromCoroutine(respond())
        return server.NOT_DONE_YET


async def ensureDesktop(state: State) -> Any:
    try:
        return await state.desktop.start()
    except DesktopError as e:
        raise APIError(500, "Failed to start desktop session.", str(e)) from None


class ActionResource(APIResource):
    def handlers(self) -> dict[bytes, Handler]:
        return {b"POST": self.post}

    async def post(self, request: server.Request) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = readBody(request)
        info = await ensureDesktop(self.state)
        req = decodeAction(body)
        request.fields["action"] = req.action  # type: ignore[attr-defined]
        disconnected = request.notifyFinish()
        return await self.state.runner.run(req, (info.width, info.height), disconnected)


class InfoResource(APIResource):
    def handlers(self) -> dict[bytes, Handler]:
        return {b"GET": self.get}

    async def get(self, request: server.Request) -> Any:
        info = await ensureDesktop(self.state)
        rw, rh = geometry.recommendedSize(info.width, info.height)
        return {
            "width": info.width,
            "height": info.height,
            "recommended_width": rw,
            "recommended_height": rh,
            "display": info.display,
            "xauthority": info.xauthority,
            "version": __version__,
        }


class NotFound(APIResource):
    def handlers(self) -> dict[bytes, Handler]:
        return {m: self.missing for m in (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE")}

    async def missing(self, request: server.Request) -> Any:
        raise APIError(404, "Not found.", f"No resource at {request.path.decode('ascii', 'replace')}.")


def _bearer(request: server.Request) -> str | None:
    header = request.getHeader(b"authorization")
    if header and header[:7].lower() == b"bearer ":
        return header[7:].strip().decode("utf-8", "replace")
    args: dict[bytes, list[bytes]] = request.args or {}
    if args.get(b"token"):
        return unquote(args[b"token"][0].decode("utf-8", "replace"))
    cookie = request.getCookie(TOKEN_COOKIE.encode())
    if cookie:
        return unquote(cookie.decode("utf-8", "replace"))
    return None


class Guard(resource.Resource):
    """
    Requires the bearer token (header, C{?token=} or cookie) when one is
    configured, compared in constant time; otherwise passes through.
    """

    def __init__(self, state: State, wrapped: resource.Resource) -> None:
        super().__init__()
        self.state = state
        self.wrapped = wrapped

    def _allowed(self, request: server.Request) -> bool:
        if self.state.token is None:
            return True
        given = _bearer(request)
        return given is not None and hmac.compare_digest(
            given.encode("utf-8"), self.state.token.encode("utf-8")
        )

    def getChildWithDefault(self, path: bytes, request: server.Request) -> resource.Resource:
        if not self._allowed(request):
            return _Unauthorized()
        return self.wrapped.getChildWithDefault(path, request)

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        if not self._allowed(request):
            return _Unauthorized().render(request)
        return self.wrapped.render(request)


class _Unauthorized(resource.Resource):
    isLeaf = True

    def render(self, request: server.Request) -> bytes:  # type: ignore[override]
        request.setResponseCode(http.UNAUTHORIZED)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"www-authenticate", b'Bearer realm="agentdesktop"')
        return json.dumps(
            {"message": "Unauthorized.", "detail": "Send Authorization: Bearer <token>."}
        ).encode()


class Tree(resource.Resource):
    """A node that answers 404 JSON for unknown children."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return NotFound(self.state)

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        if b"" in self.children and not request.path.endswith(b"/"):
            # /api/v0/desktop -> /api/v0/desktop/ (the viewer's relative URLs
            # need the slash); keep the query, which may carry the token.
            _, sep, query = request.uri.partition(b"?")
            return redirectTo(request.path + b"/" + sep + query, request)
        return NotFound(self.state).render(request)


def makeRoot(state: State, extra: dict[bytes, resource.Resource] | None = None) -> resource.Resource:
    """
    The resource tree: C{/api/v0/desktop/{action,info,...}} behind the token
    guard.  EXTRA adds children of C{/api/v0/desktop} (vnc, recording, the
    viewer page).
    """
    desktop = Tree(state)
    desktop.putChild(b"action", ActionResource(state))
    desktop.putChild(b"info", InfoResource(state))
    for name, child in (extra or {}).items():
        desktop.putChild(name, child)
    v0 = Tree(state)
    v0.putChild(b"desktop", desktop)
    api = Tree(state)
    api.putChild(b"v0", v0)
    root = Tree(state)
    root.putChild(b"api", api)
    return Guard(state, root)


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


__all__ = ["Failure", "State", "makeRoot", "makeSite"]
