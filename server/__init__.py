"""hashmem's servers: an HTTP JSON API (FastAPI + uvicorn) and an MCP server over stdio.

Both are thin, like the CLI: they parse, authorize, call ``Memory`` and the
decoders (through ``service.Service``), and format. Tenancy — which API key
may touch which namespace — is checked in one place, ``tenancy``, below the
routes and tools.

Modules: ``errors`` (error codes and HTTP statuses), ``tenancy`` (keys →
principals), ``service`` (one open store, its models and locks), ``app`` (the
FastAPI routes and ``serve``), ``mcp`` (the MCP tools). Importing this package
imports none of fastapi, uvicorn, mcp or torch.
"""
