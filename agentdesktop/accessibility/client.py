"""
A blocking AT-SPI2 client (jeepney), used from one worker thread only.

Reading a tree sends every call for a whole level of nodes before reading
any reply (the replies are matched by serial), so a tree costs one round
trip per level rather than several per node; every level waits at most
the call timeout, and the whole walk at most the walk timeout, so a hung
application cannot hang a request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jeepney import DBusAddress, MessageType, Properties, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import HeaderFields, Message

from agentdesktop.accessibility import model
from agentdesktop.accessibility.model import REGISTRY, ROOT_PATH, WindowTarget
from agentdesktop.errors import (
    AccessibilityUnavailable,
    DesktopError,
    InaccessibleWindow,
    NodeActionError,
    UnknownNode,
)
from agentdesktop.interfaces import AccessibleNode

ACCESSIBLE = "org.a11y.atspi.Accessible"
ACTION = "org.a11y.atspi.Action"
COMPONENT = "org.a11y.atspi.Component"
EDITABLE_TEXT = "org.a11y.atspi.EditableText"
A11Y_BUS = DBusAddress("/org/a11y/bus", "org.a11y.Bus", "org.a11y.Bus")
A11Y_STATUS = A11Y_BUS.with_interface("org.a11y.Status")
COORD_SCREEN = 0

#: Nodes read per batch of pipelined calls.
CHUNK = 128

Ref = tuple[str, str]


class Failed:
    """An error reply: its D-Bus error name and message."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    @classmethod
    def of(cls, message: Message) -> Failed:
        name = str(message.header.fields.get(HeaderFields.error_name, ""))
        body = message.body
        return cls(name, str(body[0]).strip() if body else name)

    def __str__(self) -> str:
        return self.text or self.name


#: A reply: its body, an error, or C{None} when none came in time.
Reply = tuple[Any, ...] | Failed | None


@dataclass(frozen=True)
class Limits:
    """How far a walk may go."""

    maxDepth: int
    maxNodes: int = 5000
    callTimeout: float = 2.0
    walkTimeout: float = 10.0


