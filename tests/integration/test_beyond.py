"""
Beyond pixels on a real desktop: the clipboard as real X clients (xterm,
xclip) see it, windows as the window manager (openbox) and xprop see them,
programs launched and opened as real children of the service.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from Xlib import X, Xatom
from Xlib.protocol import event as xevent

from agentdesktop.errors import DesktopError
from agentdesktop.programs import descendants, parentsFromProc
from agentdesktop.x11.selection import waitEvent
from tests.integration.harness import DesktopTestCase, session, sleep

UNICODE = "héllo wörld – ünïcödé ß € 日本語 🙂👍🏽 end"

#: An xterm whose shift+Insert pastes CLIPBOARD (its default pastes PRIMARY).
PASTE_CLIPBOARD = "*VT100.translations: #override Shift <KeyPress> Insert: insert-selection(CLIPBOARD)"


def big(size: int) -> str:
    """SIZE bytes of UTF-8 text, multi-byte characters included."""
    line = "0123456789 é 🙂 abcdefghijklmnopqrstuvwxyz\n"
    chunk = line * (size // len(line.encode()) + 1)
    text = chunk.encode()[:size].decode("utf-8", "ignore")
    return text


def ourChildren() -> set[int]:
    """The processes below this one (the service runs in the test's process)."""
    return descendants([os.getpid()], parentsFromProc()) - {os.getpid()}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return b") Z " not in f.read()
    except FileNotFoundError:
        return False


class Clipboard(DesktopTestCase):
    async def waitForFile(self, path: str, size: int) -> bytes:
        for _ in range(100):
            if os.path.exists(path) and os.path.getsize(path) >= size:
                break
            await sleep(0.05)
        with open(path, "rb") as f:
            return f.read()

    async def pasteInto(self, title: str, keys: str, expected: bytes) -> None:
        """
        Focus xterm TITLE and paste with KEYS; its file must get EXPECTED.
        (The text ends with a newline, which xterm pastes as Return: a
        separate Return key could overtake the paste, which xterm fetches
        from the owner first.)
        """
        path = os.path.join(self.dir, title)
        await self.waitForWindow("XTerm", title)
        code, out = await self.request("GET", "windows")
        [window] = [w for w in out["windows"] if w["title"] == title]
        code, out = await self.request("POST", f"windows/{window['id']}/focus")
        self.assertTrue(out["window"]["focused"], out)
        await self.ok(action="key", text=keys)
        self.assertEqual(await self.waitForFile(path, len(expected)), expected)

    def xterm(self, title: str, *options: str) -> None:
        path = os.path.join(self.dir, title)
        self.spawn(["xterm", "-u8", "-T", title, *options, "-e", "sh", "-c", f"cat > '{path}'"])

    async def test_unicodePastesIntoXtermAndXclipReadsIt(self) -> None:
        """
        Text set through the API is what an xterm pastes (PRIMARY with its
        default shift+Insert, CLIPBOARD through a translation) and what
        xclip reads, byte for byte; no helper process is left running.
        """
        await self.startDesktop()
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        code, out = await self.request("GET", "clipboard")
        self.assertEqual((code, out), (200, {"text": None}))
        before = ourChildren()
        clipboard, primary = UNICODE + "\n", UNICODE + " primary\n"
        code, out = await self.request("POST", "clipboard", {"text": clipboard})
        self.assertEqual(code, 200, out)
        code, out = await self.request(
            "POST", "clipboard", {"text": primary, "selection": "primary"}
        )
        self.assertEqual(code, 200, out)
        self.assertEqual(ourChildren(), before)
        self.assertEqual(await self.tool("xclip", "-o", "-selection", "clipboard"),
                         clipboard.encode())
        self.assertEqual(await self.tool("xclip", "-o", "-selection", "primary"),
                         primary.encode())
        # STRING is Latin-1 (per the ICCCM); what Latin-1 lacks becomes "?".
        self.assertEqual(
            await self.tool("xclip", "-o", "-selection", "clipboard", "-t", "STRING"),
            clipboard.encode("latin-1", "replace"),
        )
        targets = await self.tool("xclip", "-o", "-selection", "clipboard", "-t", "TARGETS")
        self.assertEqual(set(targets.split()) >= {b"TARGETS", b"UTF8_STRING", b"TEXT",
                                                  b"STRING"}, True, targets)
        self.xterm("primary-paste")
        await self.pasteInto("primary-paste", "shift+Insert", primary.encode())
        self.xterm("clipboard-paste", "-xrm", PASTE_CLIPBOARD)
        await self.pasteInto("clipboard-paste", "shift+Insert", clipboard.encode())

    async def test_xclipOwnerReadThroughAPI(self) -> None:
        """
        What an X client (xclip) owns is read through the API: Unicode on
        CLIPBOARD, and on PRIMARY 5 MB, which xclip sends by INCR (it
        switches to INCR past a quarter of the server's extended request
        size, 4 MiB on Xvnc).
        """
        await self.startDesktop()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for selection, text in (("clipboard", UNICODE), ("primary", big(5_000_000))):
            path = os.path.join(directory, selection)
            with open(path, "wb") as f:
                f.write(text.encode())
            self.spawn(["xclip", "-quiet", "-i", "-selection", selection], stdin=path, quiet=True)
            for _ in range(100):
                code, out = await self.request("GET", f"clipboard?selection={selection}")
                if out.get("text") is not None:
                    break
                await sleep(0.05)
            self.assertEqual(code, 200, out)
            self.assertEqual(len(out["text"].encode()), len(text.encode()))
            self.assertEqual(out["text"], text)

    async def test_largeTextGoesByINCR(self) -> None:
        """
        300 KB set through the API (more than one X request holds) reaches
        xclip whole; then xclip takes the selection over, and we read it.
        """
        await self.startDesktop()
        text = big(300_000)
        limit = self.x.display.display.info.max_request_length * 4
        self.assertGreater(len(text.encode()), limit)
        code, out = await self.request("POST", "clipboard", {"text": text})
        self.assertEqual((code, out["bytes"]), (200, 300_000))
        got = await self.tool("xclip", "-o", "-selection", "clipboard")
        self.assertEqual(got, text.encode())
        code, out = await self.request("GET", "clipboard")
        self.assertEqual(out["text"], text)
        # Bad input is refused and leaves the owner serving.
        code, out = await self.request("POST", "clipboard", {"text": 5})
        self.assertEqual(code, 400, out)
        code, out = await self.request("GET", "clipboard?selection=secondary")
        self.assertEqual(code, 400, out)
        self.assertEqual(await self.tool("xclip", "-o", "-selection", "clipboard"),
                         text.encode())


def selectionThreads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "agentdesktop-selection"]


