"""
C{GET /api/v0/desktop/openapi.json}: an OpenAPI 3.1 document of every
route, generated from the resource tree the site serves and what each
route declares (its C{api}, L{agentdesktop.web.apischema.Operation}s).  A
route is documented because it is in the tree: L{walk} visits every
L{Tree} node and L{Endpoint}, and L{UndocumentedRoute} says which route
forgot its declaration (a unit test walks the real tree).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from twisted.web import resource, server

from agentdesktop import __version__
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import COMPONENTS, ERROR, Operation, Param, Response, Schema
from agentdesktop.web.resource import Call, Endpoint, NotFound, Tree

#: The statuses every route may answer, with what they mean.
BAD_REQUEST = "The request is wrong: `message` and `detail` say what to fix."
TOO_LARGE = "`Request body too large.`: the body is over 1 MiB."
SHUTTING_DOWN = "`Desktop API is shutting down.`"
UNAUTHORIZED = ("`Unauthorized.`: no valid credentials (the bearer token; where the route "
                "takes them, a ticket or the viewer page's session).")


class UndocumentedRoute(Exception):
    """A route serves a method it declares no L{Operation} for, or is no L{Endpoint}."""


@dataclass(frozen=True)
class Route:
    """An endpoint at a documented PATH, with the path parameters on the way."""

    path: str
    params: tuple[Param, ...]
    endpoint: Endpoint


def walk(node: resource.Resource, path: str = "", params: tuple[Param, ...] = ()) -> Iterator[Route]:
    """
    Every route under NODE (whose own path is PATH): L{Tree}s' children
    and own paths, endpoints, their children and the segments they
    declare below them.

    @raise UndocumentedRoute: for a resource that is neither.
    """
    if isinstance(node, Tree):
        own = node.own()
        if not isinstance(own, NotFound):
            yield Route(path or "/", params, own)
        for name, child in sorted(node.children.items()):
            yield from walk(child, f"{path}/{name.decode('ascii')}", params)
    elif isinstance(node, Endpoint):
        if not (node.isLeaf and node.below):
            yield Route(path or "/", params, node)
        for name, child in sorted(node.children.items()):
            yield from walk(child, f"{path}/{name.decode('ascii')}", params)
        for name, segment in node.below.items():
            below = params + ((segment.param,) if segment.param is not None else ())
            if node.isLeaf:
                # It reads the rest of the path itself.
                yield Route(f"{path}/{name}", below, node)
            else:
                # Our getChild methods read only the segment.
                child = node.getChildWithDefault(segment.sample, cast(server.Request, None))
                yield from walk(child, f"{path}/{name}", below)
    else:
        raise UndocumentedRoute(f"{path or '/'}: {type(node).__name__} is not an Endpoint")


def declared(route: Route) -> dict[str, Operation]:
    """
    The operations of ROUTE by lower-case method.

    @raise UndocumentedRoute: for a method it serves and does not declare
        (or declares and does not serve).
    """
    ops = route.endpoint.operations()
    served = {m for m in route.endpoint.methods() if m != "HEAD"}
    if set(ops) != served:
        raise UndocumentedRoute(
            f"{route.path}: {type(route.endpoint).__name__} serves {sorted(served)} "
            f"but declares {sorted(ops)}"
        )
    return {method.lower(): op for method, op in sorted(ops.items())}


def _responses(op: Operation, endpoint: Endpoint, state: ServiceState) -> dict[str, Any]:
    answers: dict[int, Response | str] = dict(op.responses)
    if op.body is not None or op.query:
        answers.setdefault(400, BAD_REQUEST)
    if op.body is not None:
        answers.setdefault(413, TOO_LARGE)
    if endpoint.ticketed or (state.token is not None and not endpoint.public):
        answers.setdefault(401, UNAUTHORIZED)
    answers.setdefault(503, SHUTTING_DOWN)
    return {
        str(status): (answer.json() if isinstance(answer, Response)
                      else Response(answer, ERROR).json())
        for status, answer in sorted(answers.items())
    }


def _security(endpoint: Endpoint, state: ServiceState) -> list[dict[str, list[str]]] | None:
    if state.token is None:
        return [{"ticket": []}] if endpoint.ticketed else None
    if endpoint.public:
        return []
    schemes: list[dict[str, list[str]]] = [{"bearer": []}]
    if endpoint.viewer:
        schemes.append({"session": []})
    if endpoint.ticketed:
        schemes.append({"ticket": []})
    return schemes


def operationJSON(op: Operation, endpoint: Endpoint, state: ServiceState) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operationId, "summary": op.summary}
    if op.description:
        out["description"] = op.description
    if op.tags:
        out["tags"] = list(op.tags)
    if op.query:
        out["parameters"] = [p.json() for p in op.query]
    if op.body is not None:
        media: dict[str, Any] = {"schema": op.body}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": op.bodyRequired, "content": {"application/json": media}}
    out["responses"] = _responses(op, endpoint, state)
    security = _security(endpoint, state)
    if security is not None:
        out["security"] = security
    return out


SECURITY_SCHEMES: Mapping[str, Schema] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "The token of --auth-token-file (when the service has one)."},
    "session": {"type": "apiKey", "in": "cookie", "name": "agentdesktop_session",
                "description": "The viewer page's session, set when it was opened with a ticket."},
    "ticket": {"type": "apiKey", "in": "query", "name": "ticket",
               "description": "A one-time ticket from POST /api/v0/desktop/tickets."},
}


def document(root: resource.Resource, state: ServiceState) -> dict[str, Any]:
    """
    The OpenAPI 3.1 document of the site whose root is ROOT.

    @raise UndocumentedRoute: for a route without its declaration.
    """
    paths: dict[str, Any] = {}
    for route in walk(root):
        item: dict[str, Any] = {}
        if route.params:
            item["parameters"] = [p.json() for p in route.params]
        for method, op in declared(route).items():
            item[method] = operationJSON(op, route.endpoint, state)
        paths[route.path] = item
    ids = [op["operationId"] for item in paths.values() for k, op in item.items()
           if k != "parameters"]
    if len(ids) != len(set(ids)):
        raise UndocumentedRoute(f"operationIds are not unique: {sorted(ids)}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agentdesktop",
            "version": __version__,
            "description": "A real Linux desktop for computer-use agents, over HTTP. The "
                           "reference for people is docs/api.md in the repository.",
        },
        "paths": paths,
        "components": {"schemas": dict(COMPONENTS), "securitySchemes": dict(SECURITY_SCHEMES)},
    }


class OpenAPIEndpoint(Endpoint):
    """
    C{GET /api/v0/desktop/openapi.json}: the document of the site that
    serves this request (made once, on first use).  Public: it holds
    nothing the repository does not.
    """

    public = True
    api = {"GET": Operation(
        "openapi", "This API's OpenAPI 3.1 document", tags=["operations"],
        responses={200: Response("The document.", {"type": "object"})},
    )}

    def __init__(self, state: ServiceState) -> None:
        super().__init__(state)
        self._made: tuple[resource.Resource, dict[str, Any]] | None = None

    async def handle_GET(self, call: Call) -> Any:
        call.action = "openapi"
        site = call.request.site
        assert site is not None
        root = site.resource
        if self._made is None or self._made[0] is not root:
            self._made = (root, document(root, self.state))
        return self._made[1]
