"""
C{/api/v0/desktop/clipboard}: read a selection's text (C{GET}) or make the
service own it with new text (C{POST}), UTF-8 both ways.
"""

from __future__ import annotations

from typing import Any

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.request import decodeClipboardWrite, decodeSelection
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop


class ClipboardEndpoint(Endpoint):
    """C{GET ?selection=clipboard|primary} → C{{"text"}}; C{POST {"text", "selection"}}."""

    async def handle_GET(self, call: Call) -> Any:
        call.action = "clipboard/read"
        selection = decodeSelection(call.arg("selection"))
        await ensureDesktop(self.state)
        try:
            text = await self.state.desktop.readClipboard(selection)
        except DesktopError as e:
            raise APIError(500, "Failed to read clipboard.", str(e)) from None
        return {"text": text}

    async def handle_POST(self, call: Call) -> Any:
        call.action = "clipboard/write"
        request = decodeClipboardWrite(call.body())
        await ensureDesktop(self.state)
        try:
            # What a person copies is theirs while they hold control.
            async with self.state.runner.exclusive():
                await self.state.desktop.writeClipboard(request.selection, request.text)
        except ValueError as e:
            raise APIError(400, "Invalid clipboard text.", str(e)) from None
        except DesktopError as e:
            raise APIError(500, "Failed to set clipboard.", str(e)) from None
        return {
            "message": "Clipboard set.",
            "selection": request.selection,
            "bytes": len(request.text.encode("utf-8")),
        }