class ClipboardOwnerLife(DesktopTestCase):
    async def test_stalledRequestorThenXvncRestartThenStop(self) -> None:
        """
        A requestor that starts an INCR transfer and walks away blocks no
        one; when Xvnc dies the owner's thread ends by itself and a fresh
        desktop gets a fresh owner; stopping the desktop leaves no thread.
        """
        await self.startDesktop()
        text = big(300_000)
        code, out = await self.request("POST", "clipboard", {"text": text})
        self.assertEqual(code, 200, out)
        stalled = session(self.info)
        self.addCleanup(stalled.close)
        d = stalled.display
        window = stalled.root.create_window(
            0, 0, 1, 1, 0, 0, window_class=X.InputOnly, event_mask=X.PropertyChangeMask
        )
        prop = d.intern_atom("STALLED")
        window.convert_selection(d.intern_atom("CLIPBOARD"), d.intern_atom("UTF8_STRING"),
                                 prop, X.CurrentTime)
        d.flush()
        notify = waitEvent(d, lambda e: e.type == X.SelectionNotify, time.monotonic() + 5)
        reply = window.get_property(prop, X.AnyPropertyType, 0, 1)
        self.assertEqual((notify.property, d.get_atom_name(reply.property_type)), (prop, "INCR"))
        # It never deletes the property to ask for the first chunk.
        self.assertEqual(await self.tool("xclip", "-o", "-selection", "clipboard"),
                         text.encode())
        self.assertEqual(len(selectionThreads()), 1)

        old = self.desktop._xvnc
        assert old is not None
        await old.kill()
        for _ in range(100):
            if not selectionThreads():
                break
            await sleep(0.05)
        self.assertEqual(selectionThreads(), [])
        code, out = await self.request("GET", "clipboard")
        self.assertEqual((code, out), (200, {"text": None}))
        self.info = self.desktop.info  # type: ignore[assignment]
        code, out = await self.request("POST", "clipboard", {"text": "again 🙂"})
        self.assertEqual(code, 200, out)
        self.assertEqual(await self.tool("xclip", "-o", "-selection", "clipboard"),
                         "again 🙂".encode())
        await self.desktop.stop()
        self.assertEqual(selectionThreads(), [])


