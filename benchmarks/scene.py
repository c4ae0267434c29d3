"""
The desktops the benchmarks measure on, drawn by real X clients:

- quiet: an xterm full of text, nothing moving;
- busy: the same, plus an xterm running ``top -d 0.2`` in colour and a
  1100x520 "photo-like" window of colourful noise over gradients (this
  module run as a program: ``python -m benchmarks.scene photo``).

The photo window is an X client of its own with the picture as its
background pixmap, so the X server repaints it without the client's help;
it lives until its standard input closes or it is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

PHOTO_SIZE = (1100, 520)


def photo(size: tuple[int, int] = PHOTO_SIZE) -> Any:
    """A colourful picture: gradients, noise and soft shapes (a PIL image)."""
    from PIL import Image, ImageFilter

    w, h = size
    ramp = Image.linear_gradient("L")
    base = Image.merge("RGB", (ramp.resize((w, h)), ramp.rotate(90).resize((w, h)),
                               Image.radial_gradient("L").resize((w, h))))
    noise = Image.merge("RGB", tuple(
        Image.effect_noise((w, h), sigma).convert("L") for sigma in (40, 60, 80)))
    shapes = Image.effect_mandelbrot((w, h), (-2.2, -1.2, 1.0, 1.2), 60).convert("RGB")
    shapes = shapes.filter(ImageFilter.GaussianBlur(3))
    return Image.blend(Image.blend(base, noise, 0.35), shapes, 0.25)


def showPhoto() -> None:
    """Map a window showing L{photo}; return when standard input closes."""
    from Xlib import X, display

    d = display.Display()
    screen = d.screen()
    image = photo()
    w, h = image.size
    data = image.tobytes("raw", "BGRX")
    pixmap = screen.root.create_pixmap(w, h, screen.root_depth)
    gc = pixmap.create_gc()
    rows = max(1, (128 * 1024) // (w * 4))
    for top in range(0, h, rows):
        n = min(rows, h - top)
        pixmap.put_image(gc, 0, top, w, n, X.ZPixmap, screen.root_depth, 0,
                         data[top * w * 4:(top + n) * w * 4])
    window = screen.root.create_window(700, 500, w, h, 0, screen.root_depth,
                                       background_pixmap=pixmap)
    window.set_wm_name("photo")
    window.set_wm_class("photo", "Photo")
    window.map()
    d.sync()
    sys.stdout.write("shown\n")
    sys.stdout.flush()
    sys.stdin.read()
    d.close()


class Scene:
    """The programs that make a benchmark's desktop quiet or busy."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.procs: list[subprocess.Popen[bytes]] = []

    def quiet(self) -> None:
        """An xterm full of text over most of the screen, focused."""
        self.procs.append(self.service.spawn([
            "xterm", "-class", "QuietTerm", "-geometry", "310x78+0+0", "-e", "sh", "-c",
            "ls -lR /usr/share/doc | head -n 300; exec cat"]))
        self.service.run(["xdotool", "search", "--sync", "--onlyvisible", "--class", "QuietTerm",
                          "windowactivate", "--sync"])
        time.sleep(1.0)

    def busy(self) -> None:
        """The quiet xterm, top in colour every 0.2 s, and the photo window."""
        self.procs.append(self.service.spawn([
            "xterm", "-class", "TopTerm", "-geometry", "100x40+900+40", "-e", "top", "-d", "0.2"]))
        self.service.run(["xdotool", "search", "--sync", "--onlyvisible", "--class", "TopTerm",
                          "windowactivate", "--sync", "key", "z"])
        shown = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scene", "photo"], env=self.service.env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True)
        self.procs.append(shown)
        assert shown.stdout is not None
        if shown.stdout.readline() != b"shown\n":
            raise RuntimeError("the photo window did not show")
        time.sleep(1.0)

    def stop(self) -> None:
        from benchmarks.common import stop

        for proc in self.procs:
            stop(proc)
        self.procs = []


if __name__ == "__main__":
    if sys.argv[1:] == ["photo"]:
        showPhoto()
    else:
        raise SystemExit("usage: python -m benchmarks.scene photo")
