"""Reading keel.yaml: YAML with line numbers, ``${ENV}`` interpolation, every problem at once.

Errors carry the field path *and* the line of the file, so that a user can jump to it:
``models[0].runtime (line 12): must be one of sklearn, onnx, ...; got 'sklern'``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.alerts import contact_problems
from keelwork.spec.cost import cost_problems
from keelwork.spec.enforcement import not_enforced
from keelwork.spec.fairness_checks import fairness_problems
from keelwork.spec.guards import guard_problems
from keelwork.spec.model import KeelSpec, ResolvedSpec, output_task
from keelwork.spec.quality_slos import quality_problems
from keelwork.spec.section import Section
from keelwork.spec.slos import slo_problems

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Loc = tuple[str | int, ...]

#: Nodes that YAML aliases (``*name``) may expand to in all; a file needing more is refused.
#: Expansion is what makes a "billion laughs" file (aliases of aliases, each level multiplying
#: the one below) take minutes and gigabytes from a kilobyte; a real keel.yaml reuses a block
#: a few dozen times.
MAX_ALIAS_NODES = 10_000


def format_path(loc: Loc) -> str:
    """``("models", 0, "runtime")`` -> ``models[0].runtime``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "<root>"


def check_alias_expansion(data: Any, source: str) -> None:
    """Refuse YAML whose aliases expand past :data:`MAX_ALIAS_NODES` nodes, in bounded time.

    For readers that load YAML into Python objects (``YAML(typ="safe")`` or round-trip) and
    then walk them: the loader shares an anchored node between its uses, so loading is cheap,
    but every later walk (validation, conversion) pays the full expansion. This walk stops as
    soon as the repeated visits pass the bound, so it costs at most the file's own nodes plus
    the bound.

    Raises:
        SpecError: the aliases expand past the bound (rule ``yaml_alias_expansion``).
    """
    seen: set[int] = set()
    repeats = 0
    stack: list[tuple[Any, Loc]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in seen:
            repeats += 1 + len(node)
            if repeats > MAX_ALIAS_NODES:
                path = format_path(loc)
                raise SpecError(
                    f"{source}: YAML aliases ('*name') expand to more than {MAX_ALIAS_NODES} "
                    f"nodes (the alias at {path}); refusing the file. Write the repeated parts "
                    "out, or reuse fewer.",
                    [ErrorDetail(path, "yaml_alias_expansion", MAX_ALIAS_NODES,
                                 f"aliases expand to more than {MAX_ALIAS_NODES} nodes")])
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((child, (*loc, key if isinstance(key, int) else str(key)))
                     for key, child in items)


class _Document:
    """Parsed YAML plus a map from paths to line numbers (1-based)."""

    def __init__(self, text: str, source: str) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError

        yaml = YAML(typ="rt", pure=True)
        try:
            data = yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise SpecError(
                f"{source}: not valid YAML (line {line}): {exc.problem or exc.context}",
                [ErrorDetail("<root>", "yaml_syntax", None, str(exc.problem), line)],
            ) from None
        except Exception as exc:  # ruamel raises assorted errors on odd bytes
            raise SpecError(f"{source}: not valid YAML: {exc}",
                            [ErrorDetail("<root>", "yaml_syntax", None, str(exc))]) from None
        self.source = source
        self.lines: dict[Loc, int] = {}
        self._seen: set[int] = set()
        self._aliased = 0
        self.data = self._plain(data, (), None)

    def _plain(self, node: Any, loc: Loc, aliased: Loc | None) -> Any:
        """A plain copy of ``node``; ``aliased``: where the alias use it is inside of starts."""
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        if isinstance(node, CommentedMap | CommentedSeq):
            if id(node) in self._seen and aliased is None:
                aliased = loc  # the composer shares an anchored node: this is an alias use
            self._seen.add(id(node))
        if aliased is not None:
            self._aliased += 1
            if self._aliased > MAX_ALIAS_NODES:
                path = format_path(aliased)
                # an alias in a sequence carries its anchor's line: name the sequence's
                line = self.line_of(aliased[:-1] if isinstance(aliased[-1], int) else aliased)
                raise SpecError(
                    f"{self.source}: YAML aliases ('*name') expand to more than "
                    f"{MAX_ALIAS_NODES} nodes (the alias at {path}, line {line}); "
                    "refusing the file. Write the repeated parts out, or reuse fewer.",
                    [ErrorDetail(path, "yaml_alias_expansion", MAX_ALIAS_NODES,
                                 f"aliases expand to more than {MAX_ALIAS_NODES} nodes",
                                 line)])
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key in node:
                try:
                    ln = node.lc.key(key)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    ln = node.lc.line + 1
                child = (*loc, str(key))
                self.lines[child] = ln
                out[str(key)] = self._plain(node[key], child, aliased)
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for i, item in enumerate(node):
                child = (*loc, i)
                try:
                    self.lines[child] = node.lc.item(i)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    self.lines[child] = node.lc.line + 1
                items.append(self._plain(item, child, aliased))
            return items
        if isinstance(node, str):
            return str(node)
        return node

    def line_of(self, loc: Loc) -> int | None:
        """Line of the deepest prefix of ``loc`` present in the file."""
        for end in range(len(loc), 0, -1):
            ln = self.lines.get(loc[:end])
            if ln is not None:
                return ln
        return 1 if loc else None


class _Masks:
    """What interpolation put where, so that no message shows a value from the environment.

    Values from ``${VAR}`` are often secrets (a database password, a token): a problem at an
    interpolated field shows the field as written (``${KEEL_DB_URL}``), and any message that
    quotes such a value shows ``${VAR}`` in its place.
    """

    #: Shorter values are not searched for in messages: they would mask ordinary words.
    MIN_LEN = 4

    def __init__(self) -> None:
        self.written: dict[str, str] = {}  # path -> the text as written in keel.yaml
        self.values: dict[str, str] = {}  # a value from the environment -> ${NAME}

    def text(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            if len(value) >= self.MIN_LEN:
                text = text.replace(value, self.values[value])
        return text

    def detail(self, d: ErrorDetail) -> ErrorDetail:
        got = self.written.get(d.path, d.got)
        if got is d.got and isinstance(got, str):
            got = self.text(got)
        return ErrorDetail(d.path, d.rule, got, self.text(d.message), d.line)


def _interpolate(node: Any, loc: Loc, env: Mapping[str, str], problems: list[ErrorDetail],
                 doc: _Document, masks: _Masks) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, (*loc, k), env, problems, doc, masks)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, (*loc, i), env, problems, doc, masks)
                for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                masks.written[format_path(loc)] = node
                masks.values[env[name]] = m.group(0)
                return env[name]
            if default is not None:
                return default
            problems.append(ErrorDetail(
                format_path(loc), "env_missing", m.group(0),
                f"environment variable {name} is not set (use ${{{name}:-default}} for a "
                "default)", doc.line_of(loc)))
            return m.group(0)

        return _ENV_RE.sub(repl, node)
    return node


