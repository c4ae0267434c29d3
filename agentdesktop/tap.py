"""
C{twistd agentdesktop}: options and service construction.

Under twistd a bad option is one line on standard error naming the option
and what it needs, and exit status 2 (L{Options.parseOptions}); endpoints
are checked without listening (L{agentdesktop.endpoints}), and an endpoint
that cannot be bound at start-up is one log line and a non-zero exit
(L{agentdesktop.service.DesktopService}).
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Callable
from typing import Any

import twisted
from twisted.application.service import IService
from twisted.python import usage

from agentdesktop import __version__
from agentdesktop.endpoints import Listener, checkServerEndpoint, isLocalEndpoint

from agentdesktop.programs import resolveProgram
from agentdesktop.recording import Recorder, RecorderConfig
from agentdesktop.service import DesktopService, makeState
from agentdesktop.state import ALWAYS, WITH_CONTROL
from agentdesktop.vnc.listener import vncListenService
from agentdesktop.web.resource import makeSite
from agentdesktop.web.root import makeRoot
from agentdesktop.x11 import DesktopConfig, X11Desktop
from agentdesktop.x11.desktop import DESKTOPS

DEFAULT_LISTEN = "tcp:8790:interface=127.0.0.1"


class Size(tuple[int, int]):
    """A (width, height) pair that prints as WIDTHxHEIGHT (in --help)."""

    def __str__(self) -> str:
        return f"{self[0]}x{self[1]}"


def _geometry(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT like 1920x1080, got {value!r}") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise ValueError(f"each side must be between 64 and 8192, got {value!r}")
    return Size((w, h))


def _depth(value: str) -> int:
    depth = int(value)
    if depth not in (16, 24, 32):
        raise ValueError(f"must be 16, 24 or 32, got {value}")
    return depth


def _positive(kind: type) -> Any:
    def coerce(value: str) -> Any:
        try:
            v = kind(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if v <= 0:
            raise ValueError(f"must be positive, got {value}")
        return v

    coerce.coerceDoc = "Must be positive."  # type: ignore[attr-defined]
    return coerce


_geometry.coerceDoc = "WIDTHxHEIGHT."  # type: ignore[attr-defined]


def _viewerInput(value: str) -> str:
    if value not in (WITH_CONTROL, ALWAYS):
        raise ValueError(f"must be {WITH_CONTROL} or {ALWAYS}, got {value!r}")
    return value


def _namingErrors(parameters: list[list[Any]]) -> list[list[Any]]:
    """
    PARAMETERS (C{optParameters}) with coerce functions whose errors name
    their option: C{usage.Options} reports a coerce function's ValueError
    as "Parameter type enforcement failed: ..." without saying which.
    """
    return [[*p[:4], _naming(p[0], p[4])] if len(p) > 4 else p for p in parameters]


def _naming(name: str, coerce: Callable[[str], Any]) -> Callable[[str], Any]:
    def coerced(value: str) -> Any:
        try:
            return coerce(value)
        except ValueError as e:
            raise usage.UsageError(f"--{name} {value}: {e}") from None

    coerced.coerceDoc = getattr(coerce, "coerceDoc", "")  # type: ignore[attr-defined]
    return coerced


def announceAPI(where: str, secure: bool) -> str:
    """The log line saying where the HTTP API is (WHERE as the bound address reads)."""
    if where.startswith("unix socket"):
        return f"HTTP API on {where} (under /api/v0/desktop/)"
    scheme = "https" if secure else "http"
    return f"HTTP API on {scheme}://{where}/api/v0/desktop/ (the viewer is at that URL)"


def _desktop(value: str) -> str:
    if value not in DESKTOPS:
        raise ValueError(f"must be {' or '.join(DESKTOPS)}, got {value!r}")
    return value


def _xdotoolMode(value: str) -> str:
    if value not in ("persistent", "per-action"):
        raise ValueError(f"must be persistent or per-action, got {value!r}")
    return value


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run a Linux desktop (Xvnc + a window manager) and serve the agent "
        "desktop API on it: actions, screenshots, VNC over WebSocket, recording."
    )

    optFlags = [
        ["allow-token-in-url", None, "Accept the bearer token in URLs (?token=); prefer tickets."],
        ["vnc-listen-insecure", None,
         "Allow --vnc-listen on a non-loopback endpoint while a token is set (raw VNC has no auth)."],
        ["metrics-without-auth", None,
         "Serve GET /metrics without the bearer token (for a scraper on a trusted network)."],
    ]

    optParameters = _namingErrors([
        ["geometry", None, Size((1920, 1080)), "Native screen size.", _geometry],
        ["depth", None, 24, "Colour depth (16, 24 or 32).", _depth],
        ["desktop", None, "default",
         "default (a background and a panel with a terminal, a browser and a text editor) "
         "or minimal (the bare window manager).", _desktop],
        ["window-manager", None, "openbox", "Window manager command, or 'none'."],
        ["vnc-listen", None, None, "Also expose raw RFB on this endpoint, e.g. tcp:5900:interface=127.0.0.1."],
        ["recordings-dir", None, None, "Directory for recordings (default: a private directory under the runtime dir)."],
        ["recording-fps", None, 10, "Recording frame rate.", _positive(int)],
        ["max-recordings", None, 5, "Concurrently active recordings.", _positive(int)],
        ["recording-idle-timeout", None, 600.0, "Seconds without /action before a recording stops.", _positive(float)],
        ["recording-stop-grace", None, 15.0, "Seconds to wait for ffmpeg after 'q' before killing it.", _positive(float)],
        ["max-recording-bytes", None, 104857600, "Larger recordings are refused with 413.", _positive(int)],
        ["max-thumbnail-bytes", None, 10485760, "Larger thumbnails are omitted.", _positive(int)],
        ["auth-token-file", None, None, "File holding the bearer token every route then requires."],
        ["control-idle-timeout", None, 60.0,
         "Seconds without input from the person in control before control returns to the agent.",
         _positive(float)],
        ["viewer-input", None, WITH_CONTROL,
         "Which viewers may send input: with-control (viewers allowed to take control, while a "
         "person holds it) or always.", _viewerInput],
        ["runtime-dir", None, None, "Where the private desktop directory is made (default: $XDG_RUNTIME_DIR or the temp dir)."],
        ["xvnc", None, "Xvnc", "Xvnc binary."],
        ["xdotool", None, "xdotool", "xdotool binary."],
        ["dbus-daemon", None, "dbus-daemon", "dbus-daemon binary (the desktop's session bus)."],
        ["at-spi-bus-launcher", None, "/usr/libexec/at-spi-bus-launcher", "AT-SPI bus launcher (accessibility)."],
        ["xdg-open", None, "xdg-open", "xdg-open binary (what POST /open runs)."],
        ["xdotool-mode", None, "persistent",
         "persistent (one long-lived xdotool reads every input command) or "
         "per-action (one xdotool process per action; slower, for comparison).", _xdotoolMode],
        ["tint2", None, "tint2", "tint2 binary (the default desktop's panel)."],
        ["ffmpeg", None, "ffmpeg", "ffmpeg binary."],
        ["ffprobe", None, "ffprobe", "ffprobe binary."],
    ])

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["autostart"] = []

    def opt_listen(self, endpoint: str) -> None:
        """HTTP endpoint (Twisted endpoint string; repeatable) [default: tcp:8790:interface=127.0.0.1]."""
        try:
            checkServerEndpoint("--listen", endpoint)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        self["listen"].append(endpoint)

    def opt_version(self) -> None:
        """Print agentdesktop's version (and Twisted's and Python's) and exit."""
        print(f"agentdesktop {__version__} (Twisted {twisted.__version__}, "
              f"Python {platform.python_version()})")
        sys.exit(0)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse OPTIONS.  As twistd's subcommand (C{parent} is set), a bad
        option is one line on standard error and exit status 2: twistd's
        own C{app.run} would print its whole help and exit 1 on any
        L{usage.UsageError}, and this is the one place a plugin can stop
        that.  Called directly, it raises L{usage.UsageError}.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            sys.stderr.write(f"twistd agentdesktop: {e}\n")
            sys.exit(2)

    def opt_autostart(self, command: str) -> None:
        """Command to run on the desktop once it is up (repeatable)."""
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise usage.UsageError(f"--autostart {command!r}: {e}") from None
        if not argv:
            raise usage.UsageError("--autostart needs a command")
        self["autostart"].append(argv)

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        wm = self["window-manager"].strip()
        self["window-manager"] = None if wm in ("", "none") else shlex.split(wm)
        path = self["auth-token-file"]
        self["token"] = None
        if path is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                raise usage.UsageError(f"--auth-token-file: {e.strerror}: {path}") from None
            if not token:
                raise usage.UsageError(f"--auth-token-file: {path} is empty")
            self["token"] = token
        self.checkVNCListen()
        self.checkPanel()
        for name in ("recordings-dir", "runtime-dir"):
            value = self[name]
            if value is not None and os.path.exists(value) and not os.path.isdir(value):
                raise usage.UsageError(f"--{name}: {value} is not a directory")

    def checkPanel(self) -> None:
        """The default desktop needs its panel."""
        if self["desktop"] != "default":
            return
        try:
            resolveProgram(self["tint2"], os.environ)
        except ValueError as e:
            raise usage.UsageError(
                f"--desktop default needs tint2 (Debian package tint2): {e}; "
                "install it, or pass --desktop minimal"
            ) from None

    def checkVNCListen(self) -> None:
        """Refuse a raw VNC listener others can reach while a token guards the API."""
        endpoint = self["vnc-listen"]
        if not endpoint:
            return
        try:
            checkServerEndpoint("--vnc-listen", endpoint)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        local = isLocalEndpoint(endpoint)
        if not local and self["token"] is not None and not self["vnc-listen-insecure"]:
            raise usage.UsageError(
                f"--vnc-listen {endpoint} is reachable from other machines and raw VNC has no "
                "authentication, which would bypass the token: bind it to 127.0.0.1 or a unix "
                "socket, or pass --vnc-listen-insecure"
            )


