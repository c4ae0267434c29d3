from twisted.application.service import ServiceMaker

agentdesktop = ServiceMaker(
    "agentdesktop", "agentdesktop.tap", "A real Linux desktop for computer-use agents, over HTTP.", "agentdesktop"
)