def _message(err: Mapping[str, Any], data: Any) -> str:
    kind = err["type"]
    got = err.get("input")
    loc: Loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        hint = ""
        parent = _model_at(loc[:-1])
        if parent is not None:
            close = difflib.get_close_matches(str(key), list(parent.model_fields), n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            else:
                hint = f"; allowed keys: {', '.join(parent.model_fields)}"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be one of {expected.replace(' or ', ', ')}; got {got!r}"
    msg = str(err["msg"]).replace("Input should be", "must be")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind.startswith(("runtime_kind", "name_format", "alias_", "unknown_fallback")):
        return msg
    if "got" in msg:
        return msg
    if isinstance(got, dict | list):
        return msg[0].lower() + msg[1:]
    return f"{msg[0].lower() + msg[1:]}; got {got!r}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that a path inside KeelSpec points at (for key suggestions)."""
    import typing

    cls: Any = KeelSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        # unwrap Optional[...] and list[...]
        for _ in range(3):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            origin = typing.get_origin(ann)
            if origin in (list, typing.Union) or str(origin) == "types.UnionType":
                ann = args[0] if args else ann
            else:
                break
        cls = ann
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def parse_spec(text: str, *, source: str = "keel.yaml",
               env: Mapping[str, str] | None = None) -> KeelSpec:
    """Validate keel.yaml text.

    Args:
        text: The YAML text.
        source: Name used in messages (usually the file path).
        env: Environment for ``${VAR}`` interpolation; defaults to ``os.environ``.

    Returns:
        The validated spec.

    Raises:
        SpecError: listing every problem with its path and line.
    """
    doc = _Document(text, source)
    if doc.data is None:
        raise SpecError(f"{source} is empty; a spec needs at least 'service' and 'models'.",
                        [ErrorDetail("<root>", "empty", None, "the file is empty", 1)])
    if not isinstance(doc.data, dict):
        raise SpecError(f"{source}: the top level must be a mapping of sections; got "
                        f"{type(doc.data).__name__}",
                        [ErrorDetail("<root>", "type", type(doc.data).__name__, "", 1)])
    problems: list[ErrorDetail] = []
    masks = _Masks()
    data = _interpolate(doc.data, (), os.environ if env is None else env, problems, doc, masks)
    for unenforced, why in not_enforced(data):
        path = format_path(unenforced)
        problems.append(ErrorDetail(
            path, "not_enforced", None,
            f"{path} is not enforced by this version of keelwork ({why}); remove it rather "
            "than rely on it", doc.line_of(unenforced)))
    spec: KeelSpec | None = None
    try:
        spec = KeelSpec.model_validate(data)
    except ValidationError as exc:
        for err in _one_branch(exc.errors(include_url=False)):
            loc: Loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            problems.append(ErrorDetail(
                format_path(loc), str(err["type"]), _short(err.get("input")),
                _message({**err, "loc": loc}, data), doc.line_of(loc)))
    if spec is not None:
        waits = {i: m.batching.max_wait_ms if m.batching.enabled else None
                 for i, m in enumerate(spec.models)}
        for where, rule, got, message in slo_problems(spec.slos, waits):
            problems.append(ErrorDetail(format_path(where), rule, got, message,
                                        doc.line_of(where)))
        for where, rule, got, message in quality_problems(
                spec.slos.quality, models=[m.name for m in spec.models],
                inputs=[f.name for f in spec.contract.inputs], outputs=spec.contract.outputs,
                task=output_task(spec.contract), positive=spec.monitoring.labels.positive,
                reference=spec.monitoring.reference, windows=spec.monitoring.windows):
            problems.append(ErrorDetail(format_path(where), rule, got, message,
                                        doc.line_of(where)))
        if "cost" in spec.model_fields_set:  # the default section (none written) has no price
            for where, rule, got, message in cost_problems(
                    spec.cost, [m.name for m in spec.models]):
                problems.append(ErrorDetail(format_path(where), rule, got, message,
                                            doc.line_of(where)))
        for where, rule, got, message in [*guard_problems(spec), *fairness_problems(spec)]:
            problems.append(ErrorDetail(format_path(where), rule, got, message,
                                        doc.line_of(where)))
        on_call = spec.service.on_call
        for at, got, why in contact_problems(spec.service.owners,
                                             on_call.contact if on_call else None, spec.alerts,
                                             on_call.escalation if on_call else None):
            problems.append(ErrorDetail(format_path(at), "contact_unreachable", got, why,
                                        doc.line_of(at)))
        slos, cost = spec.slos, spec.cost
        by_prometheus = [name for name, yes in (
            ("slos", slos.evaluated_by == "prometheus" and bool(
                slos.budgets() or slos.throughput_rps is not None)),
            ("cost", cost.evaluated_by == "prometheus" and cost.monthly_budget is not None))
            if yes]
        if on_call is not None and on_call.escalation is not None and by_prometheus:
            at = ("service", "on_call", "escalation")
            problems.append(ErrorDetail(
                format_path(at), "escalation_needs_server", on_call.escalation,
                "escalation is done by keel serve's own alert delivery; with "
                f"{' and '.join(by_prometheus)}.evaluated_by: prometheus those pages go "
                "through Alertmanager, which cannot escalate (use your pager's escalation "
                "policy, or evaluated_by: server)", doc.line_of(at)))
    if problems or spec is None:
        problems = [masks.detail(d) for d in problems]
        problems.sort(key=lambda d: (d.line or 0, d.path))
        lines = [f"  {d.path} (line {d.line}): {d.message}" for d in problems]
        raise SpecError(f"{source} has {len(problems)} problem(s):\n" + "\n".join(lines),
                        problems)
    return spec


#: Union members pydantic names after a scalar type (``true`` | an object, ...).
_SCALAR_TAGS = ("bool", "int", "float", "str")


def _sections() -> set[str]:
    """Names of every keel.yaml section class: pydantic's tag for a union member that is one."""
    out, todo = set(), [Section]
    while todo:
        for sub in todo.pop().__subclasses__():
            out.add(sub.__name__)
            todo.append(sub)
    return out


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and (part.startswith(("function-", "constrained-"))
                                      or part in ("list[...]", *_SCALAR_TAGS)
                                      or part in _sections())


def _one_branch(errors: list[Any]) -> list[Any]:
    """Errors of ``true | {object}`` fields without the scalar branch's "must be a valid
    boolean" when the object branch has errors of its own at the same place: the user wrote
    an object, so only what is wrong with it is said."""
    sections = _sections()
    objects = {tuple(e["loc"][:i]) for e in errors for i, p in enumerate(e["loc"])
               if isinstance(p, str) and p in sections}
    return [e for e in errors if not any(
        isinstance(p, str) and p in _SCALAR_TAGS and tuple(e["loc"][:i]) in objects
        for i, p in enumerate(e["loc"]))]


def _short(value: Any) -> Any:
    if isinstance(value, dict | list):
        return type(value).__name__
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def load_spec(path: str | Path, *, env: Mapping[str, str] | None = None) -> ResolvedSpec:
    """Read and validate a keel.yaml file.

    Raises:
        SpecError: the file is missing, unreadable, not YAML or invalid (every problem listed).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "keel.yaml"
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{p}: no such file. Create one with `keel init DIR` or pass the path "
                        "of your keel.yaml.", [ErrorDetail(str(p), "file_missing")]) from None
    except OSError as exc:
        raise SpecError(f"{p}: cannot read it ({exc.strerror}).",
                        [ErrorDetail(str(p), "file_unreadable")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"{p}: not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8.",
                        [ErrorDetail("<root>", "encoding", None, "not UTF-8", line)]) from None
    spec = parse_spec(text, source=str(p), env=env)
    return ResolvedSpec(spec=spec, path=p.resolve(), project_dir=p.resolve().parent)


def json_schema() -> dict[str, Any]:
    """JSON Schema of keel.yaml, for editors (yaml-language-server) and CI checks."""
    schema = KeelSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "keel.yaml"
    return schema
