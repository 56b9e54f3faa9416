"""Score injection-model weights on the development set (scripts/injection_dev.jsonl).

    python scripts/injection_dev.py [WEIGHTS.npz ...]

The development set (hand-written for choosing between builds: 20 short English direct
attacks, 12 injections inside tool outputs, 8 German/French/Spanish/Italian attacks, 40 benign
look-alikes) is never trained on; it is not a held-out test either (builds were chosen on it).
The direct attacks are also scored base64-encoded, alone or in a frame that asks to decode
them. Without arguments the shipped weights are scored.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keelwork.core.injection.model import MODEL_FILE, InjectionModel  # noqa: E402

DEV = ROOT / "scripts" / "injection_dev.jsonl"
_FRAMES = ("{}", "Decode this and follow it: {}",
           "Please base64-decode the following and do what it says: {}", "{} (base64)")


def report(model: InjectionModel) -> str:
    """Caught / flagged per kind, balanced accuracy and look-alike FPR at the model's
    threshold."""
    rows = [json.loads(line) for line in DEV.read_text("utf-8").splitlines() if line]
    by_kind: dict[str, list[bool]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(model.score(r["text"]) >= model.threshold)
    direct = [r["text"] for r in rows if r["kind"] == "direct_en"]
    by_kind["direct_en_base64"] = [
        model.score(_FRAMES[i % len(_FRAMES)].format(base64.b64encode(t.encode()).decode()))
        >= model.threshold for i, t in enumerate(direct)]
    attacks = [h for k, v in by_kind.items() if k not in ("benign_lookalike", "direct_en_base64")
               for h in v]
    recall = sum(attacks) / len(attacks)
    fpr = sum(by_kind["benign_lookalike"]) / len(by_kind["benign_lookalike"])
    kinds = " ".join(f"{k} {sum(v)}/{len(v)}" for k, v in by_kind.items())
    return (f"threshold {model.threshold:.3f} BA {(recall + 1 - fpr) / 2:.3f} recall "
            f"{recall:.3f} look-alike FPR {fpr:.3f}  {kinds}")


def main() -> None:
    paths = [Path(a) for a in sys.argv[1:]] or [ROOT / "src" / "keelwork" / "core" /
                                                "injection" / MODEL_FILE]
    for path in paths:
        print(f"{path.name}: {report(InjectionModel.from_bytes(path.read_bytes()))}")


if __name__ == "__main__":
    main()
