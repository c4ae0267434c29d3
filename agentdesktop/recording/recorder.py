"""
Screen recording: one ffmpeg (x11grab, libx264) child per recording, in its
own process group, writing a fragmented MP4 that survives a killed ffmpeg.
Files are named only from the recording's canonical UUID.  ffmpeg's life is
L{FFmpegRecording}'s; the L{Recorder} keeps the policy: limits, idle
timers, what a stop returns, when files are deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, error, task
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop, IRecorder, RecordingResult
from agentdesktop.outcome import Outcome
from agentdesktop.process import runTool
from agentdesktop.recording.ffmpeg import (
    FFmpegOptions,
    FFmpegRecording,
    playable,
    probeArgv,
    recordArgv,
    thumbnailArgv,
)

log = Logger()

STARTING = "starting"
RECORDING = "recording"
STOPPING = "stopping"
STOPPED = "stopped"

#: The answers the reference API gives, word for word.
NOT_FOUND = APIError(404, "Recording not found.", "unknown recording ID")
SHUTTING_DOWN = APIError(503, "Desktop API is shutting down.")


def _copy(e: APIError) -> APIError:
    return APIError(e.status, e.message, e.detail)


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

    @property
    def ffmpegOptions(self) -> FFmpegOptions:
        return FFmpegOptions(self.ffmpeg, self.ffprobe, self.fps, self.preset,
                             self.maxRecordingBytes)


class _Recording:
    def __init__(self, recordingId: str, videoPath: str, thumbnailPath: str) -> None:
        self.recordingId = recordingId
        self.videoPath = videoPath
        self.thumbnailPath = thumbnailPath
        self.state = STARTING
        self.child: FFmpegRecording | None = None
        self.idleTimer: IDelayedCall | None = None
        self.started: Outcome[None] = Outcome()
        self.stopped: Outcome[RecordingResult] = Outcome()
        self.stoppedAt: float | None = None
        self.finishing: defer.Deferred[None] | None = None

    @property
    def active(self) -> bool:
        return self.state == STARTING or (
            self.state == RECORDING and self.child is not None and not self.child.exited
        )

    def cancelTimers(self) -> None:
        if self.idleTimer is not None and self.idleTimer.active():
            self.idleTimer.cancel()
        self.idleTimer = None


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

    def activeCount(self) -> int:
        return sum(1 for r in self._recordings.values() if r.active)

    # -- start

    def start(self, recordingId: str) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._start(recordingId))

    async def _start(self, recordingId: str) -> None:
        if self._closed:
            raise _copy(SHUTTING_DOWN)
        rec = self._recordings.get(recordingId)
        if rec is not None:
            if rec.state == STARTING:
                await rec.started.wait()
                return
            if rec.active:
                return
            if rec.state in (RECORDING, STOPPING):
                # Finish the old one before discarding its files.
                try:
                    await self._stop(recordingId)
                except APIError:
                    pass
                return await self._start(recordingId)
            self._discard(rec)
        if self.activeCount() >= self.config.maxRecordings:
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
            await self._spawnFFmpeg(rec)
        except BaseException as e:
            if self._recordings.get(rec.recordingId) is rec:
                del self._recordings[rec.recordingId]
            if rec.child is not None and not rec.child.exited:
                await rec.child.kill()
            self._remove(rec.videoPath, rec.thumbnailPath)
            if self._closed:
                # It failed because the service began stopping.
                raise _copy(SHUTTING_DOWN) from None
            if isinstance(e, DesktopError):
                raise APIError(500, "Failed to start recording.", str(e)) from None
            raise
        rec.state = RECORDING
        rec.idleTimer = self.clock.callLater(self.config.idleTimeout, self._idle, rec)
        self._startCollector()
        assert rec.child is not None
        log.info("Recording {id} started (ffmpeg pid {pid})", id=rec.recordingId, pid=rec.child.pid)

    async def _spawnFFmpeg(self, rec: _Recording) -> None:
        """
        Start ffmpeg for REC and wait until it records.

        @raise DesktopError: when the desktop or ffmpeg fails.
        """
        info = await self.desktop.start()
        if self._closed:
            raise _copy(SHUTTING_DOWN)
        self._remove(rec.videoPath, rec.thumbnailPath)
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
        env.update(DISPLAY=info.display, XAUTHORITY=info.xauthority)
        child = FFmpegRecording(self.clock, self.config.startTimeout)
        try:
            child.spawn(self.reactor, recordArgv(self.config.ffmpegOptions, info.display,
                                                 rec.videoPath), env)
        except OSError as e:
            raise DesktopError(f"cannot run ffmpeg: {e}") from None
        rec.child = child
        await child.recording()

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
            raise _copy(NOT_FOUND)
        if rec.state == STARTING:
            try:
                await rec.started.wait()
            except APIError:
                raise _copy(NOT_FOUND) from None
        return await self._stopRecording(rec)

    def _stopRecording(self, rec: _Recording) -> defer.Deferred[RecordingResult]:
        """
        Stop REC once (later calls share the outcome).  The work goes on
        even when every caller has given up waiting.
        """
        if rec.state == RECORDING:
            rec.state = STOPPING
            rec.finishing = defer.Deferred.fromCoroutine(self._finish(rec))
        return rec.stopped.wait()

    async def _finish(self, rec: _Recording) -> None:
        rec.cancelTimers()
        try:
            outcome: RecordingResult | APIError = await self._complete(rec)
        except Exception as e:
            log.failure("Finishing recording {id}", id=rec.recordingId)
            outcome = APIError(500, "Failed to stop recording.", str(e) or type(e).__name__)
        rec.state = STOPPED
        rec.stoppedAt = self.clock.seconds()
        if isinstance(outcome, APIError):
            rec.stopped.fail(outcome)
        else:
            rec.stopped.succeed(outcome)

    async def _complete(self, rec: _Recording) -> RecordingResult | APIError:
        child = rec.child
        assert child is not None
        reason = await child.stop(self.config.stopGrace)
        if child.killed:
            log.warn("ffmpeg for recording {id} did not finish within {s} s; it was killed",
                     id=rec.recordingId, s=self.config.stopGrace)
        if self._closed:
            return _copy(SHUTTING_DOWN)
        clean = isinstance(reason, error.ProcessDone) and not child.killed
        try:
            size = os.path.getsize(rec.videoPath)
        except OSError:
            size = 0
        if size == 0:
            log.error("Recording {id}: ffmpeg left no video ({reason})", id=rec.recordingId, reason=str(reason))
            return APIError(500, "Recording is corrupted.", "recording corrupted: ffmpeg wrote no video")
        if not clean and not await self._playable(rec):
            return APIError(500, "Recording is corrupted.", "recording corrupted: process was force-killed")
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

    async def _playable(self, rec: _Recording) -> bool:
        """Whether ffprobe finds H.264 in what a killed ffmpeg left."""
        try:
            out = await runTool(
                self.reactor, self.clock, probeArgv(self.config.ffmpegOptions, rec.videoPath),
                {}, self.config.toolTimeout,
            )
        except DesktopError as e:
            log.error("Recording {id}: ffprobe failed: {error}", id=rec.recordingId, error=str(e))
            return False
        return playable(out)

    async def _thumbnail(self, rec: _Recording) -> int:
        """Write the thumbnail; @return: its size, or 0 when there is none usable."""
        for fromEnd in (True, False):
            self._remove(rec.thumbnailPath)
            try:
                await runTool(
                    self.reactor, self.clock,
                    thumbnailArgv(self.config.ffmpegOptions, rec.videoPath, rec.thumbnailPath,
                                  fromEnd),
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


__all__ = ["Recorder", "RecorderConfig", "RecordingResult"]
