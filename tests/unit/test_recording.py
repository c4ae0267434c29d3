"""
The recorder's logic with a fake process reactor and a L{task.Clock}, and
the recording resources through L{StubTreq}.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from email import message_from_bytes
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer, error, task
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import DesktopInfo, IRecorder, RecordingResult
from agentdesktop.recording import Recorder, RecorderConfig
from agentdesktop.recording.ffmpeg import fileSizeLimit, playable, recordArgv
from agentdesktop.service import makeState
from agentdesktop.testing import FakeProcess, FakeProcessReactor, FakeRecorder
from agentdesktop.web.recording import MultipartBody
from agentdesktop.web.root import makeRoot

RID = "6f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"
RID2 = "0b7b1a0e-2a39-4d3c-9d67-7f7c5b3f3a11"
RID3 = "a3bb189e-8bf9-3888-9912-ace4e6543002"
PROBE_OK = json.dumps({"streams": [{"codec_name": "h264", "nb_read_packets": "30"}]}).encode()


def output(proc: FakeProcess) -> str:
    return proc.command[-1]


def recorders(procs: FakeProcessReactor) -> list[FakeProcess]:
    return [p for p in procs.spawned if "x11grab" in p.command]


def tools(procs: FakeProcessReactor) -> list[FakeProcess]:
    return [p for p in procs.spawned if "x11grab" not in p.command]


class FakeDesktop:
    def __init__(self) -> None:
        self.fail = False
        self.restarted: list[Any] = []

    def start(self) -> defer.Deferred[DesktopInfo]:
        if self.fail:
            return defer.fail(DesktopError("Xvnc would not start"))
        return defer.succeed(DesktopInfo(":42", "/x/auth", "/x/rfb", 640, 480))


class RecorderTests(SynchronousTestCase):
    def setUp(self) -> None:
        # ffprobe answers self.probe; the thumbnail ffmpeg writes
        # self.thumbnail (or fails when it is None); recording ffmpegs run
        # until the test ends them.
        self.procs = self.clock = FakeProcessReactor()
        self.procs.dieOnSignal = False
        self.probe = PROBE_OK
        self.thumbnail: bytes | None = b"\xff\xd8jpeg\xff\xd9"
        self.procs.tools.append(self.answerTool)
        self.desktop = FakeDesktop()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def answerTool(self, argv: list[str]) -> tuple[bytes, BaseException | None] | None:
        if argv[0] == "ffprobe":
            return self.probe, None
        if "-frames:v" in argv:
            if self.thumbnail is None:
                return b"", error.ProcessTerminated(1)
            with open(argv[-1], "wb") as f:
                f.write(self.thumbnail)
            return b"", None
        return None

    def recorder(self, **config: Any) -> Recorder:
        config.setdefault("directory", self.dir)
        return Recorder(self.procs, self.clock, self.desktop, RecorderConfig(**config))

    def start(self, recorder: Recorder, rid: str = RID, video: bytes = b"mp4 bytes") -> FakeProcess:
        d = recorder.start(rid)
        self.assertNoResult(d)
        proc = recorders(self.procs)[-1]
        with open(output(proc), "wb") as f:
            f.write(video)
        proc.proto.childDataReceived(2, b"Output #0, mp4, to 'x':\nPress [q] to stop\n")
        self.assertIsNone(self.successResultOf(d))
        return proc

    def kills(self, proc: FakeProcess) -> list[str]:
        return proc.signals

    def test_interface(self) -> None:
        verifyObject(IRecorder, self.recorder())

    def test_startSpawnsFfmpeg(self) -> None:
        proc = self.start(self.recorder(fps=7, maxRecordingBytes=10_000_000))
        self.assertEqual(proc.argv[:5], ["setsid", "setpriv", "--pdeathsig", "KILL", "--"])
        argv = proc.command
        self.assertEqual(argv[0], "ffmpeg")
        self.assertIn("x11grab", argv)
        self.assertEqual(argv[argv.index("-i") + 1], ":42")
        self.assertEqual(argv[argv.index("-r") + 1], "7")
        self.assertEqual(argv[argv.index("-g") + 1], "7")
        self.assertEqual(argv[argv.index("-pix_fmt") + 1], "yuv420p")
        self.assertIn("+frag_keyframe+empty_moov+default_base_moof", argv)
        fs = int(argv[argv.index("-fs") + 1])
        self.assertTrue(8_500_000 <= fs < 10_000_000, fs)
        self.assertEqual(output(proc), os.path.join(self.dir, RID + ".mp4"))
        self.assertEqual((proc.env["DISPLAY"], proc.env["XAUTHORITY"]), (":42", "/x/auth"))

    def test_startRecordingIsNoop(self) -> None:
        r = self.recorder()
        self.start(r)
        self.successResultOf(r.start(RID))
        self.assertEqual(len(recorders(self.procs)), 1)

    def test_startFfmpegFails(self) -> None:
        r = self.recorder()
        d = r.start(RID)
        proc = recorders(self.procs)[0]
        proc.proto.childDataReceived(2, b":42: Can't open display\n")
        proc.end(error.ProcessTerminated(1))
        e = self.failureResultOf(d, APIError).value
        self.assertEqual((e.status, e.message), (500, "Failed to start recording."))
        self.assertIn("Can't open display", e.detail)
        self.assertEqual(self.failureResultOf(r.stop(RID), APIError).value.status, 404)

    def test_startTimeout(self) -> None:
        r = self.recorder(startTimeout=5)
        d = r.start(RID)
        proc = recorders(self.procs)[0]
        self.clock.advance(5)
        self.assertEqual(self.kills(proc), ["KILL"])
        proc.end(error.ProcessTerminated(signal=9))
        self.assertEqual(self.failureResultOf(d, APIError).value.status, 500)

    def test_desktopFails(self) -> None:
        self.desktop.fail = True
        e = self.failureResultOf(self.recorder().start(RID), APIError).value
        self.assertEqual((e.status, e.message, e.detail), (500, "Failed to start recording.", "Xvnc would not start"))

    def test_maxRecordings(self) -> None:
        r = self.recorder(maxRecordings=2)
        self.start(r, RID)
        self.start(r, RID2)
        e = self.failureResultOf(r.start(RID3), APIError).value
        self.assertEqual((e.status, e.message), (500, "Failed to start recording."))
        self.assertIn("2 recordings are already active", e.detail)
        self.assertIn("--max-recordings", e.detail)
        self.assertEqual(len(recorders(self.procs)), 2)

    def test_stopWritesQ(self) -> None:
        r = self.recorder()
        proc = self.start(r)
        d = r.stop(RID)
        self.assertEqual(proc.written, b"q")
        self.assertNoResult(d)
        self.assertEqual(self.kills(proc), [])
        proc.end()
        result = self.successResultOf(d)
        self.assertEqual(result.videoPath, os.path.join(self.dir, RID + ".mp4"))
        self.assertEqual(result.videoSize, len(b"mp4 bytes"))
        self.assertEqual(result.thumbnailPath, os.path.join(self.dir, RID + ".jpg"))
        thumbArgv = [p.argv for p in tools(self.procs)][0]
        self.assertEqual(thumbArgv[thumbArgv.index("-sseof") + 1], "-1")
        self.assertIn("scale='min(640,iw)':-2", thumbArgv)
        # A clean exit needs no probe, and nothing was killed.
        self.assertFalse([p for p in self.procs.spawned if p.command[0] == "ffprobe"])
        # Only the periodic deletion is left; the kill timer is cancelled.
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_graceThenKill(self) -> None:
        r = self.recorder(stopGrace=15)
        proc = self.start(r)
        d = r.stop(RID)
        self.clock.advance(14.9)
        self.assertEqual(self.kills(proc), [])
        self.clock.advance(0.2)
        self.assertEqual(self.kills(proc), ["KILL"])
        proc.end(error.ProcessTerminated(signal=9))
        self.assertEqual(self.successResultOf(d).videoSize, len(b"mp4 bytes"))
        self.assertTrue([p for p in self.procs.spawned if p.command[0] == "ffprobe"])

    def test_killedAndUnplayable(self) -> None:
        self.probe = b'{"streams": []}'
        r = self.recorder(stopGrace=1)
        proc = self.start(r)
        d = r.stop(RID)
        self.clock.advance(1)
        proc.end(error.ProcessTerminated(signal=9))
        e = self.failureResultOf(d, APIError).value
        self.assertEqual((e.status, e.message, e.detail),
                         (500, "Recording is corrupted.", "recording corrupted: process was force-killed"))
        # Twice: the same answer.
        e2 = self.failureResultOf(r.stop(RID), APIError).value
        self.assertEqual((e2.status, e2.message), (500, "Recording is corrupted."))

    def test_crashedButPlayable(self) -> None:
        r = self.recorder()
        proc = self.start(r)
        proc.end(error.ProcessTerminated(signal=9))
        self.assertEqual(self.successResultOf(r.stop(RID)).videoSize, len(b"mp4 bytes"))

    def test_stopUnknown(self) -> None:
        e = self.failureResultOf(self.recorder().stop(RID), APIError).value
        self.assertEqual((e.status, e.message, e.detail), (404, "Recording not found.", "unknown recording ID"))

    def test_stopFailsUnexpectedly(self) -> None:
        """Anything else going wrong while finishing is 500 C{Failed to stop recording.}"""
        r = self.recorder()
        proc = self.start(r)

        async def broken(rec: Any) -> int:
            raise OSError("disk on fire")

        self.patch(r, "_thumbnail", broken)
        d = r.stop(RID)
        proc.end()
        e = self.failureResultOf(d, APIError).value
        self.assertEqual((e.status, e.message, e.detail), (500, "Failed to stop recording.", "disk on fire"))
        self.flushLoggedErrors(OSError)

    def test_startInterruptedByShutdownIs503(self) -> None:
        """
        A start still waiting for ffmpeg when the service stops answers 503
        (not the 500 of ffmpeg having been killed).
        """
        r = self.recorder()
        d = r.start(RID)
        proc = recorders(self.procs)[0]
        closed = r.close()
        self.assertEqual(self.kills(proc), ["KILL"])
        proc.end(error.ProcessTerminated(signal=9))
        e = self.failureResultOf(d, APIError).value
        self.assertEqual((e.status, e.message), (503, "Desktop API is shutting down."))
        self.successResultOf(closed)

    def test_stopTwiceSameResult(self) -> None:
        r = self.recorder()
        proc = self.start(r)
        d1 = r.stop(RID)
        d2 = r.stop(RID)
        proc.end()
        first = self.successResultOf(d1)
        self.assertEqual(self.successResultOf(d2), first)
        tools = len(self.procs.spawned)
        self.assertEqual(self.successResultOf(r.stop(RID)), first)
        self.assertEqual(len(self.procs.spawned), tools)

    def test_stopGoesOnWhenCallerGivesUp(self) -> None:
        r = self.recorder()
        proc = self.start(r)
        d = r.stop(RID)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        proc.end()
        self.assertEqual(self.successResultOf(r.stop(RID)).videoSize, len(b"mp4 bytes"))

    def test_tooBig(self) -> None:
        r = self.recorder(maxRecordingBytes=100)
        proc = self.start(r, video=b"x" * 101)
        d = r.stop(RID)
        proc.end()
        e = self.failureResultOf(d, APIError).value
        self.assertEqual((e.status, e.message), (413, "Recording file exceeds maximum allowed size."))

    def test_thumbnailTooBig(self) -> None:
        self.thumbnail = b"j" * 50
        r = self.recorder(maxThumbnailBytes=49)
        proc = self.start(r)
        d = r.stop(RID)
        proc.end()
        self.assertIsNone(self.successResultOf(d).thumbnailPath)

    def test_thumbnailFails(self) -> None:
        self.thumbnail = None
        r = self.recorder()
        proc = self.start(r)
        d = r.stop(RID)
        proc.end()
        self.assertIsNone(self.successResultOf(d).thumbnailPath)

    def test_idleTimeoutAndReset(self) -> None:
        r = self.recorder(idleTimeout=10)
        proc = self.start(r)
        self.clock.advance(9)
        r.activity()
        self.clock.advance(9)
        self.assertEqual(proc.written, b"")
        self.clock.advance(1)
        self.assertEqual(proc.written, b"q")
        proc.end()
        # The file stays for stop to return.
        result = self.successResultOf(r.stop(RID))
        self.assertTrue(os.path.exists(result.videoPath))

    def test_restartStoppedDiscards(self) -> None:
        r = self.recorder()
        proc = self.start(r, video=b"old")
        d = r.stop(RID)
        proc.end()
        old = self.successResultOf(d)
        self.start(r, video=b"new video")
        self.assertFalse(os.path.exists(old.thumbnailPath))
        self.assertEqual(len(recorders(self.procs)), 2)
        proc2 = recorders(self.procs)[1]
        d = r.stop(RID)
        proc2.end()
        self.assertEqual(self.successResultOf(d).videoSize, len(b"new video"))

    def test_deletedAfterAnHour(self) -> None:
        r = self.recorder()
        proc = self.start(r)
        d = r.stop(RID)
        proc.end()
        result = self.successResultOf(d)
        self.clock.advance(3500)
        self.assertTrue(os.path.exists(result.videoPath))
        self.clock.advance(200)
        self.assertFalse(os.path.exists(result.videoPath))
        self.assertFalse(os.path.exists(result.thumbnailPath))
        self.assertEqual(self.failureResultOf(r.stop(RID), APIError).value.status, 404)
        self.successResultOf(r.close())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closeKillsAndDeletes(self) -> None:
        runtime = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, runtime)
        r = self.recorder(directory=None, runtimeDir=runtime)
        proc = self.start(r)
        [own] = os.listdir(runtime)
        self.assertEqual(os.stat(os.path.join(runtime, own)).st_mode & 0o777, 0o700)
        d = r.close()
        self.assertEqual(self.kills(proc), ["KILL"])
        self.assertNoResult(d)
        proc.end(error.ProcessTerminated(signal=9))
        self.successResultOf(d)
        self.assertEqual(os.listdir(runtime), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.failureResultOf(r.start(RID2), APIError).value.status, 503)

    def test_helpers(self) -> None:
        self.assertTrue(playable(PROBE_OK))
        self.assertFalse(playable(b'{"streams": [{"codec_name": "h264", "nb_read_packets": "0"}]}'))
        self.assertFalse(playable(b"garbage"))
        self.assertLess(fileSizeLimit(104857600), 104857600)
        self.assertGreater(fileSizeLimit(104857600), 94 * 1024 * 1024)
        self.assertEqual(recordArgv(RecorderConfig().ffmpegOptions, ":1", "/r/x.mp4")[-1], "/r/x.mp4")


class ResourceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.recorder = FakeRecorder()
        self.recorder.failStart[RID3] = APIError(500, "Failed to start recording.", "the limit is 5")
        verifyObject(IRecorder, self.recorder)
        clock = task.Clock()
        self.state = makeState(FakeDesktop(), clock, recorder=self.recorder)  # type: ignore[arg-type]
        self.treq = StubTreq(makeRoot(self.state, clock))
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def post(self, path: str, body: bytes) -> tuple[int, bytes, Any]:
        d = self.treq.post("http://x/api/v0/desktop/recording/" + path, data=body)
        for _ in range(100):
            self.treq.flush()
        response = self.successResultOf(d)
        content = self.treq.content(response)
        for _ in range(100):
            self.treq.flush()
        self.response = response
        return response.code, self.successResultOf(content), response.headers

    def assertError(self, path: str, body: bytes, status: int, message: str, detail: str | None = None) -> None:
        code, content, _ = self.post(path, body)
        self.assertEqual(code, status)
        parsed = json.loads(content)
        self.assertEqual(parsed["message"], message)
        if detail is not None:
            self.assertEqual(parsed["detail"], detail)

    def test_errors(self) -> None:
        for path in ("start", "stop"):
            self.assertError(path, b"{nope", 400, "Failed to decode request body.")
            self.assertError(path, b"{}", 400, "Missing recording_id.")
            self.assertError(path, b'{"recording_id": ""}', 400, "Missing recording_id.")
            self.assertError(path, b'{"recording_id": "x"}', 400, "Invalid recording_id format.",
                             "recording_id must be a valid UUID.")
        self.assertError("stop", json.dumps({"recording_id": RID}).encode(), 404, "Recording not found.",
                         "unknown recording ID")
        self.assertError("start", json.dumps({"recording_id": RID3}).encode(), 500,
                         "Failed to start recording.", "the limit is 5")
        self.state.shuttingDown = True
        for path in ("start", "stop"):
            self.assertError(path, json.dumps({"recording_id": RID}).encode(), 503,
                             "Desktop API is shutting down.")
            # The 400s come first, as in the reference API.
            self.assertError(path, b"{nope", 400, "Failed to decode request body.")
            self.assertError(path, b'{"recording_id": "x"}', 400, "Invalid recording_id format.")

    def test_failureWhileShuttingDownIs503(self) -> None:
        """
        A handler whose work fails because the service began stopping
        answers 503, whatever the failure was.
        """
        pending: defer.Deferred[None] = defer.Deferred()
        self.patch(self.recorder, "start", lambda rid: pending)
        d = self.treq.post("http://x/api/v0/desktop/recording/start",
                           data=json.dumps({"recording_id": RID}).encode())
        self.treq.flush()
        self.state.shuttingDown = True
        pending.errback(APIError(500, "Failed to start recording.", "ffmpeg ended by signal 9"))
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 503)
        body = json.loads(self.successResultOf(self.treq.content(response)))
        self.assertEqual(body, {"message": "Desktop API is shutting down."})

    def test_getNotAllowed(self) -> None:
        d = self.treq.get("http://x/api/v0/desktop/recording/start")
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 405)

    def test_startNormalizes(self) -> None:
        code, content, _ = self.post("start", json.dumps({"recording_id": RID.upper()}).encode())
        self.assertEqual((code, json.loads(content)), (200, {"message": "Recording started."}))
        self.assertEqual(self.recorder.started, [RID])

    def result(self, thumbnail: bool) -> RecordingResult:
        video = os.path.join(self.dir, RID + ".mp4")
        with open(video, "wb") as f:
            f.write(b"\x00\x01video--" * 10000)
        thumb = None
        if thumbnail:
            thumb = os.path.join(self.dir, RID + ".jpg")
            with open(thumb, "wb") as f:
                f.write(b"\xff\xd8thumb\r\n--\xff\xd9")
        return RecordingResult(RID, video, os.path.getsize(video), thumb, 0 if thumb is None else os.path.getsize(thumb))

    def parts(self, headers: Any, content: bytes) -> list[Any]:
        ctype = headers.getRawHeaders("content-type")[0]
        self.assertTrue(ctype.startswith("multipart/mixed; boundary="), ctype)
        # The client turns Content-Length into the response's length.
        self.assertEqual(self.response.length, len(content))
        message = message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + content)
        self.assertTrue(message.is_multipart())
        return message.get_payload()

    def test_stopMultipart(self) -> None:
        self.recorder.results[RID] = result = self.result(thumbnail=True)
        code, content, headers = self.post("stop", json.dumps({"recording_id": RID}).encode())
        self.assertEqual(code, 200)
        parts = self.parts(headers, content)
        self.assertEqual([p.get_content_type() for p in parts], ["video/mp4", "image/jpeg"])
        with open(result.videoPath, "rb") as f:
            self.assertEqual(parts[0].get_payload(decode=True), f.read())
        with open(result.thumbnailPath, "rb") as f:
            self.assertEqual(parts[1].get_payload(decode=True), f.read())

    def test_stopWithoutThumbnail(self) -> None:
        self.recorder.results[RID] = self.result(thumbnail=False)
        code, content, headers = self.post("stop", json.dumps({"recording_id": RID}).encode())
        self.assertEqual(code, 200)
        self.assertEqual([p.get_content_type() for p in self.parts(headers, content)], ["video/mp4"])

    def test_framing(self) -> None:
        path = os.path.join(self.dir, "a")
        with open(path, "wb") as f:
            f.write(b"VIDEO")
        with open(path, "rb") as f:
            body = MultipartBody([(b"video/mp4", f, 5)], boundary=b"BND")
            self.assertEqual(body.contentType, b"multipart/mixed; boundary=BND")
            expected = (b"--BND\r\nContent-Type: video/mp4\r\nContent-Length: 5\r\n\r\n"
                        b"VIDEO\r\n--BND--\r\n")
            self.assertEqual(body.length, len(expected))
            self.assertEqual(
                b"".join(s if isinstance(s, bytes) else b"VIDEO" for s in body.segments), expected
            )


