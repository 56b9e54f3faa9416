"""Where a project's per-subject keys live: beside a SQLite store, in the project's
``.keel/`` for a PostgreSQL store, or where ``storage.subject_keys_url`` says -- never in the
data store itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.errors import SpecError
from keelwork.service.payload_keys import configured_key_store, key_store_location, project_keys
from keelwork.spec import load_spec

PG = "postgresql://keel@db.internal:5432/keel"


def test_default_locations(tmp_path: Path) -> None:
    assert key_store_location(tmp_path, f"sqlite:///{tmp_path}/data/keel.db") == \
        tmp_path / "data" / "subject_keys.db"
    assert key_store_location(tmp_path, PG) == tmp_path.absolute() / ".keel" / "subject_keys.db"


def test_a_configured_key_store_and_one_that_is_the_data_store(tmp_path: Path) -> None:
    keys_url = "postgresql://keel@keys.internal:5432/keys"
    assert key_store_location(tmp_path, PG, keys_url) == keys_url
    assert key_store_location(tmp_path, PG, "secrets/keys.db") == \
        tmp_path.absolute() / "secrets" / "keys.db"
    with pytest.raises(SpecError, match=r"apart from storage\.url") as err:
        key_store_location(tmp_path, PG, "postgres://keel@db.internal:5432/keel")
    assert err.value.details[0].path == "storage.subject_keys_url"


def test_keel_yaml_names_the_key_store_and_refuses_the_store_itself(tmp_path: Path) -> None:
    spec = ("service: {{name: k, owners: [t@example.com]}}\n"
            "models: [{{name: m, runtime: python, artifact: 'x:y'}}]\n"
            "storage: {{url: '{url}', subject_keys_url: '{keys}'}}\n")
    (tmp_path / "keel.yaml").write_text(spec.format(url=PG, keys="keys/subject_keys.db"))
    assert configured_key_store(tmp_path) == "keys/subject_keys.db"
    keys = project_keys(tmp_path, PG, seal=False)
    assert keys is not None and keys.path == tmp_path.absolute() / "keys" / "subject_keys.db"
    assert not keys.path.exists()  # attaching for reading creates nothing
    (tmp_path / "keel.yaml").write_text(spec.format(url=PG, keys=PG))
    with pytest.raises(SpecError, match="subject_keys_url"):
        load_spec(tmp_path / "keel.yaml")
