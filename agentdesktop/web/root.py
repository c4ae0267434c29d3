"""
The resource tree: every route, in one table: those under
C{/api/v0/desktop} (L{desktopRoutes}) and the few at the site's root
(L{siteRoutes}).
"""

from __future__ import annotations

from typing import Any

from twisted.web import resource

from agentdesktop.dialects.routes import dialectsTree
from agentdesktop.mcp.endpoint import MCPEndpoint
from agentdesktop.state import ServiceState
from agentdesktop.vnc import viewer, websocket
from agentdesktop.web import recording
from agentdesktop.web.accessibility import AccessibilityEndpoint
from agentdesktop.web.api import ActionEndpoint, BatchEndpoint, InfoEndpoint
from agentdesktop.web.control import ControlEndpoint, TicketsEndpoint
from agentdesktop.web.apps import LaunchEndpoint, OpenEndpoint
from agentdesktop.web.clipboard import ClipboardEndpoint
from agentdesktop.web.openapi import OpenAPIEndpoint
from agentdesktop.web.ops import HealthEndpoint, MetricsEndpoint
from agentdesktop.web.resource import Redirect, Tree
from agentdesktop.web.windows import WindowsEndpoint

PREFIX = (b"api", b"v0", b"desktop")


def desktopRoutes(state: ServiceState, reactor: Any) -> dict[bytes, resource.Resource]:
    """The children of C{/api/v0/desktop}."""
    return {
        b"action": ActionEndpoint(state),
        b"batch": BatchEndpoint(state),
        b"dialects": dialectsTree(state),
        b"accessibility": AccessibilityEndpoint(state),
        b"info": InfoEndpoint(state),
        b"control": ControlEndpoint(state),
        b"tickets": TicketsEndpoint(state),
        b"mcp": MCPEndpoint(state),
        b"recording": recording.recordingTree(state),
        b"clipboard": ClipboardEndpoint(state),
        b"windows": WindowsEndpoint(state),
        b"launch": LaunchEndpoint(state),
        b"open": OpenEndpoint(state),
        b"vnc": websocket.VNCEndpoint(state, reactor),
        b"": viewer.ViewerPage(state),
        b"novnc": viewer.NoVNCFiles(state),
        b"openapi.json": OpenAPIEndpoint(state),
    }


def siteRoutes(state: ServiceState, reactor: Any) -> dict[bytes, resource.Resource]:
    """The children of the site's root (besides C{api})."""
    return {
        b"": Redirect(state, b"/" + b"/".join(PREFIX) + b"/"),
        b"metrics": MetricsEndpoint(state),
        b"healthz": HealthEndpoint(state, reactor),
    }


def makeRoot(state: ServiceState, reactor: Any) -> resource.Resource:
    """
    The root of the site: C{/api/v0/desktop/...}, C{/metrics},
    C{/healthz}, and C{/} redirecting to the viewer; everything else is 404.
    """
    root = node = Tree(state)
    for name, route in siteRoutes(state, reactor).items():
        root.putChild(name, route)
    for name in PREFIX:
        child = Tree(state)
        node.putChild(name, child)
        node = child
    for name, route in desktopRoutes(state, reactor).items():
        node.putChild(name, route)
    return root
