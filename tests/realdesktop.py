"""
Helpers for integration tests: a real desktop (Xvnc, own display through
-displayfd, own private directory) behind the real site on a real port.
"""

from __future__ import annotations

import json
import os
from typing import Any

import treq
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from agentdesktop.desktop import DesktopConfig, DesktopInfo, X11Desktop
from agentdesktop.service import makeState
from agentdesktop.web import makeRoot, makeSite
from agentdesktop.xserver import XSession


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class DesktopTestCase(TestCase):
    """Each test gets a fresh desktop and site; both are torn down after."""

    timeout = 120
    geometry = (1920, 1080)
    windowManager: tuple[str, ...] | None = ("openbox",)

    async def startDesktop(self) -> DesktopInfo:
        self.desktop = X11Desktop(
            reactor,
            DesktopConfig(
                width=self.geometry[0], height=self.geometry[1],
                windowManager=self.windowManager, runtimeDir=self.mktemp(),
                extraEnv={"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            ),
        )
        os.makedirs(self.desktop.config.runtimeDir or "", exist_ok=True)
        self.addCleanup(self.desktop.stop)
        self.info = await self.desktop.start()
        self.state = makeState(self.desktop, reactor)
        port = reactor.listenTCP(0, makeSite(makeRoot(self.state)), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}/api/v0/desktop/"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.x = XSession(self.info.display)
        self.addCleanup(self.x.close)
        return self.info

    async def action(self, **body: Any) -> tuple[int, dict[str, Any]]:
        response = await treq.post(
            self.base + "action", json.dumps(body).encode(), pool=self.pool
        )
        return response.code, json.loads(await response.content())

    async def ok(self, **body: Any) -> dict[str, Any]:
        code, out = await self.action(**body)
        self.assertEqual(code, 200, out)
        return out

    def env(self) -> dict[str, str]:
        return dict(os.environ, DISPLAY=self.info.display, XAUTHORITY=self.info.xauthority,
                    LC_ALL="C.UTF-8", LANG="C.UTF-8")

    async def waitForWindow(self, cls: str) -> None:
        """Wait until a window of class CLS is visible, and focus it."""
        from twisted.internet.utils import getProcessOutputAndValue

        out, err, code = await getProcessOutputAndValue(
            "timeout", ["20", "xdotool", "search", "--sync", "--onlyvisible", "--class", cls,
                        "windowactivate"], env=self.env(),
        )
        self.assertEqual(code, 0, err)

    def pointerMask(self) -> int:
        return int(self.x.root.query_pointer().mask)

    def pressedKeycodes(self) -> list[int]:
        keymap = self.x.display.query_keymap()
        return [i * 8 + b for i, bits in enumerate(keymap) for b in range(8) if bits & (1 << b)]
