"""Packaging a served environment: keelwork's own wheel (:mod:`.wheel`) and the pinned lock of
what it needs (:mod:`.lock`), for ``keel build``."""
