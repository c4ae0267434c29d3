"""
C{/api/v0/desktop/launch} (start a program, list what runs) and
C{/api/v0/desktop/open} (a path or URL with the default application).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentdesktop import geometry
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import Launched
from agentdesktop.request import MAX_LAUNCH_TIMEOUT_MS, LaunchRequest, decodeLaunch, decodeOpen
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import (
    CONTROLLED,
    START_FAILED,
    WINDOW,
    Operation,
    Response,
    boolean,
    integer,
    nullable,
    obj,
    string,
)
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop
from agentdesktop.web.windows import windowJSON

PID = integer("The process id (it leads its own process group).")


def rfc3339(seconds: float) -> str:
    """C{1700000000.5} → C{"2023-11-14T22:13:20.500Z"}."""
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def launchedJSON(launched: Launched) -> dict[str, Any]:
    return {
        "pid": launched.pid,
        "command": list(launched.command),
        "started_at": rfc3339(launched.startedAt),
    }


class LaunchEndpoint(Endpoint):
    """
    C{POST {"command": [...], "wait_for_window", "timeout_ms"}} →
    C{{"pid", "window"}}; C{GET} → C{{"processes": [...]}}.
    """

    api = {
        "GET": Operation(
            "launched", "The launched programs still running", tags=["beyond pixels"],
            responses={200: Response("What runs.", obj({"processes": {"type": "array", "items": obj({
                "pid": PID,
                "command": {"type": "array", "items": string()},
                "started_at": string(format="date-time"),
            }, ["pid", "command", "started_at"], closed=True)}}, ["processes"], closed=True))},
        ),
        "POST": Operation(
            "launch", "Start a program on the desktop (argv, never a shell)",
            tags=["beyond pixels"],
            body=obj({
                "command": {"type": "array", "items": string(), "minItems": 1,
                            "description": "argv: the program (found on the desktop's PATH), "
                                           "then its arguments."},
                "wait_for_window": boolean("Wait for its first window (default false)."),
                "timeout_ms": integer("How long to wait for it (default 10000).", minimum=0,
                                      maximum=MAX_LAUNCH_TIMEOUT_MS),
                "scaled_width": integer(),
                "scaled_height": integer(),
            }, ["command"]),
            responses={
                200: Response("Started; window is null when none appeared in time (the "
                              "program keeps running).", obj(
                                  {"pid": PID, "window": nullable(WINDOW)}, ["pid", "window"],
                                  closed=True)),
                400: "The request is wrong, or `Cannot launch \"<program>\".` (not found or "
                     "not executable on the desktop's PATH).",
                409: CONTROLLED,
                500: "`Failed to launch.`, or " + START_FAILED,
            },
        ),
    }

    async def handle_GET(self, call: Call) -> Any:
        call.action = "launch/list"
        return {"processes": [launchedJSON(p) for p in self.state.desktop.launched()]}

    async def handle_POST(self, call: Call) -> Any:
        call.action = "launch"
        return await launch(self.state, decodeLaunch(call.body()))


async def launch(state: ServiceState, request: LaunchRequest) -> dict[str, Any]:
    """C{{"pid", "window"}}: refused while a person holds control."""
    info = await ensureDesktop(state)
    # No input lock: the wait for a window may be long.
    state.runner.checkInput()
    try:
        result = await state.desktop.launch(request.command, request.waitForWindow, request.timeoutMs)
    except ValueError as e:
        raise APIError(400, f'Cannot launch "{request.command[0]}".', str(e)) from None
    except DesktopError as e:
        raise APIError(500, "Failed to launch.", str(e)) from None
    window = None
    if result.window is not None:
        declared = geometry.declaredSize(info.size, request.scaled_width, request.scaled_height)
        window = windowJSON(result.window, info.size, declared)
    return {"pid": result.process.pid, "window": window}


class OpenEndpoint(Endpoint):
    """C{POST {"target": "<path or URL>"}} → C{{"pid"}} once C{xdg-open} started."""

    api = {"POST": Operation(
        "open", "Open a path or URL with the desktop's default application",
        tags=["beyond pixels"],
        body=obj({"target": string("A URL, or an absolute path that exists (~ is the desktop's "
                                   "home).", minLength=1)}, ["target"]),
        responses={
            200: Response("xdg-open started (it is not waited for).", obj(
                {"pid": PID}, ["pid"], closed=True)),
            400: "The request is wrong, or `Cannot open target.` (empty, relative, or a path "
                 "that does not exist).",
            409: CONTROLLED,
            500: "`Failed to open target.`, or " + START_FAILED,
        },
    )}

    async def handle_POST(self, call: Call) -> Any:
        call.action = "open"
        target = decodeOpen(call.body())
        await ensureDesktop(self.state)
        self.state.runner.checkInput()
        try:
            launched = await self.state.desktop.openTarget(target)
        except ValueError as e:
            raise APIError(400, "Cannot open target.", str(e)) from None
        except DesktopError as e:
            raise APIError(500, "Failed to open target.", str(e)) from None
        return {"pid": launched.pid}
