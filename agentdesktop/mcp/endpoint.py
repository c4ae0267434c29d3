"""
C{/api/v0/desktop/mcp}: MCP's Streamable HTTP transport (SPEC section 14) in
the service's resource tree.  Each POST carries one JSON-RPC message (or,
as protocol 2025-03-26 allows, a batch of them); requests are answered with
one JSON body, notifications and responses with 202.  The server keeps no
session: GET (no SSE stream) and DELETE (no session to end) answer 405.
Like every route it needs the bearer token; a browser page from another
origin gets 403.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import mcp_types

from agentdesktop.dialects import apischema
from agentdesktop.mcp.protocol import (
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    Context,
    MCPServer,
    RPCError,
    unsupportedVersion,
)
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import Call, Endpoint, writeJSON


def _hostPort(netloc: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) of NETLOC, the scheme's port when it names none; C{None} if malformed."""
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else (443 if scheme == "https" else 80)


def sameOrigin(origin: str, host: str, secure: bool) -> bool:
    """Whether ORIGIN's host:port is the HOST (a C{Host} header) the request was sent to."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    mine = _hostPort(host, "https" if secure else "http")
    return mine is not None and _hostPort(parts.netloc, parts.scheme) == mine


def _isRequest(message: Any) -> bool:
    return "method" in message and "id" in message


def _invalid(message: Any) -> str | None:
    """Why MESSAGE is not a JSON-RPC 2.0 message, or C{None}."""
    if not isinstance(message, dict):
        return "a JSON-RPC message is an object"
    if message.get("jsonrpc") != "2.0":
        return 'a JSON-RPC message has "jsonrpc": "2.0"'
    if "method" in message:
        if not isinstance(message["method"], str):
            return '"method" must be a string'
        request_id = message.get("id", "")
        if isinstance(request_id, bool) or not isinstance(request_id, str | int):
            return '"id" must be a string or an integer'
    elif "id" not in message or ("result" not in message and "error" not in message):
        return 'a message needs "method", or "id" and "result" or "error"'
    return None


class MCPEndpoint(Endpoint):
    """C{POST /mcp}: JSON-RPC messages in, JSON answers out."""

    api = apischema.MCP

    def __init__(self, state: ServiceState) -> None:
        super().__init__(state)
        self.mcp = MCPServer(state)

    async def dispatch(self, call: Call) -> Any:
        """Refuse pages from other origins (DNS rebinding) before anything else."""
        request = call.request
        origin = request.getHeader("origin")
        host = request.getHeader("host") or ""
        if origin is not None and not sameOrigin(origin, host, request.isSecure()):
            call.action = "mcp"
            self.answer(call, 403, {"jsonrpc": "2.0", "id": None, "error": {
                "code": mcp_types.INVALID_REQUEST,
                "message": f"Forbidden: the Origin {origin} is not this server ({host})."}})
            return None
        return await super().dispatch(call)

    def answer(self, call: Call, status: int, body: Any) -> None:
        """Write STATUS with the JSON BODY (C{None}: no body)."""
        call.status = status
        if call.gone:
            return
        if body is None:
            call.request.setResponseCode(status)
            call.request.setHeader(b"content-length", b"0")
        else:
            writeJSON(call.request, status, body)

    async def handle_POST(self, call: Call) -> Any:
        call.action = "mcp"
        try:
            body = json.loads(call.body().decode("utf-8"))
        except ValueError as e:
            self.answer(call, 400, _error(None, RPCError(mcp_types.PARSE_ERROR, f"Parse error: {e}")))
            return None
        batch = isinstance(body, list)
        messages = body if batch else [body]
        requests = [m for m in messages if _invalid(m) is None and _isRequest(m)]
        if requests:
            call.action = "mcp " + ",".join(str(m["method"]) for m in requests)
        refusal = self.refusal(call, messages, requests)
        if refusal is not None:
            self.answer(call, 400, refusal)
            return None
        ctx = Context(call.request.getHeader("mcp-protocol-version") or DEFAULT_VERSION,
                      call.disconnected(), lambda: call.gone)
        answers = [a for a in [await self.one(m, ctx) for m in messages] if a is not None]
        if not answers:
            self.answer(call, 202, None)
        elif batch:
            self.answer(call, 200, answers)
        else:
            self.answer(call, 400 if _invalid(body) is not None else 200, answers[0])
        return None

    def refusal(self, call: Call, messages: list[Any], requests: list[dict[str, Any]]) -> Any:
        """The error answer for a POST refused as a whole (400), or C{None}."""
        if not messages:
            return _error(None, RPCError(mcp_types.INVALID_REQUEST, "Invalid request: empty batch."))
        version = call.request.getHeader("mcp-protocol-version")
        # initialize negotiates the version in its body; any other request says it in the header.
        if version is not None and version not in SUPPORTED_VERSIONS and not (
                requests and all(m["method"] == "initialize" for m in requests)):
            return _error(requests[0]["id"] if requests else None, unsupportedVersion(version))
        return None

    async def one(self, message: Any, ctx: Context) -> dict[str, Any] | None:
        """The answer to one message: C{None} for notifications and responses."""
        problem = _invalid(message)
        if problem is not None:
            request_id = message.get("id") if isinstance(message, dict) else None
            valid = isinstance(request_id, str | int) and not isinstance(request_id, bool)
            return _error(request_id if valid else None,
                          RPCError(mcp_types.INVALID_REQUEST, f"Invalid request: {problem}."))
        if not _isRequest(message):
            return None
        try:
            result = await self.mcp.request(message["method"], message.get("params"), ctx)
        except RPCError as e:
            return _error(message["id"], e)
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _error(request_id: Any, error: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.error()}
