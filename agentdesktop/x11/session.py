"""
Blocking work on the X server through python-xlib: screen grabs, pointer
queries, exact typing through XTEST, and releasing stuck keys.  Everything
here blocks; L{agentdesktop.x11.desktop} runs it in thread pools the service
owns, one X connection per pool thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from PIL import Image
from Xlib import X
from Xlib import display as xdisplay
from Xlib.ext import xtest

from agentdesktop.keys import keysymForCharacter
from agentdesktop.x11 import imaging
from agentdesktop.x11.xshm import ShmGrabber

#: A keycode we remapped is not remapped again for this long, so that a
#: client that has not yet read the key event still decodes it with the
#: mapping it was typed with.
REMAP_GUARD_SECONDS = 0.15

#: Key events sent between two round trips to the server.
TYPE_CHUNK = 64

#: Button number -> its bit in the pointer state (buttons 8 and 9 have none).
BUTTON_MASKS = {1: X.Button1Mask, 2: X.Button2Mask, 3: X.Button3Mask, 4: X.Button4Mask,
                5: X.Button5Mask}

#: python-xlib finds the cookie through C{$XAUTHORITY} only; connections
#: are made one at a time with it pointing at the desktop's file.
_connecting = threading.Lock()


def connect(name: str, xauthority: str | None) -> xdisplay.Display:
    """
    Open display NAME with the cookie in the authority file XAUTHORITY
    (which must hold a FamilyLocal entry: python-xlib ignores FamilyWild),
    or with the process's own C{$XAUTHORITY} when it is C{None}.
    """
    if xauthority is None:
        return xdisplay.Display(name)
    with _connecting:
        old = os.environ.get("XAUTHORITY")
        os.environ["XAUTHORITY"] = xauthority
        try:
            return xdisplay.Display(name)
        finally:
            if old is None:
                del os.environ["XAUTHORITY"]
            else:
                os.environ["XAUTHORITY"] = old


class XSession:
    """
    One connection to an X display, used from one thread only.
    """

    def __init__(self, name: str, xauthority: str | None = None) -> None:
        self.name = name
        self.display = connect(name, xauthority)
        self.screen = self.display.screen()
        self.root = self.screen.root
        if not self.display.has_extension("XTEST"):
            raise RuntimeError(f"display {name} lacks the XTEST extension")
        self._lastUse: dict[int, float] = {}
        self._shm: ShmGrabber | None | bool = None
        #: Buffers this connection's thread reuses for screenshots.
        self.scratch = imaging.Scratch()
        #: How many keycodes L{typeText} has bound.
        self.remaps = 0
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        if isinstance(self._shm, ShmGrabber):
            self._shm.close()
            self._shm = None
        try:
            self.display.close()
        except Exception:
            pass

    def size(self) -> tuple[int, int]:
        geometry = self.root.get_geometry()
        return geometry.width, geometry.height

    def hasWindowManager(self) -> bool:
        """Whether an EWMH window manager has announced itself on the root."""
        atom = self.display.intern_atom("_NET_SUPPORTING_WM_CHECK", only_if_exists=True)
        if not atom:
            return False
        return self.root.get_full_property(atom, X.AnyPropertyType) is not None

    def pointer(self) -> tuple[int, int]:
        reply = self.root.query_pointer()
        return reply.root_x, reply.root_y

    def waitReleased(self, buttons: int, timeout: float) -> bool:
        """
        Wait until none of BUTTONS (a mask of L{BUTTON_MASKS}) is down in
        the X server's logical pointer state.  A window manager that grabs
        clicks (openbox, to focus and raise) holds the pointer's events
        until it replays them: the release xdotool sent is processed, yet
        the applications have not seen it.

        @return: whether they were released within TIMEOUT seconds.
        """
        deadline = self._clock() + timeout
        while self.root.query_pointer().mask & buttons:
            if self._clock() >= deadline:
                return False
            self._sleep(0.002)
        return True

    # -- screen

    def grab(self, region: tuple[int, int, int, int] | None = None) -> Image.Image:
        """Grab REGION (x0, y0, x1, y1; exclusive) or the whole screen, as RGB."""
        data, size = self.grabBGRX(region)
        image = Image.frombuffer("RGB", size, data, "raw", "BGRX", 0, 1)  # type: ignore[arg-type]
        image.load()
        return image

    def grabBGRX(
        self, region: tuple[int, int, int, int] | None = None
    ) -> tuple[memoryview | bytes, tuple[int, int]]:
        """
        Grab REGION (or the whole screen) as the server holds it: rows of
        32-bit B, G, R, padding pixels.  The data may be this session's
        shared memory segment, valid until its next grab.

        @return: the data and the (width, height) grabbed.
        """
        if region is None:
            x0, y0 = 0, 0
            x1, y1 = self.size()
        else:
            x0, y0, x1, y1 = region
        w, h = x1 - x0, y1 - y0
        if self._shm is None:
            try:
                sw, sh = self.size()
                self._shm = ShmGrabber(self.display, sw * sh * 4)
            except Exception:
                # Not on this server (or not to this client): plain GetImage.
                self._shm = False
        if isinstance(self._shm, ShmGrabber) and w * h * 4 <= self._shm.size:
            return self._shm.grab(self.root, x0, y0, w, h), (w, h)
        raw = self.root.get_image(x0, y0, w, h, X.ZPixmap, 0xFFFFFFFF)
        if raw.depth not in (24, 32) or len(raw.data) < w * h * 4:
            raise RuntimeError(f"unsupported screen format (depth {raw.depth})")
        return raw.data, (w, h)

    # -- keyboard and pointer

    def releaseAll(self) -> None:
        """Release every key and mouse button the server sees pressed."""
        keymap = self.display.query_keymap()
        for byte, bits in enumerate(keymap):
            for bit in range(8):
                if bits & (1 << bit):
                    xtest.fake_input(self.display, X.KeyRelease, byte * 8 + bit)
        mask = self.root.query_pointer().mask
        for button, flag in enumerate(
            (X.Button1Mask, X.Button2Mask, X.Button3Mask, X.Button4Mask, X.Button5Mask),
            start=1,
        ):
            if mask & flag:
                xtest.fake_input(self.display, X.ButtonRelease, button)
        self.display.sync()

    def typeText(self, text: str) -> None:
        """
        Type TEXT exactly.  Characters the keyboard map holds on a plain or
        shifted level are typed with their own key; every other character is
        bound to a spare keycode first, which stays bound (no restore race)
        and is reused least recently used first, never within
        L{REMAP_GUARD_SECONDS} of its last key event.
        """
        text = text.replace("\r\n", "\n")
        d = self.display
        first = d.display.info.min_keycode
        count = d.display.info.max_keycode - first + 1
        mapping = d.get_keyboard_mapping(first, count)
        width = len(mapping[0]) if mapping else 2
        plain: dict[int, tuple[int, int]] = {}
        spare: list[int] = []
        for i, syms in enumerate(mapping):
            keycode = first + i
            if keycode <= 8:
                continue
            if not any(syms):
                spare.append(keycode)
                continue
            for level in (0, 1):
                if level < len(syms) and syms[level] and syms[level] not in plain:
                    plain[syms[level]] = (keycode, level)
        shift = d.keysym_to_keycode(0xFFE1)  # Shift_L
        pending = 0
        for ch in text:
            keysym = keysymForCharacter(ch)
            found = plain.get(keysym)
            if found is None or (found[1] == 1 and not shift):
                if not spare:
                    raise RuntimeError("the keyboard map has no spare keycode")
                keycode = min(spare, key=lambda k: self._lastUse.get(k, 0.0))
                wait = self._lastUse.get(keycode, -1e9) + REMAP_GUARD_SECONDS - self._clock()
                if wait > 0:
                    d.sync()
                    self._sleep(wait)
                for old, (k, _) in list(plain.items()):
                    if k == keycode:
                        del plain[old]
                d.change_keyboard_mapping(keycode, [(keysym,) * width])
                self.remaps += 1
                d.sync()
                plain[keysym] = found = (keycode, 0)
            keycode, level = found
            if level == 1:
                xtest.fake_input(d, X.KeyPress, shift)
            xtest.fake_input(d, X.KeyPress, keycode)
            xtest.fake_input(d, X.KeyRelease, keycode)
            if level == 1:
                xtest.fake_input(d, X.KeyRelease, shift)
            if keycode in spare:
                self._lastUse[keycode] = self._clock()
            pending += 1
            if pending >= TYPE_CHUNK:
                d.sync()
                pending = 0
        d.sync()


def typeText(session: XSession, text: str) -> bool:
    """L{XSession.typeText}; whether it changed the keyboard map."""
    before = session.remaps
    session.typeText(text)
    return session.remaps != before


def screenshot(
    session: XSession,
    region: tuple[int, int, int, int] | None,
    size: tuple[int, int],
    fmt: str,
    quality: int | None,
) -> bytes:
    """Grab, resize and encode, all in the calling thread."""
    data, grabbed = session.grabBGRX(region)
    return imaging.screenshot(imaging.frame(data, grabbed), size, fmt, quality, session.scratch)

