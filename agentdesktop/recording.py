"""
Screen recording: one ffmpeg (x11grab, libx264) child per recording, in its
own process group, writing a fragmented MP4 that survives a killed ffmpeg.
Files are named only from the recording's canonical UUID.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, error, task
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop, IRecorder
from agentdesktop.process import Child, runTool

log = Logger()

#: What ffmpeg prints on standard error once it has opened its input and
#: output and begins to record.
READY_MARKERS = (b"Press [q]", b"Output #0")

STARTING = "starting"
RECORDING = "recording"
STOPPING = "stopping"
STOPPED = "stopped"


@dataclass
class RecorderConfig:
    """How to record; the defaults are the service's."""

    directory: str | None = None
    runtimeDir: str | None = None
    fps: int = 10
    maxRecordings: int = 5
    idleTimeout: float = 600.0
    stopGrace: float = 15.0
    maxRecordingBytes: int = 104857600
    maxThumbnailBytes: int = 10485760
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    preset: str = "veryfast"
    #: Stopped recordings' files live this long.
    keepStopped: float = 3600.0
    #: How often stopped recordings are looked at for deletion.
    collectInterval: float = 60.0
    #: How long ffmpeg may take to open the display and begin recording.
    startTimeout: float = 15.0
    #: Time limit for ffprobe and the thumbnail ffmpeg.
    toolTimeout: float = 30.0


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


