"""
A Python client of the agentdesktop HTTP API, on treq.

    client = DesktopClient("http://127.0.0.1:8790", token)
    await client.left_click(640, 360, scaled_width=1280, scaled_height=720)
    shot = await client.screenshot(scaled_width=1280, scaled_height=720)

Every method returns a L{Deferred} (await it in an C{async def}).  Every
answer that is not a success raises L{DesktopAPIError}; a failure to reach
the service raises Twisted's own connection errors.  Method names are the
wire names of the actions and routes.
"""

from __future__ import annotations

import base64
import email
import email.message
import functools
import json
import re
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.web.client import Agent, HTTPConnectionPool

#: Where every route lives, under the service's root.
API_PREFIX = "/api/v0/desktop"

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _deferred(f: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Deferred[_T]]:
    """Make an C{async def} method return a L{Deferred}, usable from any Twisted code."""

    @functools.wraps(f)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        return Deferred.fromCoroutine(f(*args, **kwargs))

    return wrapper


class DesktopAPIError(Exception):
    """
    The service answered with an error (or with something that is not the
    answer the route promises).

    @ivar status: the HTTP status code.
    @ivar message: the error's fixed message (C{"Unknown action: foo"});
        for a body that is not the JSON error envelope, C{"HTTP <status>
        <reason>"}.
    @ivar detail: what exactly went wrong, or C{""}.
    @ivar body: the whole decoded JSON error body (some carry more, such as
        C{pending_safety_checks} on a 409), or C{None}.
    """

    def __init__(self, status: int, message: str, detail: str = "", body: Any = None) -> None:
        super().__init__(status, message, detail)
        self.status = status
        self.message = message
        self.detail = detail
        self.body = body

    def __str__(self) -> str:
        text = f"{self.status} {self.message}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True)