class LegacyOwner(threading.Thread):
    """
    An old-style X client that owns CLIPBOARD and converts it to STRING
    only, refusing every other target (UTF8_STRING included).

    @ivar asked: the targets requestors asked for, in order.
    """

    def __init__(self, info: Any, data: bytes) -> None:
        super().__init__(daemon=True)
        self.x = session(info)
        self.data = data
        self.asked: list[str] = []
        self.stopping = False
        d = self.x.display
        self.window = self.x.root.create_window(0, 0, 1, 1, 0, 0, window_class=X.InputOnly)
        self.window.set_selection_owner(d.intern_atom("CLIPBOARD"), X.CurrentTime)
        d.sync()

    def run(self) -> None:
        d = self.x.display
        while not self.stopping:
            try:
                ev = waitEvent(d, lambda e: e.type == X.SelectionRequest, time.monotonic() + 0.1)
            except DesktopError:
                continue
            target = d.get_atom_name(ev.target)
            self.asked.append(target)
            prop = X.NONE
            if target == "STRING":
                ev.requestor.change_property(ev.property, Xatom.STRING, 8, self.data)
                prop = ev.property
            ev.requestor.send_event(xevent.SelectionNotify(
                time=ev.time, requestor=ev.requestor, selection=ev.selection,
                target=ev.target, property=prop,
            ))
            d.flush()
        self.x.close()

    def stop(self) -> None:
        self.stopping = True
        self.join()


class ClipboardOwners(DesktopTestCase):
    async def test_latin1FallbackAndSilentOwner(self) -> None:
        """
        An owner that refuses UTF8_STRING is asked for STRING and read as
        Latin-1; an owner that answers with a STRING property is decoded
        as Latin-1 too; an owner that never answers costs a 500 after the
        timeout, and the next read works.
        """
        await self.startDesktop(clipboardTimeout=0.5)
        legacy = LegacyOwner(self.info, "naïve façade".encode("latin-1"))
        legacy.start()
        self.addCleanup(legacy.stop)
        code, out = await self.request("GET", "clipboard")
        self.assertEqual((code, out), (200, {"text": "naïve façade"}))
        # (Xvnc itself asks for TARGETS whenever the owner changes.)
        self.assertEqual([t for t in legacy.asked if t != "TARGETS"], ["UTF8_STRING", "STRING"])

        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write("café ß ±".encode("latin-1"))
        self.spawn(["xclip", "-quiet", "-i", "-selection", "clipboard", "-t", "STRING"],
                   stdin=path, quiet=True)
        for _ in range(100):
            code, out = await self.request("GET", "clipboard")
            if out.get("text") != "naïve façade":  # xclip took it over
                break
            await sleep(0.05)
        self.assertEqual((code, out), (200, {"text": "café ß ±"}))

        silent = session(self.info)
        self.addCleanup(silent.close)
        owner = silent.root.create_window(0, 0, 1, 1, 0, 0, window_class=X.InputOnly)
        owner.set_selection_owner(silent.display.intern_atom("PRIMARY"), X.CurrentTime)
        silent.display.sync()
        started = time.monotonic()
        code, out = await self.request("GET", "clipboard?selection=primary")
        self.assertEqual((code, out["message"]), (500, "Failed to read clipboard."))
        self.assertIn("did not answer in time", out["detail"])
        self.assertLess(time.monotonic() - started, 5)
        code, out = await self.request("POST", "clipboard", {"text": "ours", "selection": "primary"})
        self.assertEqual(code, 200, out)
        self.assertEqual(await self.request("GET", "clipboard?selection=primary"),
                         (200, {"text": "ours"}))


def xprop(out: bytes) -> list[str]:
    """The values of one xprop line: ids, atom names or strings."""
    return re.findall(r"0x[0-9a-f]+|_NET_WM_STATE_\w+|\"[^\"]*\"", out.decode())


