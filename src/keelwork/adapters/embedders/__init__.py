"""Text embedders: implementations of :class:`keelwork.types.TextEmbedder`.

- :class:`~keelwork.adapters.embedders.wordllama.WordLlamaEmbedder`: WordLlama static token
  embeddings (no torch, 33 MB, weights shipped in the package, loads offline in ~0.3 s); the
  default for text drift. Needs the ``text`` extra.

Each embedder is imported lazily, so importing this package loads no model library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keelwork.adapters.embedders.wordllama import WordLlamaEmbedder


def __getattr__(name: str) -> Any:
    if name == "WordLlamaEmbedder":
        from keelwork.adapters.embedders.wordllama import WordLlamaEmbedder

        return WordLlamaEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["WordLlamaEmbedder"]
