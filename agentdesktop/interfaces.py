"""
The interfaces between the web layer and what it drives, and the value
types that are part of their contract.  Pure: no reactor, no X.
"""

from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Attribute, Interface


@dataclass(frozen=True)
class DesktopInfo:
    """
    Where a running desktop is and how big it is.

    @ivar display: the X display name, e.g. C{":12"}.
    @ivar xauthority: the path of the X authority file that admits clients.
    @ivar rfbSocket: the path of the unix socket Xvnc serves RFB on.
    @ivar width: the native screen width in pixels.
    @ivar height: the native screen height in pixels.
    """

    display: str
    xauthority: str
    rfbSocket: str
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class Settled:
    """
    How a wait for the screen to settle ended.

    @ivar settled: C{True} when the screen stopped changing for the time
        asked, C{False} when the wait ran out first.
    @ivar waitedMs: how long the wait took, in milliseconds.
    """

    settled: bool
    waitedMs: int


@dataclass(frozen=True)
class RecordingResult:
    """
    A finished recording's files.

    @ivar thumbnailPath: the JPEG thumbnail, or C{None} when there is none
        or it is over the thumbnail limit.
    """

    recordingId: str
    videoPath: str
    videoSize: int
    thumbnailPath: str | None
    thumbnailSize: int


@dataclass(frozen=True)
class AccessibleNode:
    """
    One node of an accessibility (AT-SPI2) tree, in native pixels.

    @ivar id: an opaque URL-safe id, valid while its application runs.
    @ivar role: the AT-SPI role name (C{"push button"}, C{"frame"}, ...).
    @ivar name: the accessible name (a button's label, a window's title).
    @ivar states: the AT-SPI state names (C{"focusable"}, C{"showing"}, ...).
    @ivar bounds: C{(x, y, width, height)} on screen in native pixels, or
        C{None} when the node has no place on screen.
    @ivar actions: the names of the actions it offers (C{"click"}, ...).
    @ivar children: its children, in order.
    @ivar truncated: whether children were left out (the depth, node or time
        limit was reached, or the application did not answer in time).
    """

    id: str
    role: str
    name: str
    states: tuple[str, ...] = ()
    bounds: tuple[int, int, int, int] | None = None
    actions: tuple[str, ...] = ()
    children: tuple[AccessibleNode, ...] = ()
    truncated: bool = False


@dataclass(frozen=True)
class WindowInfo:
    """
    One top-level window the window manager manages, in native pixels.

    @ivar id: the X window id of the client window.
    @ivar title: its title (C{_NET_WM_NAME}, else C{WM_NAME}), or C{""}.
    @ivar windowClass: the class part of C{WM_CLASS} (C{"XTerm"}), or C{""}.
    @ivar pid: C{_NET_WM_PID}, or C{None} when the client does not say.
    @ivar x: the left edge of the client window on the screen, without
        the window manager's decorations.
    @ivar y: its top edge.
    @ivar focused: whether it is C{_NET_ACTIVE_WINDOW}.
    @ivar minimized: whether it is iconified (hidden).
    @ivar maximized: whether it is maximized both ways.
    """

    id: int
    title: str
    windowClass: str
    pid: int | None
    x: int
    y: int
    width: int
    height: int
    focused: bool
    minimized: bool
    maximized: bool


@dataclass(frozen=True)
class Launched:
    """
    A program started on the desktop through L{IDesktop.launch},
    L{IDesktop.openTarget} or a button of the default desktop's panel,
    while it runs.

    @ivar pid: its process id (it leads its own process group).
    @ivar command: its argv.
    @ivar startedAt: when it started, in seconds since the epoch.
    """

    pid: int
    command: tuple[str, ...]
    startedAt: float


@dataclass(frozen=True)
class LaunchResult:
    """
    What L{IDesktop.launch} started, and its first window when it was
    asked to wait for one (C{None} when none appeared in time, or when it
    did not wait).
    """

    process: Launched
    window: WindowInfo | None


#: The selections the clipboard methods accept.
SELECTIONS = ("clipboard", "primary")

