"""
The desktop as a Model Context Protocol server (SPEC section 14): the
computer tools with Anthropic's names and arguments (L{tools}), the JSON-RPC
methods (L{protocol}), and the Streamable HTTP transport in the service's
resource tree (L{endpoint}).  Messages are validated and results shaped with
the official C{mcp_types} (the C{mcp} SDK's C{mcp.types}).
"""
