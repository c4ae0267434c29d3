"""
The X11 desktop: Xvnc, a window manager, xdotool and python-xlib, behind
L{agentdesktop.interfaces.IDesktop}.
"""

from agentdesktop.x11.desktop import DesktopConfig, X11Desktop

__all__ = ["DesktopConfig", "X11Desktop"]
