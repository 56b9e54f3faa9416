"""HTTP interface: the ASGI app (FastAPI/Starlette) and the status-code mapping."""