class Windows(DesktopTestCase):
    async def active(self) -> int:
        out = await self.tool("xprop", "-root", "_NET_ACTIVE_WINDOW")
        return int(xprop(out)[0], 16)

    async def clients(self) -> list[int]:
        out = await self.tool("xprop", "-root", "_NET_CLIENT_LIST")
        return [int(v, 16) for v in xprop(out)]

    async def netState(self, window: int) -> list[str]:
        return xprop(await self.tool("xprop", "-id", str(window), "_NET_WM_STATE"))

    async def launchXterm(self, title: str, geometry: str) -> dict:
        code, out = await self.request("POST", "launch", {
            "command": ["xterm", "-T", title, "-geometry", geometry],
            "wait_for_window": True, "timeout_ms": 15000,
        })
        self.assertEqual(code, 200, out)
        self.assertIsNotNone(out["window"], out)
        return out

    async def verb(self, window: int, verb: str) -> dict:
        code, out = await self.request("POST", f"windows/{window}/{verb}")
        self.assertEqual(code, 200, out)
        return out["window"]

    async def test_listFocusMinimizeMaximizeRestoreClose(self) -> None:
        await self.startDesktop()
        first = await self.launchXterm("agent-one", "80x24+600+300")
        window = first["window"]
        self.assertEqual((window["title"], window["class"], window["pid"]),
                         ("agent-one", "XTerm", first["pid"]))
        one = window["id"]
        # The client rectangle (no decorations), as xwininfo sees it, in declared space.
        info = (await self.tool("xwininfo", "-id", str(one))).decode()
        ax = int(re.search(r"Absolute upper-left X:\s+(-?\d+)", info).group(1))
        ay = int(re.search(r"Absolute upper-left Y:\s+(-?\d+)", info).group(1))
        width = int(re.search(r"Width:\s+(\d+)", info).group(1))
        code, out = await self.request("GET", "windows?scaled_width=1280&scaled_height=720")
        listed = {w["id"]: w for w in out["windows"]}
        self.assertEqual(sorted(listed), sorted(await self.clients()))
        self.assertEqual((listed[one]["x"], listed[one]["y"]),
                         (round(ax * 2 / 3), round(ay * 2 / 3)))
        self.assertLessEqual(abs(listed[one]["width"] - width * 2 / 3), 1)
        second = await self.launchXterm("agent-two", "60x10+50+50")
        two = second["window"]["id"]

        for target in (one, two, one):
            after = await self.verb(target, "focus")
            self.assertTrue(after["focused"])
            self.assertEqual(await self.active(), target)

        after = await self.verb(one, "minimize")
        self.assertTrue(after["minimized"])
        self.assertIn("_NET_WM_STATE_HIDDEN", await self.netState(one))
        after = await self.verb(one, "restore")
        self.assertFalse(after["minimized"])
        self.assertNotIn("_NET_WM_STATE_HIDDEN", await self.netState(one))

        after = await self.verb(two, "maximize")
        self.assertTrue(after["maximized"])
        self.assertGreater(after["width"], 1800)
        self.assertIn("_NET_WM_STATE_MAXIMIZED_VERT", await self.netState(two))
        self.assertIn("_NET_WM_STATE_MAXIMIZED_HORZ", await self.netState(two))
        after = await self.verb(two, "restore")
        self.assertFalse(after["maximized"])
        self.assertEqual(await self.netState(two), [])

        self.assertIsNone(await self.verb(one, "close"))
        self.assertNotIn(one, await self.clients())
        for _ in range(100):
            if not alive(first["pid"]):
                break
            await sleep(0.05)
        self.assertFalse(alive(first["pid"]))
        for _ in range(100):
            code, out = await self.request("GET", "launch")
            if first["pid"] not in [p["pid"] for p in out["processes"]]:
                break
            await sleep(0.05)
        self.assertEqual([p["pid"] for p in out["processes"]], [second["pid"]])

        code, out = await self.request("POST", f"windows/{one}/focus")
        self.assertEqual((code, out["message"]), (404, "Window not found."))
        code, out = await self.request("POST", f"windows/{two}/explode")
        self.assertEqual(code, 404, out)
        code, out = await self.request("GET", f"windows/{two}/focus")
        self.assertEqual(code, 405, out)
        code, out = await self.request("GET", f"windows/{two}")
        self.assertEqual((code, out["title"]), (200, "agent-two"))


