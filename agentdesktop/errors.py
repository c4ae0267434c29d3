"""
Errors that become HTTP responses.  Pure: no reactor.
"""

from __future__ import annotations


class APIError(Exception):
    """
    A failure with the status, message and detail the client sees.

    @ivar status: the HTTP status code.
    @ivar message: the spec's message for this failure.
    @ivar detail: what exactly went wrong, or C{""}.
    """

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(status, message, detail)
        self.status = status
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, str]:
        """The JSON error envelope."""
        out = {"message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


def badRequest(message: str, detail: str = "") -> APIError:
    return APIError(400, message, detail)


def decodeError(detail: str) -> APIError:
    return APIError(400, "Failed to decode request body.", detail)


class DesktopError(Exception):
    """
    The desktop or one of its tools failed; C{str()} is a short detail that
    may be shown to the client (the tool's own error message).
    """


class ToolTimeout(DesktopError):
    """A tool did not finish within its time limit and was killed."""


class AccessibilityUnavailable(DesktopError):
    """The desktop's accessibility stack is not running; C{str()} says why."""


class UnknownWindow(DesktopError, LookupError):
    """
    No managed client window of the desktop has the id asked for (the web
    layer answers 404).  A LookupError too: the X worker keeps its
    connection after one.
    """


class InaccessibleWindow(DesktopError):
    """The window exists, but no accessible application draws it."""


class UnknownNode(DesktopError):
    """No accessible node has the id asked for (or it is gone)."""


class NodeActionError(DesktopError):
    """
    The node cannot do what was asked (no such action, no editable text, or
    the application refused); C{str()} says what it offers.
    """