def fileSizeLimit(maxBytes: int) -> int:
    """
    The C{-fs} given to ffmpeg: under MAXBYTES by enough for the fragment
    that ffmpeg still writes after crossing its limit.
    """
    margin = max(maxBytes // 20, min(1 << 20, maxBytes // 4))
    return max(maxBytes - margin, 1)


def recordArgv(config: RecorderConfig, display: str, path: str) -> list[str]:
    """The ffmpeg command line that records DISPLAY to PATH."""
    fps = str(config.fps)
    return [
        config.ffmpeg,
        "-hide_banner", "-nostats", "-loglevel", "info",
        "-f", "x11grab", "-framerate", fps, "-draw_mouse", "1",
        "-i", display,
        # yuv420p needs even sides.
        "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v", "libx264", "-preset", config.preset,
        # No lookahead or B-frames: frames reach the file at once, so a
        # killed ffmpeg loses about one fragment (one keyframe interval).
        "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-r", fps, "-g", fps, "-keyint_min", fps,
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
        "-flush_packets", "1",
        "-fs", str(fileSizeLimit(config.maxRecordingBytes)),
        "-f", "mp4", "-y", path,
    ]


def thumbnailArgv(config: RecorderConfig, video: str, path: str, fromEnd: bool) -> list[str]:
    """The ffmpeg command line that writes the last frame of VIDEO to PATH."""
    seek = ["-sseof", "-1"] if fromEnd else []
    return [
        config.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        *seek, "-i", video,
        "-frames:v", "1", "-update", "1",
        "-vf", "scale='min(640,iw)':-2",
        "-q:v", "4", "-f", "image2", "-y", path,
    ]


def probeArgv(config: RecorderConfig, video: str) -> list[str]:
    return [
        config.ffprobe, "-v", "error", "-select_streams", "v:0",
        "-count_packets", "-show_entries", "stream=codec_name,nb_read_packets",
        "-of", "json", video,
    ]


def playable(probeOutput: bytes) -> bool:
    """Whether ffprobe's JSON says the file holds H.264 packets."""
    try:
        streams = json.loads(probeOutput.decode("utf-8", "replace")).get("streams", [])
        stream = streams[0]
        return bool(
            stream.get("codec_name") == "h264" and int(stream.get("nb_read_packets", 0)) > 0
        )
    except (ValueError, IndexError, AttributeError, TypeError):
        return False


class _Recording:
    def __init__(self, recordingId: str, videoPath: str, thumbnailPath: str) -> None:
        self.recordingId = recordingId
        self.videoPath = videoPath
        self.thumbnailPath = thumbnailPath
        self.state = STARTING
        self.child: Child | None = None
        self.idleTimer: IDelayedCall | None = None
        self.killTimer: IDelayedCall | None = None
        self.killed = False
        self.started = _Once()
        self.outcome: RecordingResult | APIError | None = None
        self.stoppedAt: float | None = None
        self.waiters: list[defer.Deferred[RecordingResult]] = []
        self.finishing: defer.Deferred[None] | None = None

    def cancelTimers(self) -> None:
        for timer in (self.idleTimer, self.killTimer):
            if timer is not None and timer.active():
                timer.cancel()
        self.idleTimer = None
        self.killTimer = None


@implementer(IRecorder)
class Recorder:
    """
    Records the desktop's screen, one ffmpeg per recording id.
    """

    def __init__(self, reactor: Any, clock: Any, desktop: IDesktop, config: RecorderConfig) -> None:
        self.reactor = reactor
        self.clock = clock
        self.desktop = desktop
        self.config = config
        self._recordings: dict[str, _Recording] = {}
        self._dir: str | None = None
        self._ownDir = False
        self._closed = False
        self._collector: task.LoopingCall | None = None

    # -- files

    def _directory(self) -> str:
        if self._dir is not None and os.path.isdir(self._dir):
            return self._dir
        if self.config.directory is not None:
            os.makedirs(self.config.directory, mode=0o700, exist_ok=True)
            self._dir = self.config.directory
        else:
            base = self.config.runtimeDir or os.environ.get("XDG_RUNTIME_DIR")
            if not base or not os.access(base, os.W_OK):
                base = None
            self._dir = tempfile.mkdtemp(prefix="agentdesktop-recordings-", dir=base)
            os.chmod(self._dir, 0o700)
            self._ownDir = True
        return self._dir

    @staticmethod
    def _remove(*paths: str) -> None:
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warn("Cannot delete {path}: {error}", path=path, error=e)

    def _discard(self, rec: _Recording) -> None:
        rec.cancelTimers()
        self._remove(rec.videoPath, rec.thumbnailPath)
        if self._recordings.get(rec.recordingId) is rec:
            del self._recordings[rec.recordingId]

    def _active(self) -> int:
        return sum(
            1 for r in self._recordings.values()
            if r.state == STARTING or (r.state == RECORDING and r.child is not None and not r.child.exited)
        )

    # -- start

    def start(self, recordingId: str) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._start(recordingId))

    async def _start(self, recordingId: str) -> None:
        if self._closed:
            raise APIError(503, "Desktop API is shutting down.")
        rec = self._recordings.get(recordingId)
        if rec is not None:
            if rec.state == STARTING:
                await rec.started.wait()
                return
            if rec.state == RECORDING and rec.child is not None and not rec.child.exited:
                return
            if rec.state in (RECORDING, STOPPING):
                # Finish the old one before discarding its files.
                try:
                    await self._stop(recordingId)
                except APIError:
                    pass
                return await self._start(recordingId)
            self._discard(rec)
        if self._active() >= self.config.maxRecordings:
            raise APIError(
                500,
                "Failed to start recording.",
                f"{self.config.maxRecordings} recordings are already active, "
                f"the limit set by --max-recordings.",
            )
        try:
            directory = self._directory()
        except OSError as e:
            raise APIError(500, "Failed to start recording.", f"recordings directory: {e}") from None
        rec = _Recording(
            recordingId,
            os.path.join(directory, recordingId + ".mp4"),
            os.path.join(directory, recordingId + ".jpg"),
        )
        self._recordings[recordingId] = rec
        rec.started.run(defer.Deferred.fromCoroutine(self._launch(rec)))
        await rec.started.wait()

    async def _launch(self, rec: _Recording) -> None:
        try:
            try:
                info = await self.desktop.start()
            except DesktopError as e:
                raise APIError(500, "Failed to start recording.", str(e)) from None
            if self._closed:
                raise APIError(503, "Desktop API is shutting down.")
            self._remove(rec.videoPath, rec.thumbnailPath)
            env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
            env.update(DISPLAY=info.display, XAUTHORITY=info.xauthority)
            argv = recordArgv(self.config, info.display, rec.videoPath)
            try:
                child = Child(self.reactor, self.clock, "ffmpeg", argv, env)
            except OSError as e:
                raise APIError(500, "Failed to start recording.", f"cannot run ffmpeg: {e}") from None
            rec.child = child
            await self._ready(child)
        except BaseException:
            if self._recordings.get(rec.recordingId) is rec:
                del self._recordings[rec.recordingId]
            if rec.child is not None and not rec.child.exited:
                await rec.child.kill()
            self._remove(rec.videoPath, rec.thumbnailPath)
            raise
        rec.state = RECORDING
        rec.idleTimer = self.clock.callLater(self.config.idleTimeout, self._idle, rec)
        self._startCollector()
        log.info("Recording {id} started (ffmpeg pid {pid})", id=rec.recordingId, pid=child.pid)

    async def _ready(self, child: Child) -> None:
        """Wait until ffmpeg says it records, or fail with its error."""
        ready: defer.Deferred[None] = defer.Deferred()
        seen = bytearray()

        def onData(fd: int, data: bytes) -> None:
            if fd != 2 or ready.called:
                return
            seen.extend(data)
            if any(m in seen for m in READY_MARKERS):
                ready.callback(None)
            del seen[: max(0, len(seen) - 64)]

        def ended(reason: BaseException) -> None:
            if not ready.called:
                tail = child.stderrText().strip().splitlines()
                ready.errback(APIError(
                    500, "Failed to start recording.",
                    "ffmpeg exited: " + (tail[-1] if tail else str(reason)),
                ))

        def expire() -> None:
            if not ready.called:
                ready.errback(APIError(
                    500, "Failed to start recording.", "ffmpeg did not start recording in time",
                ))

        child.onData = onData
        child.whenEnded().addCallback(ended)
        timer = self.clock.callLater(self.config.startTimeout, expire)
        try:
            await ready
        finally:
            child.onData = None
            if timer.active():
                timer.cancel()

    # -- idle and activity

    def activity(self) -> None:
        for rec in self._recordings.values():
            if rec.idleTimer is not None and rec.idleTimer.active():
                rec.idleTimer.reset(self.config.idleTimeout)

    def _idle(self, rec: _Recording) -> None:
        rec.idleTimer = None
        log.info("Recording {id} stopped after {s} s without actions", id=rec.recordingId, s=self.config.idleTimeout)
        self._stopRecording(rec)

    # -- stop

    def stop(self, recordingId: str) -> defer.Deferred[RecordingResult]:
        return defer.Deferred.fromCoroutine(self._stop(recordingId))

    async def _stop(self, recordingId: str) -> RecordingResult:
        rec = self._recordings.get(recordingId)
        if rec is None:
            raise APIError(404, "Recording not found.")
        if rec.state == STARTING:
            try:
                await rec.started.wait()
            except APIError:
                raise APIError(404, "Recording not found.") from None
        return await self._stopRecording(rec)

    def _stopRecording(self, rec: _Recording) -> defer.Deferred[RecordingResult]:
        """
        Stop REC once (later calls share the outcome).  The work goes on
        even when every caller has given up waiting.
        """
        waiter: defer.Deferred[RecordingResult] = defer.Deferred()
        if rec.state == STOPPED:
            return _outcome(rec.outcome)
        rec.waiters.append(waiter)
        if rec.state == RECORDING:
            rec.state = STOPPING
            rec.finishing = defer.Deferred.fromCoroutine(self._finish(rec))
            rec.finishing.addErrback(
                lambda f: log.failure("Stopping recording {id} failed", f, id=rec.recordingId)
            )
        return waiter

    async def _finish(self, rec: _Recording) -> None:
        rec.cancelTimers()
        try:
            outcome: RecordingResult | APIError = await self._complete(rec)
        except Exception as e:
            log.failure("Finishing recording {id}", id=rec.recordingId)
            outcome = APIError(500, "Failed to stop recording.", str(e) or type(e).__name__)
        rec.outcome = outcome
        rec.state = STOPPED
        rec.stoppedAt = self.clock.seconds()
        waiters, rec.waiters = rec.waiters, []
        for w in waiters:
            if not w.called:  # a caller that gave up cancelled its own
                _outcome(outcome).chainDeferred(w)

    async def _complete(self, rec: _Recording) -> RecordingResult | APIError:
        child = rec.child
        assert child is not None
        if not child.exited:
            try:
                child.process.write(b"q")
            except Exception as e:
                log.warn("Cannot ask ffmpeg to stop ({error}); waiting for the grace period", error=e)

            def kill() -> None:
                rec.killTimer = None
                rec.killed = True
                log.warn(
                    "ffmpeg for recording {id} did not finish within {s} s; killing it",
                    id=rec.recordingId, s=self.config.stopGrace,
                )
                child.kill()

            rec.killTimer = self.clock.callLater(self.config.stopGrace, kill)
        reason = await child.whenEnded()
        if rec.killTimer is not None and rec.killTimer.active():
            rec.killTimer.cancel()
        rec.killTimer = None
        if self._closed:
            return APIError(503, "Desktop API is shutting down.")
        clean = isinstance(reason, error.ProcessDone) and not rec.killed
        try:
            size = os.path.getsize(rec.videoPath)
        except OSError:
            size = 0
        if size == 0:
            log.error("Recording {id}: ffmpeg left no video ({reason})", id=rec.recordingId, reason=str(reason))
            return APIError(500, "Recording is corrupted.", "ffmpeg wrote no video")
        if not clean:
            try:
                out = await runTool(
                    self.reactor, self.clock, probeArgv(self.config, rec.videoPath), {},
                    self.config.toolTimeout,
                )
            except DesktopError as e:
                log.error("Recording {id}: ffprobe failed: {error}", id=rec.recordingId, error=str(e))
                out = b""
            if not playable(out):
                return APIError(500, "Recording is corrupted.", "ffmpeg was killed and left no playable video")
        if size > self.config.maxRecordingBytes:
            return APIError(
                413, "Recording file exceeds maximum allowed size.",
                f"{size} bytes; the limit is {self.config.maxRecordingBytes}.",
            )
        thumb = await self._thumbnail(rec)
        log.info("Recording {id} stopped: {size} bytes", id=rec.recordingId, size=size)
        return RecordingResult(
            rec.recordingId, rec.videoPath, size,
            rec.thumbnailPath if thumb else None, thumb,
        )

    async def _thumbnail(self, rec: _Recording) -> int:
        """Write the thumbnail; @return: its size, or 0 when there is none usable."""
        for fromEnd in (True, False):
            self._remove(rec.thumbnailPath)
            try:
                await runTool(
                    self.reactor, self.clock,
                    thumbnailArgv(self.config, rec.videoPath, rec.thumbnailPath, fromEnd),
                    {}, self.config.toolTimeout,
                )
            except DesktopError as e:
                log.warn("Recording {id}: thumbnail failed: {error}", id=rec.recordingId, error=str(e))
                continue
            try:
                size = os.path.getsize(rec.thumbnailPath)
            except OSError:
                continue
            if size == 0:
                continue
            if size > self.config.maxThumbnailBytes:
                self._remove(rec.thumbnailPath)
                return 0
            return size
        return 0

    # -- deletion

    def _startCollector(self) -> None:
        if self._collector is None:
            self._collector = task.LoopingCall(self.collect)
            self._collector.clock = self.clock
            self._collector.start(self.config.collectInterval, now=False)

    def collect(self) -> None:
        """Delete the files of recordings stopped more than an hour ago."""
        now = self.clock.seconds()
        for rec in list(self._recordings.values()):
            if rec.state == STOPPED and rec.stoppedAt is not None and now - rec.stoppedAt >= self.config.keepStopped:
                log.info("Deleting recording {id}, stopped an hour ago", id=rec.recordingId)
                self._discard(rec)

    def close(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        self._closed = True
        if self._collector is not None and self._collector.running:
            self._collector.stop()
        self._collector = None
        ended: list[defer.Deferred[Any]] = []
        for rec in list(self._recordings.values()):
            rec.cancelTimers()
            if not rec.started.done:
                ended.append(rec.started.wait().addErrback(lambda f: None))
            if rec.child is not None and not rec.child.exited:
                ended.append(rec.child.kill())
        await defer.gatherResults(ended)
        await defer.gatherResults([
            r.finishing for r in self._recordings.values()
            if r.finishing is not None and not r.finishing.called
        ])
        for rec in list(self._recordings.values()):
            self._discard(rec)
        if self._dir is not None and self._ownDir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class _Once:
    """The outcome of one piece of work that many callers wait for."""

    def __init__(self) -> None:
        self.done = False
        self.result: Any = None
        self._waiters: list[defer.Deferred[Any]] = []

    def run(self, d: defer.Deferred[Any]) -> None:
        def fire(result: Any) -> None:
            self.done = True
            self.result = result
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                self._give(w)

        d.addBoth(fire)

    def _give(self, w: defer.Deferred[Any]) -> None:
        if w.called:
            return
        if isinstance(self.result, Failure):
            w.errback(Failure(self.result.value, self.result.type, self.result.tb))
        else:
            w.callback(self.result)

    def wait(self) -> defer.Deferred[Any]:
        w: defer.Deferred[Any] = defer.Deferred()
        if self.done:
            self._give(w)
        else:
            self._waiters.append(w)
        return w


def _outcome(outcome: RecordingResult | APIError | None) -> defer.Deferred[RecordingResult]:
    if isinstance(outcome, RecordingResult):
        return defer.succeed(outcome)
    if isinstance(outcome, APIError):
        return defer.fail(APIError(outcome.status, outcome.message, outcome.detail))
    return defer.fail(APIError(500, "Failed to stop recording."))


__all__ = ["Recorder", "RecorderConfig", "RecordingResult"]
