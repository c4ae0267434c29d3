"""
The core routes: C{/action} and C{/info}.
"""

from __future__ import annotations

from typing import Any

from agentdesktop import __version__, geometry
from agentdesktop.actions import Space, prepare
from agentdesktop.request import decodeAction
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop


class ActionEndpoint(Endpoint):
    """C{POST /action}: one action, in the order SPEC section 5 gives."""

    async def handle_POST(self, call: Call) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = call.body()
        info = await ensureDesktop(self.state)
        req = decodeAction(body)
        call.action = req.action
        step = prepare(req, Space.of(info.size, req))
        return await self.state.runner.run(step, call.disconnected())


class InfoEndpoint(Endpoint):
    """C{GET /info}: sizes, display and version."""

    async def handle_GET(self, call: Call) -> Any:
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
