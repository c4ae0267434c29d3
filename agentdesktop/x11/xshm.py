"""
MIT-SHM screen grabs over python-xlib: the X server writes the pixels into a
System V shared memory segment instead of sending 8 MB over the socket.

The two requests are defined here on python-xlib's request machinery, and
the segment is made with libc through ctypes; libX11 is not involved, so an
X error is an ordinary python-xlib exception (the caller then falls back to
a plain GetImage).
"""

from __future__ import annotations

import ctypes
import ctypes.util

from Xlib import X
from Xlib.protocol import rq

EXTENSION = "MIT-SHM"
IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_RMID = 0

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmget.restype = ctypes.c_int
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmat.restype = ctypes.c_void_p
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmdt.restype = ctypes.c_int
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_libc.shmctl.restype = ctypes.c_int


class _Attach(rq.Request):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(1), rq.RequestLength(),
        rq.Card32("shmseg"), rq.Card32("shmid"), rq.Bool("read_only"), rq.Pad(3),
    )


class _Detach(rq.Request):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(2), rq.RequestLength(), rq.Card32("shmseg"),
    )


class _GetImage(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(4), rq.RequestLength(),
        rq.Drawable("drawable"), rq.Int16("x"), rq.Int16("y"),
        rq.Card16("width"), rq.Card16("height"), rq.Card32("plane_mask"),
        rq.Card8("format"), rq.Pad(3), rq.Card32("shmseg"), rq.Card32("offset"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(), rq.Card8("depth"), rq.Card16("sequence_number"),
        rq.ReplyLength(), rq.Card32("visual"), rq.Card32("size"), rq.Pad(16),
    )


class ShmGrabber:
    """
    A shared memory segment of SIZE bytes attached to DISPLAY's server.

    @raise OSError: if the segment cannot be made.
    @raise RuntimeError: if the server lacks MIT-SHM.
    """

    def __init__(self, display: object, size: int) -> None:
        self.display = display
        ext = display.query_extension(EXTENSION)  # type: ignore[attr-defined]
        if ext is None or not ext.present:
            raise RuntimeError("the X server has no MIT-SHM extension")
        self.opcode = ext.major_opcode
        self.size = size
        self.shmid = _libc.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600)
        if self.shmid < 0:
            raise OSError(ctypes.get_errno(), "shmget failed")
        addr = _libc.shmat(self.shmid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            _libc.shmctl(self.shmid, IPC_RMID, None)
            raise OSError(ctypes.get_errno(), "shmat failed")
        self.addr: int = addr
        try:
            self.seg = display.display.allocate_resource_id()  # type: ignore[attr-defined]
            _Attach(display=display.display, opcode=self.opcode,  # type: ignore[attr-defined]
                    shmseg=self.seg, shmid=self.shmid, read_only=False)
            display.sync()  # type: ignore[attr-defined]
        except BaseException:
            _libc.shmdt(addr)
            raise
        finally:
            # Marked for removal now: it goes away once both sides detach,
            # even if this process dies.
            _libc.shmctl(self.shmid, IPC_RMID, None)

    def grab(self, drawable: object, x: int, y: int, w: int, h: int) -> memoryview:
        """
        The W x H pixels at (X, Y) of DRAWABLE as 32-bit BGRX rows: a view
        of the segment itself, valid until the next grab.
        """
        if w * h * 4 > self.size:
            raise ValueError("region larger than the segment")
        reply = _GetImage(
            display=self.display.display,  # type: ignore[attr-defined]
            opcode=self.opcode, drawable=drawable, x=x, y=y, width=w, height=h,
            plane_mask=0xFFFFFFFF, format=X.ZPixmap, shmseg=self.seg, offset=0,
        )
        if reply.depth not in (24, 32):
            raise RuntimeError(f"unsupported screen depth {reply.depth}")
        return memoryview((ctypes.c_char * (w * h * 4)).from_address(self.addr)).cast("B")

    def close(self) -> None:
        try:
            _Detach(display=self.display.display, opcode=self.opcode,  # type: ignore[attr-defined]
                    shmseg=self.seg)
            self.display.sync()  # type: ignore[attr-defined]
        except Exception:  # the connection may already be gone
            pass
        _libc.shmdt(self.addr)
