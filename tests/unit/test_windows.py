"""
Window-state arithmetic (no X server): what counts as minimized and
maximized, when a verb is done, and the EWMH message data.
"""

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.interfaces import WINDOW_VERBS, WindowInfo
from agentdesktop.x11 import windows
from agentdesktop.x11.windows import (
    HIDDEN,
    ICONIC_STATE,
    MAXIMIZED,
    NORMAL_STATE,
    SOURCE_PAGER,
    STATE_ADD,
    STATE_REMOVE,
    isMaximized,
    isMinimized,
    reached,
    stateMessage,
)


def window(**changes: object) -> WindowInfo:
    base: dict[str, object] = dict(
        id=5, title="t", windowClass="C", pid=1, x=0, y=0, width=10, height=10,
        focused=False, minimized=False, maximized=False,
    )
    base.update(changes)
    return WindowInfo(**base)  # type: ignore[arg-type]


class State(SynchronousTestCase):
    def test_minimized(self) -> None:
        self.assertTrue(isMinimized([HIDDEN], NORMAL_STATE))
        self.assertTrue(isMinimized([], ICONIC_STATE))
        self.assertFalse(isMinimized(["_NET_WM_STATE_ABOVE"], NORMAL_STATE))
        self.assertFalse(isMinimized([], None))

    def test_maximizedMeansBothWays(self) -> None:
        self.assertTrue(isMaximized(list(MAXIMIZED)))
        self.assertTrue(isMaximized([HIDDEN, *reversed(MAXIMIZED)]))
        self.assertFalse(isMaximized([MAXIMIZED[0]]))
        self.assertFalse(isMaximized([]))

    def test_stateMessage(self) -> None:
        self.assertEqual(
            stateMessage(STATE_ADD, *MAXIMIZED),
            [1, "_NET_WM_STATE_MAXIMIZED_VERT", "_NET_WM_STATE_MAXIMIZED_HORZ", SOURCE_PAGER, 0],
        )
        self.assertEqual(stateMessage(STATE_REMOVE, HIDDEN), [0, HIDDEN, None, 2, 0])


class Reached(SynchronousTestCase):
    def test_eachVerb(self) -> None:
        self.assertTrue(reached("close", None))
        self.assertFalse(reached("close", window()))
        self.assertTrue(reached("focus", window(focused=True)))
        self.assertFalse(reached("focus", window()))
        self.assertTrue(reached("minimize", window(minimized=True)))
        self.assertFalse(reached("minimize", window()))
        self.assertTrue(reached("maximize", window(maximized=True)))
        self.assertFalse(reached("maximize", window()))
        self.assertTrue(reached("restore", window()))
        self.assertFalse(reached("restore", window(minimized=True)))
        self.assertFalse(reached("restore", window(maximized=True)))

    def test_goneWindowReachedNothingButClose(self) -> None:
        for verb in WINDOW_VERBS:
            self.assertEqual(reached(verb, None), verb == "close", verb)

    def test_unknownVerb(self) -> None:
        self.assertRaises(ValueError, reached, "explode", window())


class SettledAfter(SynchronousTestCase):
    """The window manager sets the state before the rectangle: wait for both."""

    def test_maximizeWaitsForTheRectangle(self) -> None:
        before = WindowInfo(1, "t", "C", 1, 10, 20, 300, 200, False, False, False)
        stateOnly = dataclasses.replace(before, maximized=True)
        resized = dataclasses.replace(stateOnly, x=0, y=0, width=1920, height=1050)
        self.assertFalse(windows.settledAfter("maximize", before, stateOnly, True))
        self.assertTrue(windows.settledAfter("maximize", before, resized, True))
        # Already maximized: nothing will move.
        self.assertTrue(windows.settledAfter("maximize", resized, resized, True))
        self.assertFalse(windows.settledAfter("restore", resized,
                                              dataclasses.replace(resized, maximized=False), True))
        self.assertTrue(windows.settledAfter("restore", resized, before, True))

    def test_closeMeansUnmanaged(self) -> None:
        before = WindowInfo(1, "t", "C", 1, 10, 20, 300, 200, False, False, False)
        self.assertFalse(windows.settledAfter("close", before, None, True))
        self.assertTrue(windows.settledAfter("close", before, None, False))
