"""
The JSON-RPC side of the MCP server: C{initialize} (negotiating the
protocol version), C{ping}, C{tools/list}, C{tools/call}; notifications are
accepted and need no answer.  Requests are validated, and results shaped
for the negotiated version, by the official C{mcp_types}.  No transport
here: L{agentdesktop.mcp.endpoint} carries the messages over HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types
from mcp_types import methods
from pydantic import ValidationError
from twisted.internet import defer

from agentdesktop import __version__
from agentdesktop.dialects.base import recommended
from agentdesktop.errors import APIError
from agentdesktop.mcp import tools
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import ensureDesktop

#: The protocol versions this server speaks, newest first.
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
LATEST = SUPPORTED_VERSIONS[0]
#: The version to assume when a request does not say (the transport's rule).
DEFAULT_VERSION = "2025-03-26"


class RPCError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def error(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def unsupportedVersion(requested: str) -> RPCError:
    """The error for a request made in a protocol version this server does not speak."""
    return RPCError(
        mcp_types.UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version: {requested}. "
        f"This server speaks {', '.join(SUPPORTED_VERSIONS)}.",
        {"supported": list(SUPPORTED_VERSIONS), "requested": requested},
    )


class Context:
    """What a request runs with: its protocol version, and its client's presence."""

    def __init__(
        self,
        version: str,
        disconnected: defer.Deferred[Any] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> None:
        self.version = version
        self.disconnected = disconnected
        self.gone = gone


Method = Callable[[Any, Context], Awaitable[dict[str, Any]]]


class MCPServer:
    """The methods of the MCP server for the desktop of STATE."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.methods: dict[str, Method] = {
            "initialize": self.initialize,
            "ping": self.ping,
            "tools/list": self.listTools,
            "tools/call": self.callTool,
        }

    async def request(self, method: str, params: Any, ctx: Context) -> dict[str, Any]:
        """
        The result of request METHOD with PARAMS.

        @raise RPCError: the JSON-RPC error to answer.
        """
        handler = self.methods.get(method)
        if handler is None:
            raise RPCError(mcp_types.METHOD_NOT_FOUND, f"Method not found: {method}",
                           {"methods": sorted(self.methods)})
        version = ctx.version
        if method == "initialize":
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            version = requested if requested in SUPPORTED_VERSIONS else LATEST
        try:
            parsed = methods.parse_client_request(method, version, params)
        except ValidationError as e:
            raise RPCError(mcp_types.INVALID_PARAMS, f"Invalid params for {method}: "
                           + "; ".join(_problem(error) for error in e.errors())) from None
        result = await handler(parsed, Context(version, ctx.disconnected, ctx.gone))
        return methods.serialize_server_result(method, version, result)

    async def initialize(self, request: mcp_types.InitializeRequest, ctx: Context) -> dict[str, Any]:
        w, h = await self.declared()
        return {
            "protocolVersion": ctx.version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "agentdesktop", "title": "agentdesktop", "version": __version__},
            "instructions": (
                f"A Linux desktop. Screenshots are {w}x{h} pixels and every coordinate the "
                "computer tools take or give is a pixel of them. Use computer_batch for several "
                "actions in one call."),
        }

    async def ping(self, request: mcp_types.PingRequest, ctx: Context) -> dict[str, Any]:
        return {}

    async def listTools(self, request: mcp_types.ListToolsRequest, ctx: Context) -> dict[str, Any]:
        declared = await self.declared()
        return {"tools": tools.toolList(declared, structured=ctx.version != "2025-03-26")}

    async def callTool(self, request: mcp_types.CallToolRequest, ctx: Context) -> dict[str, Any]:
        name, arguments = request.params.name, request.params.arguments or {}
        try:
            result = await tools.callTool(self.state, name, arguments, ctx.disconnected, ctx.gone)
        except tools.UnknownTool:
            names = [t["name"] for t in tools.toolList((0, 0), False)]
            raise RPCError(mcp_types.INVALID_PARAMS, f"Unknown tool: {name}",
                           {"tools": names}) from None
        if ctx.version == "2025-03-26":
            result.pop("structuredContent", None)
        return result

    async def declared(self) -> tuple[int, int]:
        """The screenshot space (the recommended size), starting the desktop if need be."""
        try:
            info = await ensureDesktop(self.state)
        except APIError as e:
            raise RPCError(mcp_types.INTERNAL_ERROR, f"{e.message} {e.detail}".strip()) from None
        return recommended(info)


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))
