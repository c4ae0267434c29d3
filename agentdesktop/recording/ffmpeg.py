"""
ffmpeg for recordings: the command lines (record, thumbnail, probe), and
L{FFmpegRecording}, the life of one recording ffmpeg: ready once it says it
records, stopped by writing C{q}, killed after a grace period.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from agentdesktop.errors import DesktopError
from agentdesktop.outcome import Outcome
from agentdesktop.process import SupervisedProcess

log = Logger()

#: What ffmpeg prints on standard error once it has opened its input and
#: output and begins to record.
READY_MARKERS = (b"Press [q]", b"Output #0")


@dataclass(frozen=True)
class FFmpegOptions:
    """The parts of a recording's command lines that are configuration."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    fps: int = 10
    preset: str = "veryfast"
    maxBytes: int = 104857600


def fileSizeLimit(maxBytes: int) -> int:
    """
    The C{-fs} given to ffmpeg: under MAXBYTES by enough for the fragment
    that ffmpeg still writes after crossing its limit.
    """
    margin = max(maxBytes // 20, min(1 << 20, maxBytes // 4))
    return max(maxBytes - margin, 1)


def recordArgv(options: FFmpegOptions, display: str, path: str) -> list[str]:
    """The ffmpeg command line that records DISPLAY to PATH."""
    fps = str(options.fps)
    return [
        options.ffmpeg,
        "-hide_banner", "-nostats", "-loglevel", "info",
        "-f", "x11grab", "-framerate", fps, "-draw_mouse", "1",
        "-i", display,
        # yuv420p needs even sides.
        "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v", "libx264", "-preset", options.preset,
        # No lookahead or B-frames: frames reach the file at once, so a
        # killed ffmpeg loses about one fragment (one keyframe interval).
        "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-r", fps, "-g", fps, "-keyint_min", fps,
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
        "-flush_packets", "1",
        "-fs", str(fileSizeLimit(options.maxBytes)),
        "-f", "mp4", "-y", path,
    ]


def thumbnailArgv(options: FFmpegOptions, video: str, path: str, fromEnd: bool) -> list[str]:
    """The ffmpeg command line that writes the last frame of VIDEO to PATH."""
    seek = ["-sseof", "-1"] if fromEnd else []
    return [
        options.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        *seek, "-i", video,
        "-frames:v", "1", "-update", "1",
        "-vf", "scale='min(640,iw)':-2",
        "-q:v", "4", "-f", "image2", "-y", path,
    ]


def probeArgv(options: FFmpegOptions, video: str) -> list[str]:
    return [
        options.ffprobe, "-v", "error", "-select_streams", "v:0",
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


class FFmpegRecording(SupervisedProcess):
    """
    One recording ffmpeg.  L{recording} fires once ffmpeg says it records
    and fails with L{DesktopError} (its last error line) if it exits first
    or takes longer than STARTTIMEOUT.  L{stop} asks it to finish (C{q})
    and kills it after a grace period; L{killed} tells whether it had to.
    """

    def __init__(self, clock: IReactorTime, startTimeout: float) -> None:
        super().__init__("ffmpeg", clock)
        self.killed = False
        self._seen = bytearray()
        self._ready: Outcome[None] = Outcome()
        self._timer = clock.callLater(startTimeout, self._tooSlow)

    def recording(self) -> defer.Deferred[None]:
        return self._ready.wait()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        super().childDataReceived(childFD, data)
        if childFD != 2 or self._ready.done:
            return
        self._seen.extend(data)
        if any(m in self._seen for m in READY_MARKERS):
            self._settle(None)
        del self._seen[: max(0, len(self._seen) - 64)]

    def _settle(self, error: DesktopError | None) -> None:
        if self._timer.active():
            self._timer.cancel()
        if error is None:
            self._ready.succeed(None)
        else:
            self._ready.fail(error)

    def _tooSlow(self) -> None:
        self._settle(DesktopError("ffmpeg did not start recording in time"))

    def ended(self, reason: BaseException) -> None:
        self._settle(DesktopError("ffmpeg exited: " + (self.lastError() or str(reason))))

    def stop(self, grace: float) -> defer.Deferred[BaseException]:
        """
        Ask ffmpeg to finish the file, and kill it if it has not within
        GRACE seconds.

        @return: C{Deferred} firing with the exit reason.
        """
        if not self.exited:
            try:
                assert self.transport is not None
                self.transport.write(b"q")
            except Exception as e:
                log.warn("Cannot ask ffmpeg to stop ({error}); waiting for the grace period",
                         error=e)
            self.killAfter(grace)
        return self.whenEnded()

    def killing(self) -> None:
        self.killed = True
