"""
A small GTK 3 application for the accessibility tests, run with the
system Python (which has PyGObject): a window titled by its first
argument holding a button "Press me" and an entry.  It writes what
happens, one line at a time, to the file named by its second argument:
C{ready} once shown, C{pressed} for each press of the button, and
C{text:<entry text>} whenever the entry changes.

    /usr/bin/python3 gtkapp.py TITLE OUTPUT
"""

import sys

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, Gtk  # noqa: E402


def main() -> None:
    title, path = sys.argv[1], sys.argv[2]
    out = open(path, "a", buffering=1, encoding="utf-8")
    window = Gtk.Window(title=title)
    window.set_default_size(400, 200)
    window.move(200, 150)
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=10)
    button = Gtk.Button(label="Press me")
    button.connect("clicked", lambda _: out.write("pressed\n"))
    entry = Gtk.Entry()
    entry.connect("changed", lambda e: out.write("text:" + e.get_text() + "\n"))
    box.pack_start(button, False, False, 0)
    box.pack_start(entry, False, False, 0)
    window.add(box)
    window.connect("destroy", Gtk.main_quit)
    window.show_all()
    GLib.idle_add(lambda: out.write("ready\n") and False)
    Gtk.main()


main()
