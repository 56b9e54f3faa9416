"""The ``keel`` command line (Typer + Rich)."""
