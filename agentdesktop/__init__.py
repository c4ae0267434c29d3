"""agentdesktop: a real Linux desktop for computer-use agents, over HTTP."""

__version__ = "0.1.0"