class Screenshot:
    """An image from C{screenshot}, C{zoom} or a batch's observation."""

    data: bytes
    width: int
    height: int
    format: str

    @classmethod
    def fromAnswer(cls, answer: Mapping[str, Any], status: int = 200) -> Screenshot:
        """
        Decode the image fields of an answer (C{screenshot_data}, ...).

        @raise DesktopAPIError: when they are missing or not base64.
        """
        try:
            return cls(
                base64.b64decode(answer["screenshot_data"], validate=True),
                int(answer["screenshot_width"]),
                int(answer["screenshot_height"]),
                str(answer.get("screenshot_format") or "png"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise unexpected(status, f"no image in the answer ({e!r})") from None


@dataclass(frozen=True)
class Recording:
    """A stopped recording: the MP4 video and its JPEG thumbnail (C{None} when absent)."""

    video: bytes
    thumbnail: bytes | None


def unexpected(status: int, detail: str) -> DesktopAPIError:
    return DesktopAPIError(status, "Unexpected response.", detail)


def apiBase(url: str) -> str:
    """
    The API prefix URL, ending in C{/}, for the service's root URL or for
    that prefix itself (with or without a trailing slash).

    @raise ValueError: for a URL that is not C{http(s)://host[...]}, or that
        has a query or fragment.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the URL must start with http:// or https:// and name a host, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the URL must have no query or fragment, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def _jsonable(value: Any) -> Any:
    """JSON for the vendors' SDK objects (pydantic models) in dialect calls."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encodeBody(body: Any) -> bytes:
    return json.dumps(body, default=_jsonable, ensure_ascii=False).encode("utf-8")


def errorFrom(status: int, phrase: bytes, content: bytes) -> DesktopAPIError:
    """The exception for an error answer: the JSON envelope, or whatever came instead."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail = body.get("detail") or ""
        if not isinstance(detail, str):
            detail = json.dumps(detail)
        return DesktopAPIError(status, body["message"], detail, body)
    reason = phrase.decode("latin-1").strip()
    message = f"HTTP {status} {reason}".rstrip()
    text = content.decode("utf-8", "replace").strip()
    return DesktopAPIError(status, message, text[:500], body)


def parseJSON(status: int, content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        text = content[:200].decode("utf-8", "replace")
        raise unexpected(status, f"the body is not JSON: {text!r}") from None


def _partBytes(part: email.message.Message) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise ValueError(f"the {part.get_content_type()} part holds no bytes")
    length = part.get("Content-Length")
    if length is not None and (not length.strip().isdigit() or int(length) != len(data)):
        raise ValueError(
            f"the {part.get_content_type()} part has {len(data)} bytes, its Content-Length says {length}"
        )
    return data


def parseRecording(contentType: str, body: bytes) -> Recording:
    """
    Split the C{multipart/mixed} answer of C{/recording/stop}: the video
    part (always first), then the thumbnail when there is one.

    @raise ValueError: when the body is not that.
    """
    message = email.message_from_bytes(b"Content-Type: " + contentType.encode("latin-1") + b"\r\n\r\n" + body)
    if message.get_content_type() != "multipart/mixed" or message.get_boundary() is None:
        raise ValueError(f"expected multipart/mixed with a boundary, got {contentType!r}")
    if message.defects:
        raise ValueError("malformed multipart: " + ", ".join(type(d).__name__ for d in message.defects))
    parts = [p for p in message.get_payload() if isinstance(p, email.message.Message)]
    if not parts or parts[0].get_content_type() != "video/mp4":
        raise ValueError("the first part is not video/mp4")
    video = _partBytes(parts[0])
    thumbnails = [_partBytes(p) for p in parts[1:] if p.get_content_type() == "image/jpeg"]
    return Recording(video, thumbnails[0] if thumbnails else None)


_CURSOR = re.compile(r"x=(-?\d+),y=(-?\d+)", re.IGNORECASE)


def _point(x: int, y: int) -> list[int]:
    return [x, y]


def _display(display: tuple[int, int] | Mapping[str, Any] | None) -> Any:
    if display is None or isinstance(display, Mapping):
        return display
    width, height = display
    return {"width": width, "height": height}


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class DesktopClient:
    """
    A client of one agentdesktop service.

    @param url: the service's root (C{http://127.0.0.1:8790}) or the API
        prefix under it (C{http://127.0.0.1:8790/api/v0/desktop}).
    @param token: the bearer token, when the service has one.  It is sent
        in C{Authorization: Bearer}, and never logged or shown in C{repr}.
    @param pool: the L{HTTPConnectionPool} to use; by default the client
        makes a persistent one of its own, closed by L{close}.
    @param reactor: the reactor; by default the global one.
    @param http: instead of a pool, anything with treq's C{request} method
        (L{treq.testing.StubTreq} in tests); without a reactor, recordings
        are then parsed in the calling thread rather than the reactor's
        thread pool.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        pool: HTTPConnectionPool | None = None,
        reactor: Any = None,
        http: Any = None,
    ) -> None:
        self.base = apiBase(url)
        self._token = token
        self._ownPool: HTTPConnectionPool | None = None
        self._reactor = reactor
        if http is None:
            from treq.client import HTTPClient

            if reactor is None:
                from twisted.internet import reactor
            if pool is None:
                pool = self._ownPool = HTTPConnectionPool(reactor, persistent=True)
            http = HTTPClient(Agent(reactor, pool=pool))
            self._reactor = reactor
        self._http = http

    def __repr__(self) -> str:
        token = "<set>" if self._token is not None else None
        return f"DesktopClient({self.base!r}, token={token})"

    def close(self) -> Deferred[None]:
        """Close the idle connections of the client's own pool."""
        if self._ownPool is None:
            return succeed(None)
        return self._ownPool.closeCachedConnections()

    async def __aenter__(self) -> DesktopClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the wire

    def _url(self, *segments: str | int) -> str:
        return self.base + "/".join(quote(str(s), safe="") for s in segments)

    async def _send(
        self, method: str, route: Sequence[str | int], body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        headers = {}
        data = None
        if self._token is not None:
            headers["Authorization"] = "Bearer " + self._token
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = encodeBody(body)
        response = await self._http.request(
            method, self._url(*route), params=_present(**(params or {})) or None,
            headers=headers, data=data, allow_redirects=False,
        )
        if not 200 <= response.code < 300:
            raise errorFrom(response.code, response.phrase, await response.content())
        return response

    @_deferred
    async def request(
        self, method: str, route: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """
        Any route, raw: C{METHOD <prefix>/ROUTE} with the JSON BODY (and
        query PARAMS, C{None} values left out); the decoded JSON answer.
        """
        response = await self._send(method, route.strip("/").split("/"), body, params)
        return parseJSON(response.code, await response.content())

    async def _json(
        self, method: str, route: Sequence[str | int], body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        response = await self._send(method, route, body, params)
        return parseJSON(response.code, await response.content())

    async def _field(self, name: str, method: str, route: Sequence[str | int], body: Any = None,
                     params: Mapping[str, Any] | None = None) -> Any:
        answer = await self._json(method, route, body, params)
        if not isinstance(answer, dict) or name not in answer:
            raise unexpected(200, f"no {name!r} in the answer: {answer!r}"[:300])
        return answer[name]

    # -- /info, /action, /batch

    @_deferred
    async def info(self) -> dict[str, Any]:
        """C{GET /info}: native size, recommended size, display, authority file, version."""
        return await self._json("GET", ["info"])

    @_deferred
    async def action(self, **body: Any) -> dict[str, Any]:
        """C{POST /action} with BODY as given (C{action="left_click", coordinate=[1, 2]}); the answer."""
        return await self._json("POST", ["action"], body)

    async def _act(self, action: str, **fields: Any) -> dict[str, Any]:
        return await self._json("POST", ["action"], {"action": action, **_present(**fields)})

    async def _output(self, action: str, **fields: Any) -> str:
        answer = await self._act(action, **fields)
        return str(answer.get("output", ""))

    @_deferred
    async def batch(
        self,
        actions: Iterable[Mapping[str, Any]],
        observe: Mapping[str, Any] | bool | None = None,
        scaled_width: int | None = None,
        scaled_height: int | None = None,
    ) -> dict[str, Any]:
        """
        C{POST /batch}: the answer (C{results}, C{failed_index}, and
        C{observation} when OBSERVE is given: C{True} for the defaults, or
        the C{observe} object).  A failing item is in the answer, not raised;
        L{Screenshot.fromAnswer} decodes the observation's image.
        """
        if observe is True:
            observe = {}
        elif observe is False:
            observe = None
        body = _present(actions=list(actions), observe=observe, scaled_width=scaled_width, scaled_height=scaled_height)
        return await self._json("POST", ["batch"], body)

    @_deferred
    async def screenshot(
        self,
        scaled_width: int | None = None,
        scaled_height: int | None = None,
        format: str | None = None,
        quality: int | None = None,
    ) -> Screenshot:
        """The whole screen at the declared size."""
        answer = await self._act(
            "screenshot", scaled_width=scaled_width, scaled_height=scaled_height, format=format, quality=quality
        )
        return Screenshot.fromAnswer(answer)

    @_deferred
    async def zoom(
        self,
        region: Sequence[int],
        scaled_width: int | None = None,
        scaled_height: int | None = None,
        format: str | None = None,
        quality: int | None = None,
    ) -> Screenshot:
        """REGION C{[x0, y0, x1, y1]} (declared space), fitted to the declared size."""
        answer = await self._act(
            "zoom", region=list(region), scaled_width=scaled_width, scaled_height=scaled_height,
            format=format, quality=quality,
        )
        return Screenshot.fromAnswer(answer)

    # -- the pointer

    async def _click(self, action: str, x: int, y: int, modifiers: str | None,
                     scaled_width: int | None, scaled_height: int | None) -> str:
        return await self._output(
            action, coordinate=_point(x, y), text=modifiers, scaled_width=scaled_width, scaled_height=scaled_height
        )

    @_deferred
    async def left_click(self, x: int, y: int, modifiers: str | None = None,
                         scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        """Click at (X, Y), holding MODIFIERS (C{"shift"}, C{"ctrl+alt"}); the output line."""
        return await self._click("left_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def right_click(self, x: int, y: int, modifiers: str | None = None,
                          scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("right_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def middle_click(self, x: int, y: int, modifiers: str | None = None,
                           scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("middle_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def double_click(self, x: int, y: int, modifiers: str | None = None,
                           scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("double_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def triple_click(self, x: int, y: int, modifiers: str | None = None,
                           scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("triple_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def back_click(self, x: int, y: int, modifiers: str | None = None,
                         scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("back_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def forward_click(self, x: int, y: int, modifiers: str | None = None,
                            scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("forward_click", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def mouse_move(self, x: int, y: int, modifiers: str | None = None,
                         scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        return await self._click("mouse_move", x, y, modifiers, scaled_width, scaled_height)

    @_deferred
    async def left_click_drag(
        self,
        start: Sequence[int] | None = None,
        end: Sequence[int] | None = None,
        *,
        path: Iterable[Sequence[int]] | None = None,
        modifiers: str | None = None,
        scaled_width: int | None = None,
        scaled_height: int | None = None,
    ) -> str:
        """Drag from START to END, or along PATH (C{[[x, y], ...]}, 2 to 1000 points)."""
        return await self._output(
            "left_click_drag",
            start_coordinate=None if start is None else list(start),
            coordinate=None if end is None else list(end),
            path=None if path is None else [list(p) for p in path],
            text=modifiers, scaled_width=scaled_width, scaled_height=scaled_height,
        )

    @_deferred
    async def left_mouse_down(self, coordinate: Sequence[int] | None = None,
                              scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        """Press the left button (at COORDINATE, when given)."""
        return await self._output(
            "left_mouse_down", coordinate=None if coordinate is None else list(coordinate),
            scaled_width=scaled_width, scaled_height=scaled_height,
        )

    @_deferred
    async def left_mouse_up(self, coordinate: Sequence[int] | None = None,
                            scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        """Release the left button (at COORDINATE, when given)."""
        return await self._output(
            "left_mouse_up", coordinate=None if coordinate is None else list(coordinate),
            scaled_width=scaled_width, scaled_height=scaled_height,
        )

    @_deferred
    async def scroll(self, x: int, y: int, direction: str = "down", amount: int = 3, modifiers: str | None = None,
                     scaled_width: int | None = None, scaled_height: int | None = None) -> str:
        """Turn the wheel AMOUNT clicks in DIRECTION (up, down, left, right) at (X, Y)."""
        return await self._output(
            "scroll", coordinate=_point(x, y), scroll_direction=direction, scroll_amount=amount,
            text=modifiers, scaled_width=scaled_width, scaled_height=scaled_height,
        )

    @_deferred
    async def cursor_position(self, scaled_width: int | None = None,
                              scaled_height: int | None = None) -> tuple[int, int]:
        """Where the pointer is, in the declared space."""
        output = await self._output("cursor_position", scaled_width=scaled_width, scaled_height=scaled_height)
        match = _CURSOR.fullmatch(output.strip())
        if match is None:
            raise unexpected(200, f"cursor_position answered {output!r}")
        return int(match.group(1)), int(match.group(2))

    # -- the keyboard and time

    @_deferred
    async def key(self, text: str, repeat: int | None = None) -> str:
        """Press the combination TEXT (C{"ctrl+shift+t"}; space-separated for a sequence), REPEAT times."""
        return await self._output("key", text=text, repeat=repeat)

    @_deferred
    async def key_down(self, text: str) -> str:
        return await self._output("key_down", text=text)

    @_deferred
    async def key_up(self, text: str) -> str:
        return await self._output("key_up", text=text)

    @_deferred
    async def hold_key(self, text: str, duration_ms: int) -> str:
        """Hold TEXT down for DURATION_MS milliseconds (0 to 60000)."""
        return await self._output("hold_key", text=text, duration=duration_ms)

    @_deferred
    async def type(self, text: str) -> str:
        """Type TEXT exactly (Unicode included)."""
        return await self._output("type", text=text)

    @_deferred
    async def wait(self, duration_ms: int) -> str:
        return await self._output("wait", duration=duration_ms)

    @_deferred
    async def reset_input(self) -> str:
        """Release every key and button anyone left pressed."""
        return await self._output("reset_input")

    # -- recording

    @_deferred
    async def start_recording(self, recording_id: str | None = None) -> str:
        """Start recording as RECORDING_ID (a new UUID when C{None}); that id."""
        recording_id = recording_id or str(uuid.uuid4())
        await self._json("POST", ["recording", "start"], {"recording_id": recording_id})
        return recording_id

    @_deferred
    async def stop_recording(self, recording_id: str) -> Recording:
        """Stop the recording; its video and thumbnail (stopping again gives them again)."""
        response = await self._send("POST", ["recording", "stop"], {"recording_id": recording_id})
        contentType = (response.headers.getRawHeaders("content-type") or [""])[0]
        body = await response.content()
        try:
            if self._reactor is None:
                return parseRecording(contentType, body)
            # The email parser takes seconds for a video of tens of megabytes.
            pool = self._reactor.getThreadPool()
            return await deferToThreadPool(self._reactor, pool, parseRecording, contentType, body)
        except ValueError as e:
            raise unexpected(response.code, str(e)) from None

    # -- clipboard, windows, programs

    @_deferred
    async def get_clipboard(self, selection: str = "clipboard") -> str | None:
        """The selection's text (C{"clipboard"} or C{"primary"}); C{None} when nobody owns it."""
        return await self._field("text", "GET", ["clipboard"], params={"selection": selection})

    @_deferred
    async def set_clipboard(self, text: str, selection: str = "clipboard") -> dict[str, Any]:
        """Own the selection with TEXT; the answer."""
        return await self._json("POST", ["clipboard"], {"text": text, "selection": selection})

    @_deferred
    async def windows(self, scaled_width: int | None = None,
                      scaled_height: int | None = None) -> list[dict[str, Any]]:
        """The managed windows (id, title, class, pid, rectangle in declared space, focused, minimized)."""
        params = {"scaled_width": scaled_width, "scaled_height": scaled_height}
        return await self._field("windows", "GET", ["windows"], params=params)

    @_deferred
    async def window_action(self, window_id: int | str, verb: str) -> dict[str, Any] | None:
        """VERB (focus, close, minimize, maximize, restore) the window; it afterwards, C{None} once gone."""
        return await self._field("window", "POST", ["windows", window_id, verb])

    @_deferred
    async def launch(self, command: Sequence[str], wait_for_window: bool = True,
                     timeout_ms: int = 10000) -> dict[str, Any]:
        """Start COMMAND (an argv list, no shell) on the desktop; C{{"pid": ..., "window": ... | None}}."""
        body = {"command": command, "wait_for_window": wait_for_window, "timeout_ms": timeout_ms}
        return await self._json("POST", ["launch"], body)

    @_deferred
    async def launched(self) -> list[dict[str, Any]]:
        """What was launched and still runs."""
        return await self._field("processes", "GET", ["launch"])

    @_deferred
    async def open(self, target: str) -> int:
        """Open a path or URL with the desktop's default application; the opener's pid."""
        return int(await self._field("pid", "POST", ["open"], {"target": target}))

    # -- sharing with people

    @_deferred
    async def control(self) -> dict[str, Any]:
        """Who controls the desktop: C{{"held", "holder", "since", ...}}."""
        return await self._json("GET", ["control"])

    @_deferred
    async def take_control(self, holder: str | None = None) -> dict[str, Any]:
        """Take control for a person (agent input then gets 409 until released)."""
        return await self._json("POST", ["control"], _present(take=True, holder=holder))

    @_deferred
    async def release_control(self) -> dict[str, Any]:
        return await self._json("POST", ["control"], {"take": False})

    # -- the vendors' own formats

    @_deferred
    async def anthropic(self, tool_uses: Iterable[Any],
                        display: tuple[int, int] | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Anthropic C{tool_use} blocks (dicts or SDK objects); C{{"content": [tool_result, ...]}}."""
        body = _present(tool_uses=list(tool_uses), display=_display(display))
        return await self._json("POST", ["dialects", "anthropic"], body)

    @_deferred
    async def anthropic_tool(self, version: str) -> dict[str, Any]:
        """The tool definition to put in a Messages request for tool type VERSION."""
        return await self._json("GET", ["dialects", "anthropic", "tool"], params={"version": version})

    @_deferred
    async def openai(self, call: Any, display: tuple[int, int] | Mapping[str, Any] | None = None,
                     acknowledged_safety_checks: Iterable[str] | None = None) -> dict[str, Any]:
        """One OpenAI C{computer_call} item; C{{"output": <computer_call_output>, "error": ...}}."""
        acks = None if acknowledged_safety_checks is None else list(acknowledged_safety_checks)
        body = _present(call=call, display=_display(display), acknowledged_safety_checks=acks)
        return await self._json("POST", ["dialects", "openai"], body)

    @_deferred
    async def gemini(self, function_calls: Iterable[Any], confirmed: Iterable[str] | None = None) -> dict[str, Any]:
        """Gemini C{function_call} parts; C{{"function_responses": [...]}}."""
        body = _present(function_calls=list(function_calls), confirmed=None if confirmed is None else list(confirmed))
        return await self._json("POST", ["dialects", "gemini"], body)


__all__ = ["API_PREFIX", "DesktopAPIError", "DesktopClient", "Recording", "Screenshot", "apiBase", "parseRecording"]
