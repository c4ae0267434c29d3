"""
VNC for viewers: RFB over WebSocket (L{websocket}), a raw RFB listener
(L{listener}), the noVNC viewer page (L{viewer}), and the byte pump between
the desktop's RFB socket and each viewer (L{splice}).
"""
