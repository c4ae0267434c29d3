"""
C{/api/v0/desktop/dialects/<vendor>}: one child per vendor module.
"""

from __future__ import annotations

from twisted.web import resource

from agentdesktop.dialects import anthropic
from agentdesktop.dialects.gemini import GeminiEndpoint
from agentdesktop.dialects.openai import OpenAIDialect
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import Tree


def dialectsTree(state: ServiceState) -> resource.Resource:
    """The C{dialects} node with every vendor's route."""
    node = Tree(state)
    for name, child in vendorRoutes(state).items():
        node.putChild(name, child)
    return node


def vendorRoutes(state: ServiceState) -> dict[bytes, resource.Resource]:
    """Each vendor module's route(s), by path segment."""
    return {
        b"anthropic": anthropic.AnthropicEndpoint(state),
        b"openai": OpenAIDialect(state),
        b"gemini": GeminiEndpoint(state),
    }
