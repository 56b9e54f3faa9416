"""Journey: a Hugging Face text generator served with keel.yaml's token prices.

A user registers a local GPT-style model directory, serves it, and asks for continuations
over HTTP; each answer says the tokens it took, ``/metrics`` counts them per version and
charges them at the dated price in ``cost.token_prices`` (priced, never $0)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fixtures import models as fm
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

pytest.importorskip("torch")
pytest.importorskip("transformers")

SPEC = """\
service: {{name: writer, owners: [t@example.com]}}
models:
  - name: writer
    runtime: hf
    artifact: "{artifact}"
    options: {{max_new_tokens: 6}}
cost:
  currency: EUR
  token_prices:
    - {{since: 2020-01-01, input_per_1k: 2.0, output_per_1k: 10.0}}
storage: {{url: "sqlite:///{db}"}}
"""


def _series(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line
                                               for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not exported")


def test_generated_tokens_are_counted_and_priced(tmp_path: Path) -> None:
    built = fm.hf_text_generator(tmp_path)
    (tmp_path / "keel.yaml").write_text(SPEC.format(artifact=built.artifact,
                                                    db=tmp_path / "keel.db"))
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/writer:predict",
                          json={"instances": ["a wonderful story", "i loved it"]})
        assert got.status_code == 200, got.text
        answers = got.json()["predictions"]
        usage = [a["usage"] for a in answers]
        assert [u["input_tokens"] for u in usage] == [3, 3]
        out_tokens = sum(u["output_tokens"] for u in usage)
        assert 2 <= out_tokens <= 12
        metrics = client.get("/metrics").text
    assert _series(metrics, "keelwork_tokens_total", model="writer", kind="input") == 6
    assert _series(metrics, "keelwork_tokens_total", model="writer",
                   kind="output") == out_tokens
    assert not re.search(r'keelwork_token_price_missing_total\{[^}]*\} [1-9]', metrics)
    cost = _series(metrics, "keelwork_cost_total", model="writer")
    tokens_cost = 6 / 1000 * 2.0 + out_tokens / 1000 * 10.0
    # the token charge, plus nothing else priced in this keel.yaml
    assert cost == pytest.approx(tokens_cost, rel=1e-9)
