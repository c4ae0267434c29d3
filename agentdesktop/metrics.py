"""
The service's Prometheus metrics (SPEC section 17): one L{Metrics} per
service, with its own registry (never C{prometheus_client}'s global one),
so that tests and several services in one process do not collide.

The components report to it at a few shared places: the action runner
(actions, their latency, batch sizes, screenshots, settle waits), the VNC
splice (connections and bytes), the desktop (restarts) and the control
lease; the active recordings and the lease's state are read when scraped.
Pure: no reactor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

PREFIX = "agentdesktop"

#: Seconds: from a fast click to the longest hold or wait (60 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Encoded images: 4 KiB to 16 MiB, by fours.
IMAGE_BUCKETS = tuple(float(4096 * 4**i) for i in range(7))
#: Actions in one batch (at most 100).
BATCH_BUCKETS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: Seconds waited for the screen to settle (at most 10 s).
SETTLE_BUCKETS = (0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

#: The two listeners VNC viewers come through.
WEBSOCKET = "websocket"
RAW = "raw"


class Relayed:
    """
    Bytes moved between viewers and the desktop's VNC server, summed with
    one integer add per read or write (the splice's hot path takes nothing
    more) and read when scraped.
    """

    def __init__(self) -> None:
        self.toViewer = 0
        self.toServer = 0


class _RelayedCollector:
    def __init__(self, relayed: Relayed) -> None:
        self.relayed = relayed

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_vnc_relayed_bytes",
            "RFB bytes relayed between VNC viewers (/vnc and the raw listener) and the desktop.",
            labels=["direction"],
        )
        family.add_metric(["to_viewer"], self.relayed.toViewer)
        family.add_metric(["to_server"], self.relayed.toServer)
        yield family


class Metrics:
    """
    Every metric of one service, in L{registry}.

    @ivar relayed: the VNC byte counts the splice adds to.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.actions = Counter(
            f"{PREFIX}_actions", "Actions run (on /action, in batches, dialects and MCP), "
            "by action and HTTP-style status (200, 409 refused while a person holds control, "
            "500 failed).", ["action", "status"], registry=reg)
        self.actionSeconds = Histogram(
            f"{PREFIX}_action_duration_seconds", "How long actions took to run, by action.",
            ["action"], buckets=LATENCY_BUCKETS, registry=reg)
        self.batchActions = Histogram(
            f"{PREFIX}_batch_actions", "Actions (or vendor calls) per batch or model turn.",
            buckets=BATCH_BUCKETS, registry=reg)
        self.screenshotBytes = Histogram(
            f"{PREFIX}_screenshot_bytes", "Size of encoded screenshots and zooms, by format.",
            ["format"], buckets=IMAGE_BUCKETS, registry=reg)
        self.screenshotSeconds = Histogram(
            f"{PREFIX}_screenshot_duration_seconds",
            "How long screenshots and zooms took (grab, resize, encode), by format.",
            ["format"], buckets=LATENCY_BUCKETS, registry=reg)
        self.settleSeconds = Histogram(
            f"{PREFIX}_settle_wait_seconds", "Seconds waited for the screen to settle before an "
            "observation, by outcome (settled, or timed_out when it kept changing).",
            ["outcome"], buckets=SETTLE_BUCKETS, registry=reg)
        self.recordingsActive = Gauge(
            f"{PREFIX}_recordings_active", "Recordings being recorded now.", registry=reg)
        self.vncConnections = Gauge(
            f"{PREFIX}_vnc_connections", "Open VNC viewer connections, by listener "
            "(websocket: /vnc; raw: --vnc-listen).", ["listener"], registry=reg)
        self.desktopRestarts = Counter(
            f"{PREFIX}_desktop_restarts", "Restarts after a crash, by part: desktop (a fresh "
            "Xvnc and everything on it) or window_manager.", ["part"], registry=reg)
        self.controlHeld = Gauge(
            f"{PREFIX}_control_held", "1 while a person holds the control lease, else 0.",
            registry=reg)
        self.controlHandovers = Counter(
            f"{PREFIX}_control_handovers", "Times control changed hands, by who got it "
            "(person or agent).", ["to"], registry=reg)
        self.relayed = Relayed()
        reg.register(_RelayedCollector(self.relayed))
        ProcessCollector(namespace=PREFIX, registry=reg)
        for listener in (WEBSOCKET, RAW):
            self.vncConnections.labels(listener)
        for part in ("desktop", "window_manager"):
            self.desktopRestarts.labels(part)
        for to in ("person", "agent"):
            self.controlHandovers.labels(to)

    # -- what the components report

    def action(self, name: str, status: int, seconds: float | None = None) -> None:
        """An action NAME ended with STATUS after SECONDS (C{None}: it never ran)."""
        self.actions.labels(name, str(status)).inc()
        if seconds is not None:
            self.actionSeconds.labels(name).observe(max(0.0, seconds))

    def batch(self, size: int) -> None:
        """A batch (or model turn) of SIZE actions began."""
        self.batchActions.observe(size)

    def screenshot(self, fmt: str, size: int, seconds: float) -> None:
        """An image of SIZE bytes in format FMT took SECONDS."""
        self.screenshotBytes.labels(fmt).observe(size)
        self.screenshotSeconds.labels(fmt).observe(max(0.0, seconds))

    def settled(self, settled: bool, waitedMs: int) -> None:
        """A wait for the screen to settle ended (SETTLED or timed out) after WAITEDMS."""
        self.settleSeconds.labels("settled" if settled else "timed_out").observe(waitedMs / 1000)

    def vncOpened(self, listener: str) -> Callable[[], None]:
        """
        A viewer connected through LISTENER (L{WEBSOCKET} or L{RAW}).

        @return: what to call, once, when it disconnects.
        """
        gauge = self.vncConnections.labels(listener)
        gauge.inc()
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                gauge.dec()

        return close

    def desktopRestarted(self, part: str) -> None:
        """The desktop restarted PART (C{"desktop"} or C{"window_manager"}) after it died."""
        self.desktopRestarts.labels(part).inc()

    def controlChanged(self, held: bool) -> None:
        """Control changed hands: to a person when HELD, else back to the agent."""
        self.controlHandovers.labels("person" if held else "agent").inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """
        The registry in the text format the ACCEPT header asks for
        (Prometheus text, or OpenMetrics), and its content type.
        """
        encoder, contentType = choose_encoder(accept or "")
        return encoder(self.registry), contentType
