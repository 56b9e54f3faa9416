"""The application layer: use-cases and the assembly of a running service from a spec.

The one place that wires adapters together. Interfaces (HTTP, CLI) call what is here; they never
assemble adapters themselves. Imports point down: service -> adapters -> core -> spec.
"""
