"""docs/runtimes/*.md are real: one page per built-in runtime, each options table lists exactly
the runtime's options, and every example runs: the Python blocks save a model, the keel.yaml
block that follows is a valid spec whose options the runtime accepts, and the model it names
loads and answers the request in the JSON block after it.

A block preceded by ``<!-- not run: REASON -->`` is not executed (its keel.yaml is still
checked). The examples are user code: third-party warnings while saving are not errors here.
"""

from __future__ import annotations

import json
import re
import runpy
import warnings
from pathlib import Path
from typing import Any

import pytest

from keelwork.adapters.runtimes import load_runtime, runtime_class
from keelwork.spec import parse_spec
from keelwork.spec.kinds import BUILTIN_RUNTIMES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "runtimes"
PAGES = sorted(p.stem for p in DOCS.glob("*.md") if p.stem != "README")
_BLOCK = re.compile(r"(<!-- not run: [^>]*-->\n)?```(\w+)\n(.*?)```", re.S)


def _blocks(page: str) -> list[tuple[str, str, bool]]:
    """(language, code, runs) of every fenced block, in order."""
    text = (DOCS / f"{page}.md").read_text()
    return [(lang, code, not skip) for skip, lang, code in _BLOCK.findall(text)]


def _spec(block: str) -> Any:
    if "service:" not in block:
        block = "service: {name: docs, owners: [docs@example.com]}\n" + block
    return parse_spec(block, env={})


def test_every_builtin_runtime_has_a_page_linked_from_the_readme() -> None:
    assert set(PAGES) == set(BUILTIN_RUNTIMES)
    index = (DOCS / "README.md").read_text()
    assert all(f"]({page}.md)" in index for page in PAGES)
    assert "](docs/runtimes/README.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("page", PAGES)
def test_the_options_table_lists_exactly_the_runtime_options(page: str) -> None:
    text = (DOCS / f"{page}.md").read_text()
    table = text.split("## Options", 1)[1]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    config = runtime_class(page).config_model
    assert sorted(documented) == sorted(config.model_fields), page


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if page != "python":
        pytest.importorskip({"sklearn": "skops", "onnx": "skl2onnx", "torch": "torch",
                             "hf": "transformers", "mlflow": "mlflow"}[page])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, Any] = {"__name__": f"docs_{page}"}
    specs: list[Any] = []
    served = 0
    for i, (lang, code, runs) in enumerate(_blocks(page)):
        if lang == "python" and runs:
            # from a real file, as a user runs it (TorchScript reads the source of classes)
            script = tmp_path / f"docs_{page}_{i}.py"
            script.write_text(code)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                namespace.update(runpy.run_path(str(script), init_globals=namespace,
                                                run_name=f"docs_{page}_{i}"))
        elif lang == "yaml":
            specs.append(_spec(code))
        elif lang == "json" and specs:
            served += _serve(specs[-1], json.loads(code)["instances"], tmp_path)
    assert specs, f"docs/runtimes/{page}.md has no keel.yaml example"
    if page != "hf":  # its model comes from the Hub: only its keel.yaml is checked
        assert served, f"no example of docs/runtimes/{page}.md was served"


def _serve(spec: Any, instances: list[Any], project: Path) -> int:
    """Load the spec's model as keel serve would and predict ``instances``; 1 if served."""
    model = spec.models[0]
    options = dict(model.options)
    runtime_class(model.runtime).config_model.model_validate(options)
    if model.runtime == "python":
        options["path"] = str(project / options.get("path", "."))
        artifact: Any = model.artifact
    else:
        artifact = project / str(model.artifact)
        if not artifact.exists():
            return 0
    if model.runtime == "sklearn":  # the page lists exactly the types the file needs
        import skops.io as sio

        needed = sio.get_untrusted_types(file=artifact)
        assert sorted(options.get("trusted", ())) == sorted(needed), model.name
    rt = load_runtime(model.runtime, artifact, options,
                      allow_unsafe_pickle=model.allow_unsafe_pickle)
    try:
        out = rt.predict(instances)
    finally:
        rt.unload()
    assert len(out) == len(instances)
    if spec.contract.outputs and spec.contract.outputs[0].categories:
        assert set(out) <= set(spec.contract.outputs[0].categories)
    return 1


def test_the_sklearn_page_quotes_the_real_trust_message(tmp_path: Path) -> None:
    """The message shown on the page is the runtime's, wrapped: same words, same order."""
    from keelwork.adapters.runtimes.sklearn import untrusted_message

    text = (DOCS / "sklearn.md").read_text()
    shown = next(code for lang, code, _ in _blocks("sklearn") if lang == "text")
    needed = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    real = untrusted_message("model.skops", needed, needed)
    head, tail = " ".join(shown.split()).split("[", 1)[0], " ".join(shown.split()).split(
        "]}.", 1)[1]
    assert real.startswith(head) and real.endswith(tail), (head, tail, real)
    assert "trusted" in text and "TreePredictor" in text
