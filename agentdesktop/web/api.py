"""
The core routes: C{/action} and C{/info}.
"""

from __future__ import annotations

from typing import Any

from agentdesktop import __version__, geometry
from agentdesktop.actions import Space, prepare
from agentdesktop.actions.batch import observe, prepareBatch
from agentdesktop.actions.table import ignoredFields
from agentdesktop.request import decodeAction, decodeObject
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
        call.ignore(ignoredFields(req))
        return await self.state.runner.run(step, call.disconnected())


class BatchEndpoint(Endpoint):
    """
    C{POST /batch}: validate every item, run them under one input lock,
    stop at the first failure, then observe the settled screen.
    """

    async def handle_POST(self, call: Call) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = call.body()
        info = await ensureDesktop(self.state)
        call.action = "batch"
        batch = prepareBatch(decodeObject(body), info.size)
        call.ignore(batch.ignored)
        runner = self.state.runner
        if any(step.input for step in batch.steps):
            # Refused as a whole, before anything runs, while a person
            # holds control.
            runner.checkInput()
        results, failed = await runner.runBatch(
            batch.steps, call.disconnected(), lambda: call.gone
        )
        out: dict[str, Any] = {"results": results, "failed_index": failed}
        if batch.observe is not None and not call.gone:
            out["observation"] = await observe(runner, batch.observe, batch.picture)
        return out


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