class Bus:
    """One connection to a message bus, with pipelined calls."""

    def __init__(self, address: str, timeout: float) -> None:
        self.conn = open_dbus_connection(address, auth_timeout=timeout)
        self.timeout = timeout

    def close(self) -> None:
        self.conn.close()

    def many(self, messages: Sequence[Message], deadline: float | None = None) -> list[Reply]:
        """Send all MESSAGES, then collect their replies until DEADLINE."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        serials = []
        for message in messages:
            serial = next(self.conn.outgoing_serial)
            self.conn.send(message, serial=serial)
            serials.append(serial)
        replies: dict[int, Reply] = {}
        waiting = set(serials)
        while waiting:
            try:
                incoming = self.conn.receive(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            serial = incoming.header.fields.get(HeaderFields.reply_serial)
            if serial in waiting:
                waiting.discard(serial)
                if incoming.header.message_type == MessageType.error:
                    replies[serial] = Failed.of(incoming)
                else:
                    replies[serial] = incoming.body
        return [replies.get(s) for s in serials]

    def call(self, message: Message, what: str) -> tuple[Any, ...]:
        """
        One call's reply body.

        @raise CallFailed: for an error reply.
        @raise DesktopError: when no reply came in time.
        """
        reply = self.many([message])[0]
        if reply is None:
            raise DesktopError(f"{what} did not answer within {self.timeout:g} s")
        if isinstance(reply, Failed):
            raise CallFailed(reply)
        return reply


class CallFailed(DesktopError):
    def __init__(self, failed: Failed) -> None:
        super().__init__(str(failed))
        self.name = failed.name


def _acc(ref: Ref, interface: str = ACCESSIBLE) -> DBusAddress:
    return DBusAddress(ref[1], ref[0], interface)


def _value(reply: Reply) -> Any:
    """The first value of a reply body, unwrapping a variant; C{None} for an error."""
    if not isinstance(reply, tuple) or not reply:
        return None
    value = reply[0]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[1]
    return value


def _refs(reply: Reply) -> list[Ref]:
    value = _value(reply)
    if not isinstance(value, list):
        return []
    return [(str(b), str(p)) for b, p in value if b and p != model.NULL_PATH]


@dataclass
class _Draft:
    """A node being read."""

    ref: Ref
    depth: int
    parent: _Draft | None = None
    role: str = ""
    name: str = ""
    states: list[str] = field(default_factory=list)
    bounds: tuple[int, int, int, int] | None = None
    actions: list[str] = field(default_factory=list)
    children: list[_Draft] = field(default_factory=list)
    childRefs: list[Ref] = field(default_factory=list)
    truncated: bool = False
    interfaces: set[str] = field(default_factory=set)
    error: Reply = None

    def freeze(self) -> AccessibleNode:
        return AccessibleNode(
            model.encodeNodeId(*self.ref), self.role, self.name, tuple(self.states),
            self.bounds, tuple(self.actions), tuple(c.freeze() for c in self.children),
            self.truncated,
        )


def _nodeCalls(ref: Ref, listChildren: bool) -> list[Message]:
    """What every node is asked first (the Accessible interface only)."""
    acc = _acc(ref)
    return [
        new_method_call(acc, "GetRoleName"),
        Properties(acc).get("Name"),
        new_method_call(acc, "GetState"),
        new_method_call(acc, "GetInterfaces"),
        new_method_call(acc, "GetChildren") if listChildren else Properties(acc).get("ChildCount"),
    ]


#: Replies per node to L{_nodeCalls}.
NODE_CALLS = 5


def _fill(draft: _Draft, replies: Sequence[Reply], listChildren: bool) -> bool:
    """Set DRAFT from its replies; C{False} when it could not be read."""
    role, name, states, interfaces, children = replies
    if not isinstance(role, tuple):
        draft.error = role
        return False
    draft.role = str(_value(role))
    draft.name = str(_value(name) or "")
    draft.states = model.stateNames(_value(states) or [])
    draft.interfaces = set(_value(interfaces) or [])
    if children is None:
        draft.truncated = True
    elif listChildren:
        draft.childRefs = _refs(children)
    elif (_value(children) or 0) > 0:
        draft.truncated = True
    return True


def _detailCalls(drafts: Sequence[_Draft]) -> tuple[list[Message], list[tuple[_Draft, str]]]:
    """
    The calls for bounds and actions, made only to nodes that have those
    interfaces (GTK logs a critical warning for a call to an interface
    an object lacks, which G_DEBUG=fatal-criticals makes fatal).
    """
    messages: list[Message] = []
    asked: list[tuple[_Draft, str]] = []
    for d in drafts:
        if COMPONENT in d.interfaces:
            messages.append(new_method_call(_acc(d.ref, COMPONENT), "GetExtents", "u", (COORD_SCREEN,)))
            asked.append((d, COMPONENT))
        if ACTION in d.interfaces:
            messages.append(new_method_call(_acc(d.ref, ACTION), "GetActions"))
            asked.append((d, ACTION))
    return messages, asked


class Walk:
    """One bounded, level-by-level read of a tree."""

    def __init__(self, bus: Bus, limits: Limits) -> None:
        self.bus = bus
        self.limits = limits
        self.deadline = time.monotonic() + limits.walkTimeout
        self.count = 0

    def run(self, root: Ref) -> _Draft:
        top = _Draft(root, 0)
        self.count = 1
        level = [top]
        while level:
            following: list[_Draft] = []
            for i in range(0, len(level), CHUNK):
                following += self._read(level[i:i + CHUNK])
            level = following
        return top

    def _read(self, drafts: list[_Draft]) -> list[_Draft]:
        """Read DRAFTS; attach those that could be read; return their children."""
        if time.monotonic() >= self.deadline:
            for d in drafts:
                if d.parent is not None:
                    d.parent.truncated = True
            return []
        messages: list[Message] = []
        for d in drafts:
            messages += _nodeCalls(d.ref, d.depth < self.limits.maxDepth)
        replies = self.bus.many(messages, self._callDeadline())
        read: list[_Draft] = []
        for i, d in enumerate(drafts):
            mine = replies[i * NODE_CALLS:(i + 1) * NODE_CALLS]
            if _fill(d, mine, d.depth < self.limits.maxDepth):
                read.append(d)
                if d.parent is not None:
                    d.parent.children.append(d)
            elif d.parent is not None and mine[0] is None:
                d.parent.truncated = True
        self._details(read)
        following: list[_Draft] = []
        for d in read:
            following += self._children(d)
        return following

    def _callDeadline(self) -> float:
        return min(self.deadline, time.monotonic() + self.limits.callTimeout)

    def _details(self, drafts: list[_Draft]) -> None:
        messages, asked = _detailCalls(drafts)
        if not messages:
            return
        for (d, interface), reply in zip(asked, self.bus.many(messages, self._callDeadline()), strict=True):
            if interface == COMPONENT:
                d.bounds = model.screenBounds(_value(reply))
            else:
                d.actions = [str(a[0]) for a in (_value(reply) or [])]

    def _children(self, d: _Draft) -> list[_Draft]:
        room = max(0, self.limits.maxNodes - self.count)
        if len(d.childRefs) > room:
            d.truncated = True
        kids = [_Draft(ref, d.depth + 1, d) for ref in d.childRefs[:room]]
        self.count += len(kids)
        return kids


class AtspiClient:
    """
    The service's connections to the desktop's session bus and its
    accessibility bus.
    """

    def __init__(self, sessionAddress: str, callTimeout: float = 2.0) -> None:
        self.sessionAddress = sessionAddress
        self.callTimeout = callTimeout
        self.session: Bus | None = None
        self.a11y: Bus | None = None

    def close(self) -> None:
        for bus in (self.session, self.a11y):
            if bus is not None:
                bus.close()
        self.session = self.a11y = None

    def _session(self) -> Bus:
        if self.session is None:
            self.session = Bus(self.sessionAddress, self.callTimeout)
        return self.session

    def launcherReady(self) -> bool:
        """Whether the AT-SPI bus launcher owns C{org.a11y.Bus} yet."""
        reply = self._session().call(message_bus.NameHasOwner("org.a11y.Bus"), "the session bus")
        return bool(reply[0])

    def enable(self) -> str:
        """
        Turn accessibility on (C{org.a11y.Status.IsEnabled}, which Qt and
        others wait for) and connect to the accessibility bus.

        @return: its address.
        """
        session = self._session()
        session.call(Properties(A11Y_STATUS).set("IsEnabled", "b", True), "the bus launcher")
        address = str(session.call(new_method_call(A11Y_BUS, "GetAddress"), "the bus launcher")[0])
        if self.a11y is not None:
            self.a11y.close()
        self.a11y = Bus(address, self.callTimeout)
        return address

    def _bus(self) -> Bus:
        if self.a11y is None:
            self.enable()
        assert self.a11y is not None
        return self.a11y

    def tree(self, target: WindowTarget | None, node: Ref | None, limits: Limits) -> AccessibleNode:
        """The tree of TARGET's window, of NODE, or of the whole desktop."""
        if target is not None:
            root = self.findToplevel(target)
        elif node is not None:
            root = node
        else:
            root = (REGISTRY, ROOT_PATH)
        top = Walk(self._bus(), limits).run(root)
        if not top.role:
            self._unreadable(root, top.error)
        return top.freeze()

    def _unreadable(self, ref: Ref, error: Reply) -> None:
        if ref[0] == REGISTRY:
            raise AccessibilityUnavailable(f"the AT-SPI registry did not answer: {error or 'no reply in time'}")
        if error is None:
            raise DesktopError(f"the application did not answer within {self.callTimeout:g} s")
        raise UnknownNode(f"the node is gone ({error})")

    def _registryChildren(self) -> list[Ref]:
        bus = self._bus()
        reply = bus.many([new_method_call(_acc((REGISTRY, ROOT_PATH)), "GetChildren")])[0]
        if not isinstance(reply, tuple):
            self._unreadable((REGISTRY, ROOT_PATH), reply)
        return _refs(reply)

    def findToplevel(self, target: WindowTarget) -> Ref:
        """
        The top-level accessible that draws TARGET's window: among the
        applications whose process is the window's (or all of them when
        the window names no process), the best match by title and place.

        @raise InaccessibleWindow: when no application draws it.
        """
        bus = self._bus()
        apps = self._registryChildren()
        pids = bus.many([message_bus.GetConnectionUnixProcessID(a[0]) for a in apps])
        mine = [a for a, p in zip(apps, pids, strict=True) if target.pid is not None and _value(p) == target.pid]
        if target.pid is not None and not mine:
            raise InaccessibleWindow(
                f"process {target.pid} of window {target.windowId} is not registered with AT-SPI "
                "(toolkits like GTK and Qt register; plain X clients such as xterm do not)"
            )
        tops: list[Ref] = []
        for reply in bus.many([new_method_call(_acc(a), "GetChildren") for a in (mine or apps)]):
            tops += _refs(reply)
        messages: list[Message] = []
        for ref in tops:
            messages += [Properties(_acc(ref)).get("Name"),
                         new_method_call(_acc(ref, COMPONENT), "GetExtents", "u", (COORD_SCREEN,))]
        replies = bus.many(messages)
        candidates = [(str(_value(replies[2 * i]) or ""), model.screenBounds(_value(replies[2 * i + 1])))
                      for i in range(len(tops))]
        found = model.pickToplevel(target, candidates, sameProcess=bool(mine))
        if found is None:
            raise InaccessibleWindow(f"no accessible window matches window {target.windowId} ({target.title!r})")
        return tops[found]

    def _alive(self, ref: Ref) -> set[str]:
        """The node's interfaces; UnknownNode when it is gone or defunct."""
        state, interfaces = self._bus().many(
            [new_method_call(_acc(ref), "GetState"), new_method_call(_acc(ref), "GetInterfaces")])
        if state is None:
            raise DesktopError(f"the application did not answer within {self.callTimeout:g} s")
        if isinstance(state, Failed):
            raise UnknownNode(f"the node is gone ({state})")
        if "defunct" in model.stateNames(state[0]):
            raise UnknownNode("the node is gone (defunct)")
        return set(_value(interfaces) or [])

    def act(self, ref: Ref, action: str | None, setText: str | None) -> AccessibleNode:
        """Do ACTION on the node at REF, or set its text to SETTEXT; the node afterwards."""
        interfaces = self._alive(ref)
        if action is not None:
            if ACTION not in interfaces:
                raise NodeActionError("the node has no actions")
            self._doAction(ref, action)
        else:
            if EDITABLE_TEXT not in interfaces:
                raise NodeActionError("the node has no editable text")
            self._setText(ref, setText or "")
        return self.tree(None, ref, Limits(0, callTimeout=self.callTimeout))

    def _doAction(self, ref: Ref, action: str) -> None:
        bus = self._bus()
        reply = bus.call(new_method_call(_acc(ref, ACTION), "GetActions"), "the application")
        names = [str(a[0]) for a in reply[0]]
        index = model.actionIndex(names, action)
        if index is None:
            offered = ", ".join(repr(n) for n in names) or "none"
            raise NodeActionError(f"the node has no action {action!r}; its actions: {offered}")
        done = bus.call(new_method_call(_acc(ref, ACTION), "DoAction", "i", (index,)), "the application")
        if not done[0]:
            raise NodeActionError(f"the application refused the action {names[index]!r}")

    def _setText(self, ref: Ref, text: str) -> None:
        message = new_method_call(_acc(ref, EDITABLE_TEXT), "SetTextContents", "s", (text,))
        done = self._bus().call(message, "the application")
        if not done[0]:
            raise NodeActionError("the application refused to set the text (is the node editable?)")
