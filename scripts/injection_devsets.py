"""What the hand-written development sets of the injection classifier share
(scripts/injection_dev2.py, injection_dev3.py): their rows by kind, their texts, the report
of one set's scores, and the command that prints it for weights files."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keelwork.core.injection.model import MODEL_FILE, InjectionModel  # noqa: E402


@dataclass(frozen=True)
class DevSet:
    """One development set: its attacks by kind, its benign look-alikes, and the plain
    attacks its encoded ones were computed from."""

    name: str
    direct_en: Sequence[str]
    indirect: Sequence[str]
    lang: Mapping[str, Sequence[str]]
    encoded: Mapping[str, Sequence[str]]
    benign: Sequence[str]
    to_encode: Sequence[str]

    def rows(self) -> list[dict[str, str]]:
        """Every development text with its kind."""
        out = [{"text": t, "kind": "direct_en"} for t in self.direct_en]
        out += [{"text": t, "kind": "indirect_tool"} for t in self.indirect]
        out += [{"text": t, "kind": k} for k, v in self.lang.items() for t in v]
        out += [{"text": t, "kind": k} for k, v in self.encoded.items() for t in v]
        out += [{"text": t, "kind": "benign_lookalike"} for t in self.benign]
        return out

    def texts(self) -> set[str]:
        """The development texts and the plain attacks the encoded ones carry (never
        trained on)."""
        return {r["text"] for r in self.rows()} | set(self.to_encode)

    def report(self, model: InjectionModel) -> str:
        """Caught / flagged per kind, balanced accuracy and look-alike FPR at the
        threshold."""
        hits: dict[str, list[bool]] = {}
        for r in self.rows():
            hits.setdefault(r["kind"], []).append(model.score(r["text"]) >= model.threshold)
        attacks = [h for k, v in hits.items() if k != "benign_lookalike" for h in v]
        recall = sum(attacks) / len(attacks)
        fpr = sum(hits["benign_lookalike"]) / len(hits["benign_lookalike"])
        kinds = " ".join(f"{k} {sum(v)}/{len(v)}" for k, v in hits.items())
        return (f"{self.name} threshold {model.threshold:.3f} BA {(recall + 1 - fpr) / 2:.3f} "
                f"recall {recall:.3f} look-alike FPR {fpr:.3f} ({len(attacks)} attacks, "
                f"{len(hits['benign_lookalike'])} benign)  {kinds}")

    def main(self) -> None:
        """Print the report for each weights file named on the command line (default: the
        shipped weights)."""
        paths = [Path(a) for a in sys.argv[1:]] or [ROOT / "src" / "keelwork" / "core" /
                                                    "injection" / MODEL_FILE]
        for path in paths:
            print(f"{path.name}: {self.report(InjectionModel.from_bytes(path.read_bytes()))}")