#: The largest clipboard text, in UTF-8 bytes, that may be written.
MAX_CLIPBOARD_BYTES = 1024 * 1024

#: The verbs of L{IDesktop.windowAction}.
WINDOW_VERBS = ("focus", "close", "minimize", "maximize", "restore")


class IDesktop(Interface):
    """
    A running graphical desktop that can be looked at and driven.  All
    coordinates are native pixels.  Every method that touches the desktop
    returns a Deferred that fails with L{agentdesktop.errors.DesktopError}
    (or a subclass) when the desktop or a tool fails.
    """

    running = Attribute("C{True} while the desktop is up and usable.")

    restarted = Attribute(
        "A list of callables, each called with what the desktop restarted "
        "after it died: C{\"desktop\"} (a fresh X server and everything on "
        "it) or C{\"window_manager\"}.  Called when the restart begins."
    )

    def start():
        """
        Make sure the desktop runs, starting it (or a fresh one after a
        crash) when it does not.  Concurrent callers share one start.

        @return: C{Deferred[DesktopInfo]}.
        """

    def stop():
        """
        Release every key and button, terminate every child process and reap
        it.

        @return: C{Deferred[None]}, fires once all children have exited.
        """

    def move(x, y, modifiers):
        """
        Move the pointer to (X, Y), holding the keysyms MODIFIERS meanwhile.
        @return: C{Deferred[None]}.
        """

    def click(x, y, button, count, modifiers):
        """
        Move to (X, Y) and click BUTTON COUNT times in one gesture (so that
        COUNT=2 is a double click), holding the keysyms MODIFIERS meanwhile.
        Buttons 4-7 are the scroll wheel.  @return: C{Deferred[None]}.
        """

    def buttonDown(button):
        """Press BUTTON where the pointer is.  @return: C{Deferred[None]}."""

    def buttonUp(button):
        """Release BUTTON.  @return: C{Deferred[None]}."""

    def drag(path, modifiers):
        """
        Move to the first point of PATH (at least two points), press button
        1, move through every other point, release it at the last, holding
        the keysyms MODIFIERS meanwhile.  If any step fails the button and
        keys are released before the failure is returned.
        @return: C{Deferred[None]}.
        """

    def keys(combos):
        """
        Press and release each combination (a list of keysym names) in
        turn.  @return: C{Deferred[None]}.
        """

    def keyDown(combo):
        """Press the keysyms of COMBO in order.  @return: C{Deferred[None]}."""

    def keyUp(combo):
        """Release the keysyms of COMBO in reverse.  @return: C{Deferred[None]}."""

    def typeText(text):
        """
        Type TEXT exactly, Unicode included.  @return: C{Deferred[None]}.
        @raise ValueError: (synchronously) for a character that cannot be
            typed.
        """

    def pointer():
        """@return: C{Deferred[tuple[int, int]]}, the pointer position."""

    def screenshot(region, size, format, quality):
        """
        Grab REGION (C{(x0, y0, x1, y1)} exclusive, or C{None} for the whole
        screen), resize it to SIZE and encode it.

        @param format: C{"png"}, C{"jpeg"} or C{"webp"}.
        @return: C{Deferred[bytes]}.
        """

    def releaseAll():
        """
        Release every key and mouse button the X server sees pressed.
        @return: C{Deferred[None]}.
        """

    def settle(settleMs, timeoutMs):
        """
        Wait, counting from now, until the screen has not changed for
        SETTLEMS milliseconds, but no longer than TIMEOUTMS.  Changes are
        what the X server reports (DAMAGE), not a comparison of images.

        @return: C{Deferred[Settled]}.
        """

    def accessibilityTree(windowId, maxDepth, nodeId):
        """
        The accessibility tree of the client window WINDOWID (an X window
        id, as C{_NET_CLIENT_LIST} gives it), of the node NODEID (an id
        from an earlier tree), or of the whole desktop (every application)
        when both are C{None}; MAXDEPTH levels below the root at most.

        @return: C{Deferred[AccessibleNode]} (bounds in native pixels);
            fails with L{agentdesktop.errors.UnknownWindow},
            L{agentdesktop.errors.InaccessibleWindow},
            L{agentdesktop.errors.UnknownNode} or
            L{agentdesktop.errors.AccessibilityUnavailable} (with the reason).
        """

    def accessibilityAction(nodeId, action, setText):
        """
        Do the action named ACTION on node NODEID, or (when ACTION is
        C{None}) set its text to SETTEXT.

        @return: C{Deferred[AccessibleNode]}, the node as read afterwards
            (without children); fails with
            L{agentdesktop.errors.UnknownNode},
            L{agentdesktop.errors.NodeActionError} (no such action, no
            editable text, or refused; the message says what the node
            offers) or L{agentdesktop.errors.AccessibilityUnavailable}.
        """

    def readClipboard(selection):
        """
        Ask the owner of SELECTION (C{"clipboard"} or C{"primary"}) for its
        text: UTF-8 when it offers it, else Latin-1.

        @return: C{Deferred[str | None]}, C{None} when nobody owns the
            selection or the owner has no text; fails with L{DesktopError}
            when the owner does not answer in time.
        """

    def writeClipboard(selection, text):
        """
        Own SELECTION and serve TEXT to every client that asks for it, until
        another client takes the selection.

        @return: C{Deferred[None]}, fired once the desktop's X server names
            us the owner; fails with C{ValueError} for an unknown selection
            or text over L{MAX_CLIPBOARD_BYTES} in UTF-8.
        """

    def windows():
        """
        The managed top-level windows, in the window manager's order
        (C{_NET_CLIENT_LIST}).

        @return: C{Deferred[list[WindowInfo]]}.
        """

    def windowAction(windowId, verb):
        """
        Ask the window manager to C{"focus"}, C{"close"}, C{"minimize"},
        C{"maximize"} or C{"restore"} (un-minimize and un-maximize) the
        window WINDOWID, and wait briefly until it did.

        @return: C{Deferred[WindowInfo | None]}, the window afterwards
            (C{None} once closed); fails with
            L{agentdesktop.errors.UnknownWindow} when WINDOWID is not a
            managed window, and with C{ValueError} for an unknown verb.
        """

    def launch(argv, waitForWindow, timeoutMs):
        """
        Start ARGV (no shell) on the desktop, with its environment, in its
        own process group, as a child that the desktop stops when it stops.
        With WAITFORWINDOW, wait up to TIMEOUTMS milliseconds for the first
        new managed window whose C{_NET_WM_PID} is the process or one of
        its descendants (the process keeps running either way).

        @return: C{Deferred[LaunchResult]}; fails with C{ValueError}, and
            starts nothing, when ARGV is empty or its program cannot be
            found on the desktop's C{PATH} or is not executable (the message
            names it).
        """

    def launched():
        """@return: C{list[Launched]}, the launched programs still running."""

    def openTarget(target):
        """
        Open TARGET (a URL, or an absolute path that exists) with the
        desktop's default application (C{xdg-open}), as L{launch} does,
        without waiting for it.

        @return: C{Deferred[Launched]}; fails with C{ValueError} for an
            empty target, a relative path, or a path that does not exist.
        """


class IRecorder(Interface):
    """
    Records the desktop's screen to MP4 files, keyed by canonical UUID.
    """

    def start(recordingId):
        """
        Start recording (a no-op when RECORDINGID is recording; a stopped id
        is discarded and recorded anew).

        @return: C{Deferred[None]}; fails with L{agentdesktop.errors.APIError}.
        """

    def stop(recordingId):
        """
        Stop the recording, waiting for its file to be complete.

        @return: C{Deferred[RecordingResult]}; fails with
            L{agentdesktop.errors.APIError} (404, 413, 500).
        """

    def activity():
        """Note an C{/action} call: resets every idle timer."""

    def activeCount():
        """@return: C{int}, how many recordings are being recorded now."""

    def close():
        """
        Stop every recording and delete every file.
        @return: C{Deferred[None]}.
        """
