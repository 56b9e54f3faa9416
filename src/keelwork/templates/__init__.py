"""Project templates used by ``keel init`` (data files, not code that keelwork imports)."""
