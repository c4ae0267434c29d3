"""
Screen recording: L{Recorder} (the policy) and ffmpeg's life as a process
(L{agentdesktop.recording.ffmpeg}).
"""

from agentdesktop.recording.recorder import Recorder, RecorderConfig

__all__ = ["Recorder", "RecorderConfig"]
