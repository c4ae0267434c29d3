"""
Accessibility: the desktop's own D-Bus session bus and AT-SPI bus
(L{stack}), a blocking AT-SPI client that runs in a worker thread
(L{client}), and the pure parts both use (L{model}: state names, node ids,
matching an X window to its accessible, the JSON shape of a node).
"""
