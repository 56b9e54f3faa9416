"""The Python API reference is generated from the docstrings, and it builds.

``mkdocs build --strict`` renders docs/reference/python.md with mkdocstrings, the plugin options
taken from the mkdocs.yml users run; the page must document each use-case with its Args
(rendered "Parameters"), Returns and Raises sections, every parameter of the signature among
the Args and every raised class a keelwork error or a builtin. The mkdocs.yml users run must
build too.
"""

from __future__ import annotations

import builtins
import html
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import keelwork
import keelwork.errors
from keelwork.core.monitors.report import DriftReport
from keelwork.service.project_ops import Audit, Rollouts

ROOT = Path(__file__).resolve().parents[2]

#: What the reference must document: the HTML id mkdocstrings gives the object, the object
#: (for its signature) and the sections its docstring must render.
ALL = ("Parameters", "Returns", "Raises")
DOCUMENTED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "keelwork.Project.register": (keelwork.Project.register, ALL),
    "keelwork.Project.validate": (keelwork.Project.validate, ALL),
    "keelwork.Project.drift": (keelwork.Project.drift, ALL),
    "keelwork.Project.monitor": (keelwork.Project.monitor, ALL),
    # Project.rollout / .audit are attributes: their methods carry the sections.
    "keelwork.service.project_ops.Rollouts.start": (Rollouts.start, ALL),
    "keelwork.service.project_ops.Rollouts.promote": (Rollouts.promote, ALL),
    "keelwork.service.project_ops.Rollouts.rollback": (Rollouts.rollback, ALL),
    "keelwork.service.project_ops.Audit.verify": (Audit.verify, ALL),
    "keelwork.Client.predict": (keelwork.Client.predict, ALL),
    "keelwork.AsyncClient.predict": (keelwork.AsyncClient.predict, ALL),
    # Rendering a report raises nothing of its own: no Raises section to ask for.
    "keelwork.core.monitors.report.DriftReport.to_html": (DriftReport.to_html,
                                                          ("Parameters", "Returns")),
}
#: Attributes that must be documented (a description under their heading).
ATTRIBUTES = ("keelwork.Project.rollout", "keelwork.Project.audit")


def _mkdocs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not _in_ci():
        pytest.importorskip("mkdocstrings_handlers.python", reason="pip install -e '.[docs]'")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def reference_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reference page alone, built with --strict under the users' plugin options."""
    import yaml

    tmp = tmp_path_factory.mktemp("api-reference")
    users = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    plugins = users["plugins"]
    for plugin in plugins:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(ROOT / p) for p in python.get("paths", ["."])]
    docs = tmp / "docs"
    (docs / "reference").mkdir(parents=True)
    (docs / "reference" / "python.md").write_text(
        (ROOT / "docs" / "reference" / "python.md").read_text())
    # The page links to the walkthrough; a stub keeps that link checked and the build small.
    (docs / "python-api.md").write_text("# keelwork from Python\n")
    config = {"site_name": "keelwork", "docs_dir": str(docs), "plugins": plugins,
              "nav": [{"Python API reference": "reference/python.md"}]}
    (tmp / "mkdocs.yml").write_text(yaml.safe_dump(config))
    site = tmp / "site"
    done = _mkdocs("--strict", "-f", str(tmp / "mkdocs.yml"), "-d", str(site), cwd=tmp)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr}"
    return (site / "reference" / "python" / "index.html").read_text()


def _entry(page: str, ident: str) -> str:
    """The HTML under the heading ``ident``, up to the next heading."""
    start = page.find(f'id="{ident}"')
    assert start >= 0, f"the reference does not document {ident}"
    after = re.compile(r"<h[1-6][ >]").search(page, page.find("</h", start))
    return page[start:after.start() if after else len(page)]


def _section(entry: str, title: str) -> list[str]:
    """The first cell of each row of the ``title`` section (a name or an exception type)."""
    at = entry.find(f'<span class="doc-section-title">{title}:</span>')
    if at < 0:
        return []
    table = entry[at:entry.find("</table>", at)]
    cells = re.findall(r'<tr class="doc-section-item">\s*<td>(.*?)</td>', table, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def _parameters(func: Any) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


@pytest.mark.parametrize("ident", list(DOCUMENTED))
def test_the_reference_renders_args_returns_raises(reference_html: str, ident: str) -> None:
    func, sections = DOCUMENTED[ident]
    entry = _entry(reference_html, ident)
    for title in sections:
        assert _section(entry, title), f"{ident}: no {title} section in the reference"
    documented = _section(entry, "Parameters")
    missing = [p for p in _parameters(func) if p not in documented]
    assert not missing, f"{ident}: the Args do not document {missing}"
    unknown = [p for p in documented if p not in _parameters(func)]
    assert not unknown, f"{ident}: the Args document {unknown}, not in the signature"
    for raised in _section(entry, "Raises"):
        assert hasattr(keelwork.errors, raised) or isinstance(
            getattr(builtins, raised, None), type), f"{ident}: raises unknown {raised!r}"


@pytest.mark.parametrize("ident", ATTRIBUTES)
def test_the_reference_documents_the_project_attributes(reference_html: str,
                                                        ident: str) -> None:
    assert 'class="doc doc-contents' in _entry(reference_html, ident)
    assert "<p>" in _entry(reference_html, ident).split('class="doc doc-contents', 1)[1]


def test_the_mkdocs_config_users_run_builds(tmp_path: Path) -> None:
    """``mkdocs build`` of the repository's mkdocs.yml: every page builds; the only warnings
    allowed are links out of docs/ (README-style links GitHub follows) to files that exist."""
    done = _mkdocs("-d", str(tmp_path / "site"), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "reference" / "python" / "index.html").is_file()
    outside = re.compile(r"Doc file '([^']+)' contains a link '([^'#]+)(#[^']*)?', but the "
                         r"target is not found among documentation files\.")
    for line in done.stderr.splitlines():
        if not line.startswith("WARNING"):
            continue
        found = outside.search(line)
        assert found, f"mkdocs warns: {line}"
        target = (ROOT / "docs" / found[1]).parent / found[2]
        assert not target.resolve().is_relative_to(ROOT / "docs"), f"broken link: {line}"
        assert target.is_file(), f"broken link: {line}"
