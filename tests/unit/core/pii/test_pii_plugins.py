"""Recognisers from other packages: the ``keelwork.pii_recognisers`` entry-point group.

A real (if tiny) distribution is written to a temporary folder on ``sys.path``, so
:func:`importlib.metadata.entry_points` finds it exactly as it finds an installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keelwork.core.pii import PiiAnalyzer, known_entities, redact
from keelwork.errors import PiiConfigError

PLUGIN = '''
import re
from keelwork.core.pii import Span

LOADED = []

class StaffIdRecogniser:
    entities = ("STAFF_ID",)
    _PATTERN = re.compile(r"\\bST-\\d{6}\\b")

    def __init__(self):
        LOADED.append(self)

    def find(self, text):
        return [Span(m.start(), m.end(), "STAFF_ID", 0.9) for m in self._PATTERN.finditer(text)]

def broken():
    raise RuntimeError("no licence file")

def not_a_recogniser():
    return object()
'''


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    module = "kw_pii_plugin_test"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    info = tmp_path / "kw_pii_plugin_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kw-pii-plugin-test\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[keelwork.pii_recognisers]\n"
        f"STAFF_ID = {module}:StaffIdRecogniser\n"
        f"BROKEN_ID = {module}:broken\n"
        f"ODD_ID = {module}:not_a_recogniser\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return module


def test_a_plugin_entity_is_known_and_loaded_only_when_asked(plugin_dist: str) -> None:
    assert known_entities()[-3:] == ("BROKEN_ID", "ODD_ID", "STAFF_ID")
    assert plugin_dist not in sys.modules  # listing names imports nothing
    analyzer = PiiAnalyzer(["EMAIL_ADDRESS", "STAFF_ID"])
    text = "badge ST-004211 of a@b.io"
    assert redact(text, analyzer.analyze(text)) == "badge <STAFF_ID> of <EMAIL_ADDRESS>"
    assert len(sys.modules[plugin_dist].LOADED) == 1


def test_a_plugin_that_cannot_load_is_a_clear_error(plugin_dist: str) -> None:
    with pytest.raises(PiiConfigError, match=r"plug-in 'BROKEN_ID' \(kw_pii_plugin_test:broken\) "
                                             "cannot be loaded: RuntimeError: no licence file"):
        PiiAnalyzer(["BROKEN_ID"])
    with pytest.raises(PiiConfigError, match="must build an object with 'entities'"):
        PiiAnalyzer(["ODD_ID"])


def test_without_the_plugin_its_entity_is_unknown() -> None:
    with pytest.raises(PiiConfigError, match="Unknown PII entity 'STAFF_ID'"):
        PiiAnalyzer(["STAFF_ID"])
