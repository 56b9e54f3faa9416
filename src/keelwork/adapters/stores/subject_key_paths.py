"""Where a subject key store is (a SQLite key file, or a database URL), and how its failures
read: the small helpers of :mod:`keelwork.adapters.stores.subject_keys`."""

from __future__ import annotations

from pathlib import Path

from keelwork.errors import StoreError


def location(location: Path | str) -> tuple[str, Path | None]:
    """``(url, path)`` of a key store: a path is a SQLite file; a SQLite file URL keeps its
    path (created with mode 0600); other URLs have none."""
    from keelwork.adapters.stores.engine import normalize_url

    if isinstance(location, Path):
        path = location.expanduser().absolute()
        return f"sqlite:///{path}", path
    parsed = normalize_url(location)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise StoreError("The subject key store must be a file or a database server; an "
                             "in-memory SQLite database would lose every key at exit.")
        path = Path(parsed.database).expanduser().absolute()
        return f"sqlite:///{path}", path
    return location, None


def error(action: str, where: str, exc: BaseException) -> StoreError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"Could not {action} the subject key store '{where}': {first}")


__all__ = ["error", "location"]