class Launch(DesktopTestCase):
    async def test_missingProgramStartsNothing(self) -> None:
        await self.startDesktop()
        before = ourChildren()
        code, out = await self.request("POST", "launch", {"command": ["no-such-program-11a"]})
        self.assertEqual(code, 400, out)
        self.assertIn("no-such-program-11a", out["message"])
        self.assertIn("no-such-program-11a", out["detail"])
        code, out = await self.request("POST", "launch", {"command": "xterm -e top"})
        self.assertEqual(code, 400, out)
        code, out = await self.request("POST", "launch", {"command": ["/etc/passwd"]})
        self.assertEqual(code, 400, out)
        self.assertEqual(ourChildren(), before)
        code, out = await self.request("GET", "launch")
        self.assertEqual(out, {"processes": []})

    async def test_windowOfADescendantAndShutdown(self) -> None:
        """
        A launched shell's xterm child is found by its _NET_WM_PID; a
        program with no window yields null and keeps running; both are
        children of the service, on the desktop's display, and gone when
        the desktop stops.
        """
        await self.startDesktop()
        code, out = await self.request("POST", "launch", {
            "command": ["sh", "-c", "xterm -T grandchild; true"],
            "wait_for_window": True, "timeout_ms": 15000,
        })
        self.assertEqual(code, 200, out)
        self.assertEqual(out["window"]["title"], "grandchild")
        shell = out["pid"]
        self.assertNotEqual(out["window"]["pid"], shell)
        self.assertIn(out["window"]["pid"], descendants([shell], parentsFromProc()))
        code, out = await self.request("POST", "launch", {
            "command": ["sleep", "300"], "wait_for_window": True, "timeout_ms": 300,
        })
        self.assertEqual((code, out["window"]), (200, None))
        sleeper = out["pid"]
        self.assertTrue(alive(sleeper))
        with open(f"/proc/{sleeper}/environ", "rb") as f:
            environ = f.read().split(b"\0")
        self.assertIn(b"DISPLAY=" + self.info.display.encode(), environ)
        self.assertIn(sleeper, ourChildren())
        code, out = await self.request("GET", "launch")
        listed = {p["pid"]: p for p in out["processes"]}
        self.assertEqual(set(listed), {shell, sleeper})
        self.assertEqual(listed[sleeper]["command"], ["sleep", "300"])
        self.assertTrue(listed[sleeper]["started_at"].endswith("Z"))
        family = descendants([shell, sleeper], parentsFromProc())
        self.assertGreaterEqual(len(family), 3)
        await self.desktop.stop()
        # The leaders are reaped by then; what they started dies with their group.
        for _ in range(100):
            if not any(alive(pid) for pid in family):
                break
            await sleep(0.05)
        self.assertEqual([pid for pid in family if alive(pid)], [])


class Open(DesktopTestCase):
    async def startWithOpener(self) -> str:
        """A desktop whose default application for a test scheme and text is a script."""
        root = os.path.abspath(self.mktemp())
        apps = os.path.join(root, "data", "applications")
        os.makedirs(apps)
        os.makedirs(os.path.join(root, "config"))
        handler = os.path.join(root, "handler")
        with open(handler, "w") as f:
            f.write('#!/bin/sh\nexec xterm -T "opened:$1"\n')
        os.chmod(handler, 0o755)
        with open(os.path.join(apps, "agentdesktop-opener.desktop"), "w") as f:
            f.write("[Desktop Entry]\nType=Application\nName=Opener\n"
                    f"Exec={handler} %u\n"
                    "MimeType=x-scheme-handler/agentdesktop-test;text/plain;\n")
        with open(os.path.join(root, "config", "mimeapps.list"), "w") as f:
            f.write("[Default Applications]\n"
                    "x-scheme-handler/agentdesktop-test=agentdesktop-opener.desktop\n"
                    "text/plain=agentdesktop-opener.desktop\n")
        await self.startDesktop(extraEnv={
            "XDG_DATA_HOME": os.path.join(root, "data"),
            "XDG_CONFIG_HOME": os.path.join(root, "config"),
        })
        return root

    async def waitForTitle(self, title: str) -> dict:
        for _ in range(200):
            code, out = await self.request("GET", "windows")
            found = [w for w in out["windows"] if w["title"] == title]
            if found:
                return found[0]
            await sleep(0.05)
        self.fail(f"no window titled {title!r}")

    async def test_openURLAndFile(self) -> None:
        root = await self.startWithOpener()
        note = os.path.join(root, "note.txt")
        with open(note, "w") as f:
            f.write("hello\n")
        for target in ("agentdesktop-test:hello", note):
            code, out = await self.request("POST", "open", {"target": target})
            self.assertEqual(code, 200, out)
            pid = out["pid"]
            window = await self.waitForTitle(f"opened:{target}")
            self.assertIn(window["pid"], descendants([pid], parentsFromProc()))
            code, out = await self.request("GET", "launch")
            self.assertIn(pid, [p["pid"] for p in out["processes"]])
        for target in ("", os.path.join(root, "missing.txt"), "relative/path.txt",
                       "file:///nonexistent-11a"):
            code, out = await self.request("POST", "open", {"target": target})
            self.assertEqual(code, 400, (target, out))
