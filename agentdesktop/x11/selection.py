"""
X selections (the clipboard) through python-xlib, per the ICCCM: the
service owns a selection itself (L{SelectionOwner}, one thread with its own
connection, answering C{SelectionRequest}s until another client takes the
selection), and reads one by asking its owner (L{readSelection}, blocking,
run in a worker thread).  Text over the server's largest request goes by
C{INCR} both ways.

The conversions and the C{INCR} chunking are plain functions and classes
(L{encodeTarget}, L{decodeText}, L{IncrTransfer}); the rest talks to X.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from Xlib import X, Xatom
from Xlib.error import ConnectionClosedError, XError
from Xlib.protocol import event as xevent

from agentdesktop.errors import DesktopError
from agentdesktop.x11.session import XSession, connect

log = Logger()

#: The targets the owner offers, besides TARGETS and TIMESTAMP.
TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "TEXT", "STRING")

#: The bytes of a ChangeProperty request besides its data.
CHANGE_PROPERTY_HEADER = 24

#: Data per step of an INCR transfer we serve.
INCR_CHUNK = 64 * 1024

#: How long the owner waits for a requestor's next step of an INCR transfer.
INCR_STEP_TIMEOUT = 10.0

#: How long a read waits for the owner's answer (each step of INCR too).
READ_STEP_TIMEOUT = 5.0

#: The longest a read may take in all.
READ_TOTAL_TIMEOUT = 30.0

#: The most text a read accepts from an owner.
MAX_READ_BYTES = 16 * 1024 * 1024

_SELECTION_ATOMS = {"clipboard": "CLIPBOARD", "primary": "PRIMARY"}


def windowId(window: Any) -> int:
    """The id of a python-xlib window, or the integer a reply gave (C{X.NONE})."""
    return window if isinstance(window, int) else int(window.id)


def selectionAtomName(selection: str) -> str:
    """C{"clipboard"} → C{"CLIPBOARD"}; C{ValueError} for an unknown name."""
    try:
        return _SELECTION_ATOMS[selection]
    except KeyError:
        raise ValueError(f"unknown selection {selection!r}") from None


# -- conversions (pure)


def latin1(text: str) -> bytes:
    """
    TEXT as an ICCCM C{STRING}: ISO Latin-1; a character Latin-1 lacks
    becomes C{?}.
    """
    return text.encode("latin-1", "replace")


def encodeTarget(target: str, text: str) -> tuple[str, bytes] | None:
    """
    The property type and bytes that answer a request for TARGET, or
    C{None} for a target that is not text.  C{TEXT} (the owner's choice)
    is C{STRING} when Latin-1 holds the text, else C{UTF8_STRING}.
    """
    if target in ("UTF8_STRING", "text/plain;charset=utf-8"):
        return target, text.encode("utf-8")
    if target == "STRING":
        return "STRING", latin1(text)
    if target == "TEXT":
        try:
            return "STRING", text.encode("latin-1")
        except UnicodeEncodeError:
            return "UTF8_STRING", text.encode("utf-8")
    return None


def decodeText(propertyType: str, data: bytes) -> str:
    """Text from a converted selection: C{STRING} is Latin-1, the rest UTF-8."""
    if propertyType == "STRING":
        return data.decode("latin-1")
    return data.decode("utf-8", "replace")


def notBefore(time: int, since: int) -> bool:
    """
    Whether the server timestamp TIME is not earlier than SINCE (X
    timestamps are 32-bit milliseconds that wrap after 49.7 days).
    """
    return ((time - since) & 0xFFFFFFFF) < 0x80000000


def largestSingleProperty(maxRequestLength: int) -> int:
    """
    The most bytes one ChangeProperty can carry on a server whose maximum
    request length is MAXREQUESTLENGTH (in 4-byte units); more goes by
    INCR.
    """
    return maxRequestLength * 4 - CHANGE_PROPERTY_HEADER


class IncrTransfer:
    """
    The chunks of one INCR transfer: L{next} gives the data INCR_CHUNK
    bytes at a time, then one empty chunk that ends the transfer.
    """

    def __init__(self, data: bytes, chunk: int = INCR_CHUNK) -> None:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        self.data = data
        self.chunk = chunk
        self.offset = 0
        self.done = False

    def next(self) -> bytes:
        """The next chunk; C{b""} once (the end); C{ValueError} after that."""
        if self.done:
            raise ValueError("the transfer has ended")
        piece = self.data[self.offset : self.offset + self.chunk]
        self.offset += len(piece)
        if not piece:
            self.done = True
        return piece


# -- waiting for events on one connection


def waitEvent(
    display: Any, wanted: Callable[[Any], bool], deadline: float,
    other: Callable[[Any], None] | None = None,
) -> Any:
    """
    The first event on DISPLAY for which WANTED is true; every other event
    goes to OTHER (or is dropped).

    @raise DesktopError: when DEADLINE (C{time.monotonic()}) passes first.
    """
    while True:
        while display.pending_events():
            ev = display.next_event()
            if wanted(ev):
                return ev
            if other is not None:
                other(ev)
        left = deadline - time.monotonic()
        if left <= 0:
            raise DesktopError("the selection owner did not answer in time")
        select.select([display.fileno()], [], [], left)


# -- reading a selection (the requestor's side)


class ReadDeadline:
    """Each step of a read gets STEP seconds, the whole read TOTAL."""

    def __init__(self, step: float = READ_STEP_TIMEOUT, total: float = READ_TOTAL_TIMEOUT) -> None:
        self.step = step
        self.end = time.monotonic() + total

    def next(self) -> float:
        """The deadline (C{time.monotonic()}) of the next step."""
        return min(time.monotonic() + self.step, self.end)


def _readProperty(window: Any, prop: int) -> tuple[int, bytes]:
    """The whole of PROP on WINDOW as (type, bytes), then delete it."""
    reply = window.get_property(prop, X.AnyPropertyType, 0, MAX_READ_BYTES // 4 + 1)
    window.delete_property(prop)
    if reply is None:
        return X.NONE, b""
    if reply.bytes_after:
        raise DesktopError(f"the selection holds more than {MAX_READ_BYTES} bytes")
    value = reply.value
    data = bytes(value) if reply.format == 8 else value.tobytes()
    return reply.property_type, data


def _serverTime(session: XSession, window: Any, deadline: float) -> int:
    """A timestamp from the server: a zero-length append to WINDOW's property."""
    d = session.display
    stamp = d.intern_atom("_AGENTDESKTOP_TIMESTAMP")
    window.change_property(stamp, Xatom.STRING, 8, b"", mode=X.PropModeAppend)
    d.flush()
    ev = waitEvent(
        d, lambda e: e.type == X.PropertyNotify and e.window.id == window.id
        and e.atom == stamp, deadline,
    )
    return int(ev.time)


def _convert(
    session: XSession, window: Any, selection: int, target: str, stamp: int,
    deadline: ReadDeadline,
) -> tuple[str, bytes] | None:
    """Ask the owner to convert SELECTION to TARGET; (type, bytes) or C{None} if refused."""
    d = session.display
    prop = d.intern_atom("_AGENTDESKTOP_SELECTION")
    window.convert_selection(selection, d.intern_atom(target), prop, stamp)
    d.flush()
    ev = waitEvent(
        d, lambda e: e.type == X.SelectionNotify and e.requestor.id == window.id, deadline.next()
    )
    if ev.property == X.NONE:
        return None
    kind, data = _readProperty(window, ev.property)
    if kind == d.intern_atom("INCR"):
        kind, data = _receiveIncr(session, window, ev.property, deadline)
    return (d.get_atom_name(kind) if kind else ""), data


def _receiveIncr(
    session: XSession, window: Any, prop: int, deadline: ReadDeadline
) -> tuple[int, bytes]:
    """The chunks of an INCR transfer (our deleting the INCR property started it)."""
    d = session.display
    parts: list[bytes] = []
    size = 0
    kind = X.NONE
    while True:
        waitEvent(
            d, lambda e: e.type == X.PropertyNotify and e.window.id == window.id
            and e.atom == prop and e.state == X.PropertyNewValue, deadline.next(),
        )
        chunkType, chunk = _readProperty(window, prop)
        if not chunk:
            return kind, b"".join(parts)
        kind = chunkType
        size += len(chunk)
        if size > MAX_READ_BYTES:
            raise DesktopError(f"the selection holds more than {MAX_READ_BYTES} bytes")
        parts.append(chunk)


def readSelection(
    session: XSession, selection: str, stepTimeout: float = READ_STEP_TIMEOUT
) -> str | None:
    """
    The text of SELECTION (C{"clipboard"} or C{"primary"}) as its owner
    gives it, asking for C{UTF8_STRING} and then C{STRING}; C{None} when
    nobody owns it or the owner has no text.  Blocks; run it in a worker.
    (A failed read leaves events behind: the worker then drops the
    connection, so the next read cannot mistake them for its own.)

    @raise DesktopError: when the owner does not answer a step within
        STEPTIMEOUT seconds, or the whole read within L{READ_TOTAL_TIMEOUT}.
    """
    d = session.display
    atom = d.intern_atom(selectionAtomName(selection))
    if windowId(d.get_selection_owner(atom)) == X.NONE:
        return None
    window = session.root.create_window(
        -1, -1, 1, 1, 0, 0, window_class=X.InputOnly, event_mask=X.PropertyChangeMask,
    )
    try:
        deadline = ReadDeadline(stepTimeout)
        stamp = _serverTime(session, window, deadline.next())
        for target in ("UTF8_STRING", "STRING"):
            answer = _convert(session, window, atom, target, stamp, deadline)
            if answer is not None:
                return decodeText(*answer)
        return None
    finally:
        window.destroy()
        d.flush()


# -- owning a selection (the owner's side)


@dataclass
class _Owned:
    text: str
    time: int


@dataclass
class _Sending:
    """An INCR transfer to one requestor's property."""

    requestor: Any
    prop: int
    kind: int
    transfer: IncrTransfer
    deadline: float


@dataclass
class _Command:
    selection: str
    text: str
    done: defer.Deferred[None] = field(default_factory=defer.Deferred)


class SelectionServer:
    """
    The X side of owning selections, on one connection used from one
    thread: take a selection (L{own}), and L{handle} the events that
    follow — conversion requests, C{INCR} steps, losing the selection.
    """

    def __init__(self, display: str, xauthority: str | None) -> None:
        self.display = connect(display, xauthority)
        self.display.set_error_handler(self._xError)
        self.root = self.display.screen().root
        self.window = self.root.create_window(
            -1, -1, 1, 1, 0, 0, window_class=X.InputOnly, event_mask=X.PropertyChangeMask,
        )
        self.owned: dict[int, _Owned] = {}
        #: Unexpected failures while answering events, for the owner to log.
        self.problems: list[str] = []
        self.sending: dict[tuple[int, int], _Sending] = {}
        self._atoms: dict[str, int] = {}
        self.singleLimit = largestSingleProperty(self.display.display.info.max_request_length)
        self.display.flush()

    def atom(self, name: str) -> int:
        if name not in self._atoms:
            self._atoms[name] = self.display.intern_atom(name)
        return self._atoms[name]

    def _xError(self, error: Any, request: Any = None) -> None:
        # A requestor that went away mid-transfer: its transfer times out.
        pass

    def close(self) -> None:
        try:
            self.display.close()
        except Exception:
            pass

    def own(self, selection: str, text: str) -> None:
        """Own SELECTION with TEXT; L{DesktopError} if the server disagrees."""
        atom = self.atom(selectionAtomName(selection))
        stamp = self._serverTime()
        self.window.set_selection_owner(atom, stamp)
        if windowId(self.display.get_selection_owner(atom)) != self.window.id:
            raise DesktopError(f"could not take the {selection} selection")
        self.owned[atom] = _Owned(text, stamp)

    def _serverTime(self) -> int:
        stamp = self.atom("_AGENTDESKTOP_TIMESTAMP")
        self.window.change_property(stamp, Xatom.STRING, 8, b"", mode=X.PropModeAppend)
        self.display.flush()
        ev = waitEvent(
            self.display,
            lambda e: e.type == X.PropertyNotify and e.window.id == self.window.id
            and e.atom == stamp,
            time.monotonic() + READ_STEP_TIMEOUT, other=self.handle,
        )
        return int(ev.time)

    def handle(self, ev: Any) -> None:
        """
        Answer one event from the server.  An X error (a requestor that
        vanished, a bad atom) costs that request only; anything else but a
        lost connection is logged and costs that event only.
        """
        try:
            if ev.type == X.SelectionRequest:
                self._request(ev)
            elif ev.type == X.SelectionClear:
                # Ours no longer, unless we took it again since (a stale event).
                if windowId(self.display.get_selection_owner(ev.atom)) != self.window.id:
                    self.owned.pop(ev.atom, None)
            elif ev.type == X.PropertyNotify and ev.state == X.PropertyDelete:
                self._step(ev.window.id, ev.atom)
        except XError:
            pass
        except ConnectionClosedError:
            raise
        except Exception as e:
            self.problems.append(repr(e))

    def _request(self, ev: Any) -> None:
        prop = ev.property if ev.property != X.NONE else ev.target  # obsolete requestors
        owned = self.owned.get(ev.selection)
        answered = False
        # ICCCM 2.2: refuse a request made before we owned the selection.
        if owned is not None and (ev.time == X.CurrentTime or notBefore(ev.time, owned.time)):
            try:
                answered = self._answer(ev.requestor, prop, ev.target, owned)
            except XError:
                answered = False
        notify = xevent.SelectionNotify(
            time=ev.time, requestor=ev.requestor, selection=ev.selection,
            target=ev.target, property=prop if answered else X.NONE,
        )
        ev.requestor.send_event(notify, event_mask=0)
        self.display.flush()

    def _answer(self, requestor: Any, prop: int, target: int, owned: _Owned) -> bool:
        name = self.display.get_atom_name(target)
        if name == "TARGETS":
            names = ("TARGETS", "TIMESTAMP", *TEXT_TARGETS)
            requestor.change_property(prop, Xatom.ATOM, 32, [self.atom(n) for n in names])
            return True
        if name == "TIMESTAMP":
            requestor.change_property(prop, Xatom.INTEGER, 32, [owned.time])
            return True
        converted = encodeTarget(name, owned.text)
        if converted is None:
            return False
        kind, data = self.atom(converted[0]), converted[1]
        if len(data) <= self.singleLimit:
            requestor.change_property(prop, kind, 8, data)
            return True
        # INCR: announce a lower bound of the size; each deletion of the
        # property by the requestor asks for the next chunk.
        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, self.atom("INCR"), 32, [len(data)])
        chunk = min(INCR_CHUNK, self.singleLimit)
        self.sending[(requestor.id, prop)] = _Sending(
            requestor, prop, kind, IncrTransfer(data, chunk),
            time.monotonic() + INCR_STEP_TIMEOUT,
        )
        return True

    def _step(self, window: int, prop: int) -> None:
        sending = self.sending.get((window, prop))
        if sending is None:
            return
        piece = sending.transfer.next()
        sending.requestor.change_property(prop, sending.kind, 8, piece)
        sending.deadline = time.monotonic() + INCR_STEP_TIMEOUT
        if sending.transfer.done:
            self._finish(sending)
        self.display.flush()

    def _finish(self, sending: _Sending) -> None:
        del self.sending[(sending.requestor.id, sending.prop)]
        if not any(s.requestor.id == sending.requestor.id for s in self.sending.values()):
            sending.requestor.change_attributes(event_mask=0)

    def expire(self) -> None:
        """Give up INCR transfers whose requestor stopped asking."""
        now = time.monotonic()
        for sending in [s for s in self.sending.values() if s.deadline <= now]:
            self._finish(sending)
        self.display.flush()

    def nextDeadline(self) -> float | None:
        return min((s.deadline for s in self.sending.values()), default=None)


