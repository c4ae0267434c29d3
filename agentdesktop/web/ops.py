"""
Operations routes at the site's root (SPEC section 17): C{GET /metrics}
(Prometheus) and C{GET /healthz} (probes).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from agentdesktop import __version__
from agentdesktop.errors import DesktopError
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import Operation, Response, integer, obj, string
from agentdesktop.web.resource import Call, Endpoint, Page, writeJSON

#: How long a probe waits for a desktop that is starting before it answers 503.
HEALTH_TIMEOUT = 10.0

UNAVAILABLE = "The desktop is not running and could not start."


class MetricsEndpoint(Endpoint):
    """
    C{GET /metrics}: the service's metrics in Prometheus text format (or
    OpenMetrics, when the scraper asks for it).  It needs the bearer token
    when one is set, unless C{--metrics-without-auth}.
    """

    api = {"GET": Operation(
        "metrics", "Prometheus metrics", tags=["operations"],
        description="Prometheus text format (OpenMetrics when the Accept header asks for it); "
                    "docs/api.md lists the metrics.",
        responses={200: Response("The metrics.", {"type": "string"}, contentType="text/plain")},
    )}

    def __init__(self, state: ServiceState) -> None:
        super().__init__(state)
        self.public = state.metricsWithoutAuth

    async def handle_GET(self, call: Call) -> Any:
        call.action = "metrics"
        accept = call.request.getHeader(b"accept")
        body, contentType = self.state.metrics.exposition(
            accept.decode("latin-1") if accept is not None else None
        )
        return Page(body, contentType.encode("latin-1"))


class HealthEndpoint(Endpoint):
    """
    C{GET /healthz}: 200 when the desktop runs or can start (it is started
    if it is not running, so a probe right after start-up waits for it),
    503 with the reason otherwise.  Public, for probes.
    """

    public = True
    api = {"GET": Operation(
        "health", "Whether the desktop runs (or can start)", tags=["operations"],
        description="Starts the desktop when it is not running; waits for a start in progress "
                    f"(at most {HEALTH_TIMEOUT:g} s). No token needed.",
        responses={
            200: Response("The desktop runs.", obj({
                "status": string(enum=["ok"]),
                "display": string("The X display."),
                "width": integer(),
                "height": integer(),
                "version": string(),
            }, ["status", "display", "width", "height", "version"], closed=True)),
            503: Response("The desktop is not running and could not start (detail: why), or "
                          "the service is shutting down.", obj({
                              "status": string(enum=["unavailable"]),
                              "message": string(),
                              "detail": string(),
                          }, ["message"], closed=True)),
        },
    )}

    def __init__(self, state: ServiceState, clock: IReactorTime) -> None:
        super().__init__(state)
        self.clock = clock

    async def handle_GET(self, call: Call) -> Any:
        call.action = "healthz"
        starting = self.state.desktop.start()
        starting.addTimeout(HEALTH_TIMEOUT, self.clock)
        try:
            info = await starting
        except DesktopError as e:
            reason = str(e)
        except defer.TimeoutError:
            reason = f"the desktop did not finish starting within {HEALTH_TIMEOUT:g} s"
        else:
            return {"status": "ok", "display": info.display, "width": info.width,
                    "height": info.height, "version": __version__}
        call.status = 503
        if not call.gone:
            writeJSON(call.request, 503,
                      {"status": "unavailable", "message": UNAVAILABLE, "detail": reason})
        return None
