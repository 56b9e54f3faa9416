"""The keel.yaml model: the production requirements of one service, as code.

Every section of the product exists here from day one (even where enforcement lands later) so
that users write one file. Unknown keys are errors everywhere (``extra="forbid"``,
:mod:`keelwork.spec.section`). The two largest sections have modules of their own: the data
contract (:mod:`keelwork.spec.contract`) and the features (:mod:`keelwork.spec.features`).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from keelwork.spec.alerts import AlertsSection
from keelwork.spec.contract import ContractSection
from keelwork.spec.cost import CostSection
from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.explain import ExplainSection
from keelwork.spec.fairness import FairnessSection
from keelwork.spec.features import FeaturesSection
from keelwork.spec.flags import FlagSpec
from keelwork.spec.guard_settings import InjectionGuard, OodGuard, PiiRedaction, RateLimit
from keelwork.spec.kinds import runtime_kinds
from keelwork.spec.model_tests import TESTS_FIELD
from keelwork.spec.review import ReviewSection
from keelwork.spec.section import Section, check_name
from keelwork.spec.server import ServerSection
from keelwork.spec.slo_tier import DURATION
from keelwork.spec.slos import SloSection

SPEC_KIND: Literal["keel.yaml"] = "keel.yaml"
SPEC_VERSION: Literal[1] = 1


# --------------------------------------------------------------------------- service
class OnCall(Section):
    """Who gets paged, and how."""

    contact: str = Field(description="Where pages go: an e-mail address, an http(s) URL, a "
                         "#channel/@handle or an alerts.receivers name (keelwork.spec.alerts).")
    escalation: str | None = Field(default=None, description="Who is paged when nobody "
                                   "acknowledges a page (keel alerts ack) within "
                                   "escalate_after: a contact, as for 'contact'.")
    escalate_after: str = Field(default="15m", pattern=DURATION, description="How long a "
                                "page may go unacknowledged before it is escalated.")


class ServiceSection(Section):
    name: str = Field(description="Service name; used in metrics, logs and URLs.")
    description: str = ""
    owners: list[str] = Field(min_length=1, description="Owners: each an e-mail address, an "
                              "http(s) URL, a #channel/@handle or an alerts.receivers name "
                              "(keelwork.spec.alerts); tickets go to them.")
    on_call: OnCall | None = None
    tenant_header: str = Field(default="x-tenant-id", description="Header that names the tenant.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "the service name")


# --------------------------------------------------------------------------- models
class BatchingSection(Section):
    enabled: bool = True
    max_batch_size: PositiveInt = 64
    max_wait_ms: Annotated[float, Field(ge=0, le=10_000)] = 2.0


class ModelSection(Section):
    name: str
    runtime: str = Field(description="Runtime kind: sklearn, onnx, torch, hf, mlflow, python "
                         "or a plug-in registered under the 'keelwork.runtimes' entry points.")
    artifact: str | None = Field(
        default=None,
        description="Path (relative to keel.yaml) of the artifact to register, or, for the "
        "'python' runtime, 'module:function'. Omit when the model is already registered.",
    )
    aliases: list[str] = Field(default_factory=lambda: ["champion"])
    options: dict[str, Any] = Field(default_factory=dict, description="Runtime-specific options.")
    allow_unsafe_pickle: bool = Field(
        default=False,
        description="Allow plain pickle/joblib artifacts. They execute arbitrary code on load: "
        "only for artifacts you produced yourself.",
    )
    timeout_ms: PositiveFloat = Field(
        default=1000.0,
        description="How long one model call may take, in ms, its wait in the micro-batch "
        "included; past it the fallback answers, or 504. Loading a version on its first use is "
        "not counted.",
    )
    batching: BatchingSection = Field(default_factory=BatchingSection)
    fallback: str | None = Field(
        default=None, description="Model reference (name or name@alias) answering when this fails."
    )
    tests: str | None = TESTS_FIELD

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "a model name")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for a in v:
            check_name(a, "an alias")
            if a.isdigit():
                raise PydanticCustomError(
                    "alias_numeric", "an alias must not be a number (numbers are versions); "
                    "got {got}", {"got": repr(a)})
        return v

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        kinds = runtime_kinds()
        if v not in kinds:
            raise PydanticCustomError(
                "runtime_kind", "must be one of {kinds}; got {got}",
                {"kinds": ", ".join(kinds), "got": repr(v)},
            )
        return v


# --------------------------------------------------------------------------- monitoring
class DriftSection(Section):
    enabled: bool = True
    numeric_method: Literal["wasserstein", "ks", "psi", "jensen_shannon"] = "wasserstein"
    categorical_method: Literal["jensen_shannon", "chi2", "psi"] = "jensen_shannon"
    threshold: PositiveFloat | None = Field(
        default=None, description="Minimum effect size that counts as drift, in the unit of "
        "each column's method (default: each method's own floor, e.g. 0.1 for Jensen-Shannon). "
        "A score must also exceed the sampling noise of the window's size.")
    features: list[str] | None = None


class LabelsSection(Section):
    expected_delay: str = Field(default="1d", pattern=r"^\d+[smhd]$")
    source: str | None = None
    column: str | None = Field(
        default=None, description="Column of the reference data that holds the ground truth "
        "(profiled as label drift's reference; never given to the model).")
    positive: str | None = Field(
        default=None, description="Positive class of a binary classifier (default: the "
        "second of the model's classes, as scikit-learn orders them).")
    max_unknown_per_request: PositiveInt = Field(
        default=1000, description="Labels of unknown prediction ids that one POST "
        "/v1/feedback may add to the store; the rest are not kept (the answer counts them in "
        "'unknown_not_kept': send them again once their predictions are logged).")
    unknown_ttl: str = Field(
        default="7d", pattern=r"^\d+[smhd]$", description="Labels of unknown prediction ids "
        "not seen again for this long are deleted.")

    @property
    def unknown_ttl_seconds(self) -> float:
        """``unknown_ttl`` in seconds."""
        return float(int(self.unknown_ttl[:-1]) * UNIT_SECONDS[self.unknown_ttl[-1]])


class MonitoringSection(Section):
    reference: str | None = Field(default=None, description="Reference data (CSV/Parquet/JSONL).")
    drift: DriftSection = Field(default_factory=DriftSection)
    windows: list[Annotated[str, Field(pattern=r"^\s*\d+\s*[smhdp]?\s*$")]] = Field(
        default_factory=lambda: ["1h", "1d"],
        description="Windows of 'keel monitor run': a time length (15m, 1h, 1d; aligned to "
        "UTC) or a number of predictions (1000p).")
    labels: LabelsSection = Field(default_factory=LabelsSection)
    segments: list[str] = Field(
        default_factory=list, description="Categorical fields (inputs, or tenant/version) "
        "whose values are monitored as separate slices.")
    min_segment_rows: PositiveInt = Field(
        default=30, description="A segment value is compared only when a window holds at "
        "least this many of its predictions.")
    text_columns: list[str] | None = Field(
        default=None, description="Free-text input fields (kept out of the categorical "
        "profiles, compared by text drift). Default: detected in the reference.")


# --------------------------------------------------------------------------- rollout
class RolloutGates(Section):
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p99_latency_ms: PositiveFloat | None = None
    max_contract_violation_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_prediction_drift: PositiveFloat | None = None
    min_accuracy: Annotated[float, Field(ge=0, le=1)] | None = None
    #: Share of the challenger's requests on which any guard fired (off unless set).
    max_guard_hit_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    max_mae: PositiveFloat | None = Field(
        default=None, description="Regression: the challenger's mean absolute error on "
        "labelled answers (labels from feedback/ingest), in the target's unit.")
    max_rmse: PositiveFloat | None = Field(
        default=None, description="Regression: the challenger's root mean squared error on "
        "labelled answers.")
    max_relative_mae_increase: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Regression: how much larger than the champion's (in the "
        "same step) the challenger's MAE may be, as a fraction (0.1 = 10 % worse).")
    max_fairness_difference: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=None, description="Classification: the largest gap between the groups of a "
        "protected field (keelwork.spec.fairness) in the challenger's labelled answers; it "
        "fails only when the gap's confidence interval lies above it.")


#: Rollout gates that judge a classifier's / a regressor's answers against labels.
CLASSIFICATION_GATES = ("min_accuracy", "max_fairness_difference")
REGRESSION_GATES = ("max_mae", "max_rmse", "max_relative_mae_increase")


def output_task(contract: ContractSection) -> Literal["classification", "regression"] | None:
    """The model's task as its output contract says: None when it does not say.

    A float output is a regression; a category, string or boolean output (or an integer
    one with declared categories) is a classification. An integer without categories
    (a class id or a count) or a tensor says nothing.
    """
    tasks = set()
    for f in contract.outputs:
        if f.type == "float":
            tasks.add("regression")
        elif f.type in ("category", "string", "boolean") or (
                f.type == "integer" and f.categories):
            tasks.add("classification")
    if len(tasks) == 1:
        return "regression" if "regression" in tasks else "classification"
    return None


def misfit_gates(gates: RolloutGates, task: str | None) -> list[str]:
    """The configured label gates that do not fit ``task`` (none when the task is unknown)."""
    wrong = {"regression": CLASSIFICATION_GATES,
             "classification": REGRESSION_GATES}.get(task or "", ())
    return [g for g in wrong if getattr(gates, g) is not None]


class RolloutSection(Section):
    strategy: Literal["canary", "shadow", "ab"] = "canary"
    steps: list[Annotated[int, Field(gt=0, le=100)]] = Field(default_factory=lambda: [5, 25, 50,
                                                                                       100])
    interval: str = Field(default="5m", pattern=r"^\d+(\.\d+)?(ms|s|m|h|d)$")
    min_requests: PositiveInt = 100
    max_failures: PositiveInt = 2
    gates: RolloutGates = Field(default_factory=RolloutGates)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise PydanticCustomError("steps_order", "steps must increase; got {got}",
                                      {"got": repr(v)})
        return v


# --------------------------------------------------------------------------- guards
class GuardsSection(Section):
    max_body_bytes: PositiveInt = Field(
        default=1_048_576, description="Largest request body accepted on every route, whether "
        "it comes with Content-Length or chunked; larger ones are answered 413.")
    body_read_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=5.0, description="Seconds a client has to send a whole request body, from "
        "the first read; a slower one is answered 408 and the connection closed.")
    header_read_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=10.0, description="Seconds a connection has to send a whole request head, "
        "from its opening or its last answer; a slower (or silent) one is closed.")
    max_connections: PositiveInt = Field(
        default=1024, description="Client connections one server process holds open at once; "
        "past it, a new one is answered 503 and closed (granian: waits to be accepted).")
    max_concurrency: PositiveInt = 256
    max_loaded_versions: PositiveInt = Field(
        default=8, description="Model versions kept loaded at once (all models together). "
        "Loading one more unloads the least recently used; a champion, an active rollout's "
        "versions and a fallback are never unloaded.")
    version_refs: Literal["any", "aliases", "champion"] = Field(
        default="any", description="What a predict client may address with NAME@REF, "
        "x-keel-model-ref or /versions/N: 'any' (aliases and version numbers), 'aliases' "
        "(aliases only) or 'champion' (no reference; routing decides). Keys with the 'admin' "
        "scope may address any.")
    rate_limit: RateLimit | None = None
    pii_redaction: bool | PiiRedaction = Field(
        default=False, description="Scan text fields for personal data (e-mail, phone, card, "
        "IBAN, SSN, IP, URL, dates of birth, names, places) before anything is stored; "
        "per-field modes: contract.inputs[].pii.")
    prompt_injection: bool | InjectionGuard = Field(
        default=False, description="Score the contract's text inputs for prompt-injection "
        "and jailbreak attempts (decoded and normalised first; keelwork.core.injection).")
    out_of_distribution: bool | OodGuard = Field(
        default=False, description="Score each instance against the reference data "
        "(monitoring.reference): robust Mahalanobis and histogram scores fused by rank, "
        "calibrated to target_fpr (keelwork.core.ood).")
    require_api_key: bool = Field(default=False, description="Predict routes need a key with "
                                  "the 'predict' scope.")
    feedback_auth: Literal["auto", "required", "open"] = Field(
        default="auto", description="POST /v1/feedback needs a key with the 'feedback' scope: "
        "'auto' once the store holds any active API key (or require_api_key is set), "
        "'required' always, 'open' never.")
    relabel: Literal["any", "same_labeller"] = Field(
        default="any", description="Who may replace a stored label with a different one: any "
        "caller allowed to send feedback, or only the key that set it (admin keys always).")


# ------------------------------------------------ retention (the cost section: keelwork.spec.cost)
class RetentionSection(Section):
    """How long rows are kept; the server deletes older ones (keelwork.service.retention)."""

    predictions_days: PositiveInt | None = Field(
        default=None, description="Days a logged prediction (and its payload) is kept.")
    labels_days: PositiveInt | None = Field(
        default=None, description="Days a label (and its replaced and unmatched ones) is kept.")
    audit_days: PositiveInt | None = Field(
        default=None, description="Days an audit entry is kept; the chain is checkpointed "
        "before entries expire, so it still verifies.")
    dead_letters_days: PositiveInt | None = Field(
        default=None, description="Days a dead-lettered ingestion row is kept.")
    interval: str = Field(default="1h", pattern=r"^\d+[smhd]$", description="How often keel "
                          "serve applies retention (also: keel retention apply, for cron).")

    @property
    def enabled(self) -> bool:
        """Whether any table has a retention period."""
        return any(d is not None for d in (self.predictions_days, self.labels_days,
                                           self.audit_days, self.dead_letters_days))


# --------------------------------------------------------------------------- storage, server
class StorageSection(Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: sqlite:///<project>/.keel/keel.db",
    )
    durability: Literal["sync", "async"] = "sync"
    spool_dir: str | None = Field(default=None, description="Default: <project>/.keel/spool")
    subject_keys_url: str | None = Field(
        default=None, description="Where the per-subject payload keys live (crypto-shredding): "
        "a SQLite file or PostgreSQL URL apart from 'url', reached by every server and command "
        "of the project (a fleet on several machines shares one). Default: subject_keys.db "
        "beside a SQLite store, else <project>/.keel/subject_keys.db.")
    log_inputs: bool = True
    max_rejected_input_bytes: PositiveInt = Field(
        default=4096, description="Bound on the JSON kept of each refused instance (and of its "
        "violations) in the prediction log; larger ones are stored truncated, marked as such.")

    @field_validator("url", "spool_dir", "subject_keys_url")
    @classmethod
    def _empty_is_default(cls, v: str | None) -> str | None:
        # `url: ${DB_URL:-}` interpolates to "" when unset: that means "the default".
        return v or None

    @model_validator(mode="after")
    def _keys_apart(self) -> StorageSection:
        if self.subject_keys_url and self.url and \
                self.subject_keys_url.strip() == self.url.strip():
            raise ValueError("subject_keys_url must name a database apart from url (keys in "
                             "the data store would be in every backup of it)")
        return self



# --------------------------------------------------------------------------- the spec
def pii_settings(guards: GuardsSection) -> PiiRedaction | None:
    """``guards.pii_redaction`` as an object, or None when it is off."""
    value = guards.pii_redaction
    if value is False:
        return None
    return PiiRedaction() if value is True else value


def ood_settings(guards: GuardsSection) -> OodGuard | None:
    """``guards.out_of_distribution`` as an object, or None when it is off."""
    value = guards.out_of_distribution
    if value is False:
        return None
    return OodGuard() if value is True else value


def injection_settings(guards: GuardsSection) -> InjectionGuard | None:
    """``guards.prompt_injection`` as an object, or None when it is off."""
    value = guards.prompt_injection
    if value is False:
        return None
    return InjectionGuard() if value is True else value


class KeelSpec(Section):
    """The whole keel.yaml."""

    kind: Literal["keel.yaml"] = SPEC_KIND
    version: Literal[1] = SPEC_VERSION
    service: ServiceSection
    models: list[ModelSection] = Field(min_length=1)
    contract: ContractSection = Field(default_factory=ContractSection)
    slos: SloSection = Field(default_factory=SloSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    guards: GuardsSection = Field(default_factory=GuardsSection)
    cost: CostSection = Field(default_factory=CostSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    server: ServerSection = Field(default_factory=ServerSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection, description="Receivers of "
                                  "alerts beyond e-mail addresses and URLs (keel alerts config).")
    flags: list[FlagSpec] = Field(default_factory=list, description="Model flags: which "
                                  "version answers which requests (keelwork.spec.flags).")
    review: ReviewSection | None = Field(default=None, description="The human review queue "
                                         "(keelwork.spec.review).")
    fairness: FairnessSection | None = Field(default=None, description="Fairness monitoring "
                                             "(keelwork.spec.fairness).")
    explain: ExplainSection = Field(default_factory=ExplainSection, description="POST "
                                    "/v1/models/NAME:explain (keelwork.spec.explain).")

    @model_validator(mode="after")
    def _cross_refs(self) -> KeelSpec:
        names = [m.name for m in self.models]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise PydanticCustomError("duplicate_model", "model name {name} appears twice",
                                          {"name": repr(n)})
        for m in self.models:
            if m.fallback is not None:
                target = m.fallback.split("@", 1)[0]
                if target not in names:
                    raise PydanticCustomError(
                        "unknown_fallback",
                        "models[{name}].fallback names {got}, which is not a model in this "
                        "spec (models: {names})",
                        {"name": m.name, "got": repr(m.fallback), "names": ", ".join(names)})
        task = output_task(self.contract)
        wrong = misfit_gates(self.rollout.gates, task)
        if wrong:
            fits = CLASSIFICATION_GATES if task == "classification" else REGRESSION_GATES
            raise PydanticCustomError(
                "gate_task", "rollout.gates.{gate} does not fit a {task} model (its output "
                "contract says so); use {fits}",
                {"gate": wrong[0], "task": task, "fits": ", ".join(fits)})
        seen: set[str] = set()
        for f in self.flags:
            if f.name in seen:
                raise PydanticCustomError("duplicate_flag", "flag name {name} appears twice",
                                          {"name": repr(f.name)})
            seen.add(f.name)
            if f.model not in names:
                raise PydanticCustomError(
                    "unknown_flag_model", "flags[{name}].model names {got}, which is not a "
                    "model in this spec (models: {names})",
                    {"name": f.name, "got": repr(f.model), "names": ", ".join(names)})
        return self

    def model(self, name: str) -> ModelSection:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


class ResolvedSpec(BaseModel):
    """A validated spec plus where it lives; paths derived from the project directory."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    spec: KeelSpec
    path: Path
    project_dir: Path

    @property
    def keel_dir(self) -> Path:
        return self.project_dir / ".keel"

    @property
    def storage_url(self) -> str:
        url = self.spec.storage.url
        if url and "://" not in url and "@" not in url:  # a SQLite file path, from the project
            return f"sqlite:///{self.resolve_path(url)}"
        return url or f"sqlite:///{self.keel_dir / 'keel.db'}"

    @property
    def spool_dir(self) -> Path:
        s = self.spec.storage.spool_dir
        return (self.project_dir / s) if s else self.keel_dir / "spool"

    def resolve_path(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.project_dir / p