class SelectionOwner:
    """
    A thread that owns selections for the service: L{own} hands it text,
    it serves that text until another client takes the selection or
    L{stop} is called.  Its loop waits in C{select()} on its X connection
    and a wake-up pipe, so stopping never waits on a blocked thread; when
    the X server goes away, the thread ends by itself.

    @ivar key: names the X server's life it serves (as in L{XWorker}).
    """

    def __init__(self, reactor: Any, display: str, xauthority: str | None, key: object) -> None:
        self.reactor = reactor
        self.key = key
        self._address = (display, xauthority)
        self._commands: deque[_Command] = deque()
        self._lock = threading.Lock()
        self._stopping = False
        self._wakeR, self._wakeW = os.pipe()
        os.set_blocking(self._wakeR, False)
        os.set_blocking(self._wakeW, False)
        self._pipeOpen = True
        self._ended: defer.Deferred[None] = defer.Deferred()
        self.alive = True
        self._thread = threading.Thread(
            target=self._run, name="agentdesktop-selection", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def own(self, selection: str, text: str) -> defer.Deferred[None]:
        """Own SELECTION with TEXT.  @return: C{Deferred[None]}; fails with L{DesktopError}."""
        command = _Command(selection, text)
        with self._lock:
            if not self.alive:
                return defer.fail(DesktopError("the selection owner has stopped"))
            self._commands.append(command)
        self._wake()
        return command.done

    def stop(self) -> defer.Deferred[None]:
        """Stop serving.  @return: C{Deferred[None]}, fired once the thread ended."""
        self._stopping = True
        self._wake()
        return self._ended

    def _wake(self) -> None:
        with self._lock:
            if self._pipeOpen:
                try:
                    os.write(self._wakeW, b"x")
                except BlockingIOError:
                    pass  # it is awake already

    def _drainWake(self) -> None:
        try:
            while os.read(self._wakeR, 512):
                pass
        except OSError:
            pass

    def _run(self) -> None:
        server: SelectionServer | None = None
        why: BaseException | None = None
        try:
            server = SelectionServer(*self._address)
            self._loop(server)
        except Exception as e:
            why = e
        finally:
            self._end(server, why)

    def _loop(self, server: SelectionServer) -> None:
        while not self._stopping:
            self._drainWake()
            for command in self._take():
                self._runCommand(server, command)
            server.expire()
            for problem in server.problems:
                self.reactor.callFromThread(
                    log.error, "The selection owner failed to answer: {problem}", problem=problem
                )
            server.problems.clear()
            deadline = server.nextDeadline()
            wait = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            self._waitOnce(server, wait)

    def _waitOnce(self, server: SelectionServer, wait: float) -> None:
        """Handle what is queued, then wait up to WAIT seconds for more."""
        display = server.display
        while display.pending_events():
            server.handle(display.next_event())
        readable, _, _ = select.select([display.fileno(), self._wakeR], [], [], wait)
        if display.fileno() in readable:
            while display.pending_events():
                server.handle(display.next_event())

    def _take(self) -> Iterator[_Command]:
        with self._lock:
            commands, self._commands = list(self._commands), deque()
        return iter(commands)

    def _runCommand(self, server: SelectionServer, command: _Command) -> None:
        try:
            server.own(command.selection, command.text)
        except Exception as e:
            failure = e if isinstance(e, DesktopError | ValueError) else DesktopError(str(e))
            self.reactor.callFromThread(command.done.errback, failure)
        else:
            self.reactor.callFromThread(command.done.callback, None)

    def _end(self, server: SelectionServer | None, why: BaseException | None) -> None:
        with self._lock:
            self.alive = False
            pending, self._commands = list(self._commands), deque()
            self._pipeOpen = False
            os.close(self._wakeR)
            os.close(self._wakeW)
        if server is not None:
            server.close()
        error = DesktopError(f"the selection owner stopped: {why}" if why else "stopped")
        for command in pending:
            self.reactor.callFromThread(command.done.errback, error)
        if why is not None and not self._stopping:
            self.reactor.callFromThread(
                log.info, "The selection owner ended: {why}", why=str(why) or repr(why)
            )
        self.reactor.callFromThread(self._ended.callback, None)
