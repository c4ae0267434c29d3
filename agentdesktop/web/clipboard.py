"""
C{/api/v0/desktop/clipboard}: read a selection's text (C{GET}) or make the
service own it with new text (C{POST}), UTF-8 both ways.
"""

from __future__ import annotations

from typing import Any

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import SELECTIONS
from agentdesktop.request import ClipboardWrite, decodeClipboardWrite, decodeSelection
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import (
    CONTROLLED,
    START_FAILED,
    Operation,
    Param,
    Response,
    integer,
    nullable,
    obj,
    string,
)
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop

SELECTION = string("clipboard (default) or primary, in any case.", enum=list(SELECTIONS))


class ClipboardEndpoint(Endpoint):
    """C{GET ?selection=clipboard|primary} → C{{"text"}}; C{POST {"text", "selection"}}."""

    api = {
        "GET": Operation(
            "readClipboard", "Read a selection's text", tags=["beyond pixels"],
            query=(Param("selection", SELECTION),),
            responses={
                200: Response("Its text; null when nobody owns it or it holds no text.",
                              obj({"text": nullable(string())}, ["text"], closed=True)),
                400: "`Unknown selection: <name>.`",
                500: "`Failed to read clipboard.` (the owner did not answer in time), or "
                     + START_FAILED,
            },
        ),
        "POST": Operation(
            "writeClipboard", "Own a selection with this text", tags=["beyond pixels"],
            description="The service owns the selection and serves the text (UTF-8, and "
                        "Latin-1 as STRING) until another client takes it.",
            body=obj({"text": string("At most 1 MiB in UTF-8."), "selection": SELECTION},
                     ["text"]),
            responses={
                200: Response("Set.", obj({
                    "message": string(enum=["Clipboard set."]),
                    "selection": string(enum=list(SELECTIONS)),
                    "bytes": integer("The text's length in UTF-8."),
                }, ["message", "selection", "bytes"], closed=True)),
                409: CONTROLLED,
                413: "The body, or `Clipboard text too large.` (over 1 MiB in UTF-8).",
                500: "`Failed to set clipboard.`, or " + START_FAILED,
            },
        ),
    }

    async def handle_GET(self, call: Call) -> Any:
        call.action = "clipboard/read"
        return await readClipboard(self.state, decodeSelection(call.arg("selection")))

    async def handle_POST(self, call: Call) -> Any:
        call.action = "clipboard/write"
        return await writeClipboard(self.state, decodeClipboardWrite(call.body()))


async def readClipboard(state: ServiceState, selection: str) -> dict[str, Any]:
    """C{{"text"}} of SELECTION (C{None} when nobody owns it)."""
    await ensureDesktop(state)
    try:
        text = await state.desktop.readClipboard(selection)
    except DesktopError as e:
        raise APIError(500, "Failed to read clipboard.", str(e)) from None
    return {"text": text}


async def writeClipboard(state: ServiceState, request: ClipboardWrite) -> dict[str, Any]:
    """Own the selection with the text: agent input (the lease applies)."""
    await ensureDesktop(state)
    try:
        # What a person copies is theirs while they hold control.
        async with state.runner.exclusive():
            await state.desktop.writeClipboard(request.selection, request.text)
    except ValueError as e:
        raise APIError(400, "Invalid clipboard text.", str(e)) from None
    except DesktopError as e:
        raise APIError(500, "Failed to set clipboard.", str(e)) from None
    return {
        "message": "Clipboard set.",
        "selection": request.selection,
        "bytes": len(request.text.encode("utf-8")),
    }
