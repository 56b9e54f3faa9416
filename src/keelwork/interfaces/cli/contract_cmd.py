"""``keel contract infer DATA``: draft the data contract from reference data.

The draft is YAML with a comment on every field saying what was observed; review it (tighten a
range, add a category that the reference happens to lack) and put it in keel.yaml. The file
holds a ``contract:`` section, so it pastes into keel.yaml as is, and ``keel validate --contract
FILE`` reads it directly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import DataFileError
from keelwork.interfaces.cli.output import (
    console,
    current_settings,
    err_console,
    handles_errors,
    read_progress,
)

app = typer.Typer(help="Data contracts: draft one from reference data.", no_args_is_help=True)


def render_yaml(draft: Any, source: str, excluded: Sequence[str] = (),
                note: str | None = None) -> str:
    """The draft as commented YAML (a ``contract:`` section).

    Args:
        draft: An :class:`~keelwork.core.contracts.infer.InferredContract`.
        source: Where the reference data came from (for the header comment).
        excluded: Columns left out on purpose (named in the header comment).
        note: One more sentence for the header (the held-out check).

    Returns:
        The YAML text.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    inputs = CommentedSeq()
    for spec in draft.fields:
        item = CommentedMap()
        for key, value in spec.items():
            if isinstance(value, list):
                flow = CommentedSeq(value)
                flow.fa.set_flow_style()
                value = flow
            item[key] = value
        item.yaml_add_eol_comment(draft.comments[spec["name"]], "name")
        inputs.append(item)
    section = CommentedMap()
    section["inputs"] = inputs
    section["extra_fields"] = draft.extra_fields
    untyped = draft.untyped
    if untyped:  # with reject, every row that holds them (the reference data) would fail
        section.yaml_add_eol_comment(f"not reject: the data holds {', '.join(untyped)} "
                                     "(left out: no contract type)", "extra_fields")
    doc = CommentedMap()
    doc["contract"] = section
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    head = (f"Drafted by `keel contract infer` from {source} ({draft.rows:,} rows) on {when}.\n"
            "Review it, then put it in keel.yaml (or pass it to `keel validate --contract`).")
    if excluded and draft.extra_fields == "reject":
        head += ("\nNot inputs: " + ", ".join(excluded) + " (with extra_fields: reject, a file "
                 "that holds them fails validation; drop them, or set extra_fields: ignore).")
    elif excluded:
        head += ("\nNot inputs: " + ", ".join(excluded) + " (extra_fields: ignore lets a file "
                 "hold them).")
    if note:
        head += "\n" + note
    if draft.skipped:
        head += "\nLeft out: " + "; ".join(f"{k} ({v.removeprefix('skipped: ')})"
                                          for k, v in draft.skipped.items())
    doc.yaml_set_start_comment(head)
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


@app.command("infer")
@handles_errors
def infer_cmd(
    data: Path = typer.Argument(..., help="Reference data: .csv, .tsv, .parquet, .jsonl "
                                "(optionally .gz)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the YAML here (default: "
                                    "print it)."),
    margin: float | None = typer.Option(
        None, "--margin", min=0.0, help="Widen each observed range by this fraction of it, "
        "below and above. Default: the smallest that lets at most 1 % of a held-out 20 % of "
        "the rows fail when inferred on the other 80 %."),
    max_categories: int = typer.Option(20, "--max-categories", min=1, help="Most distinct "
                                       "values of a category field; more make a string/text "
                                       "field."),
    text_length: int = typer.Option(40, "--text-length", min=1, help="Mean length from which "
                                    "strings are free text ('text')."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="Leave this column out (a "
                                      "label, an id); repeatable."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Infer a draft contract (types, nulls, ranges, categories, lengths) from reference data."""
    from keelwork.service.validation import infer_draft, write_draft

    if out is not None and out.exists() and not force:
        raise DataFileError(f"{out}: already exists; pass --force to overwrite it.",
                            path=str(out))
    with read_progress(data) as progress:
        drafted = infer_draft(data, margin=margin, max_categories=max_categories,
                              text_length=text_length, exclude=exclude,
                              jit=current_settings().jit, progress=progress)
    draft, check, chosen = drafted.contract, drafted.check, drafted.margin
    note = (check.summary() if check is not None else
            f"held-out check: skipped ({drafted.rows} rows are too few to split); margin "
            f"{chosen:g}.")
    if margin is None and check is not None:
        note += f" Margin {chosen:g} chosen (set --margin to choose another)."
    text = render_yaml(draft, data.name, exclude, note=note)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_draft(out, text)
        console.print(f"wrote {len(draft.fields)} field(s) -> {out}", highlight=False)
    err_console.print(note, highlight=False, soft_wrap=True)
    for name, why in draft.skipped.items():
        err_console.print(f"[yellow]left out[/] {name}: {why.removeprefix('skipped: ')}",
                          highlight=False)


__all__ = ["app", "infer_cmd", "render_yaml"]
