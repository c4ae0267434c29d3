"""
The HTTP API: one render skeleton (L{resource.Endpoint}) that every route
uses, the routes, and the site.
"""