def makeDesktop(options: Options, reactor: Any) -> X11Desktop:
    width, height = options["geometry"]
    return X11Desktop(
        reactor,
        DesktopConfig(
            width=width,
            height=height,
            depth=options["depth"],
            windowManager=options["window-manager"],
            autostart=options["autostart"],
            xvnc=options["xvnc"],
            xdotool=options["xdotool"],
            dbusDaemon=options["dbus-daemon"],
            atspiBusLauncher=options["at-spi-bus-launcher"],
            xdgOpen=options["xdg-open"],
            xdotoolChannel=options["xdotool-mode"] == "persistent",
            desktop=options["desktop"],
            tint2=options["tint2"],
            runtimeDir=options["runtime-dir"],
        ),
    )


def makeRecorder(options: Options, reactor: Any, desktop: X11Desktop) -> Recorder:
    return Recorder(
        reactor,
        reactor,
        desktop,
        RecorderConfig(
            directory=options["recordings-dir"],
            runtimeDir=options["runtime-dir"],
            fps=options["recording-fps"],
            maxRecordings=options["max-recordings"],
            idleTimeout=options["recording-idle-timeout"],
            stopGrace=options["recording-stop-grace"],
            maxRecordingBytes=options["max-recording-bytes"],
            maxThumbnailBytes=options["max-thumbnail-bytes"],
            ffmpeg=options["ffmpeg"],
            ffprobe=options["ffprobe"],
        ),
    )


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    desktop = makeDesktop(options, reactor)
    state = makeState(
        desktop, reactor, options["token"], makeRecorder(options, reactor, desktop),
        controlIdleTimeout=options["control-idle-timeout"],
        viewerInput=options["viewer-input"],
        allowTokenInURL=bool(options["allow-token-in-url"]),
        metricsWithoutAuth=bool(options["metrics-without-auth"]),
    )
    svc = DesktopService(state)
    site = makeSite(makeRoot(state, reactor))
    for endpoint in options["listen"]:
        Listener(reactor, "--listen", endpoint, site, announceAPI).setServiceParent(svc)
    if options["vnc-listen"]:
        vncListenService(options["vnc-listen"], state, reactor).setServiceParent(svc)
    return svc
