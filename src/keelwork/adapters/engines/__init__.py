"""Serving engines beside uvicorn: what runs a keelwork app as replicas of a distributed engine
(:mod:`keelwork.adapters.engines.ray_serve`). Importing this package imports no engine."""
