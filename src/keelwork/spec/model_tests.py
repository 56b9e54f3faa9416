"""The behavioural tests of a model (``keel test NAME@V``), declared in a file beside keel.yaml.

keel.yaml names the file per model (``models[].tests: tests/credit.yaml``); the file holds a
list of tests, each of one kind (CheckList's three, plus two on labelled data):

- ``minimum``: given inputs, the expected label (``expect_label``) and/or a score range
  (``min_score``/``max_score``: a classifier's probability of the positive class, a
  regressor's value);
- ``invariance``: a perturbation (``typos`` character edits in a text field, or each of
  ``values`` put in an irrelevant field) must not change the label, nor the score by more than
  ``max_score_change``;
- ``directional``: changing ``field`` (``add`` or ``multiply``) must move the score only in
  ``direction`` (``up``: the score must not fall by more than ``tolerance``);
- ``slice``: on a labelled data file, the ``metric`` (accuracy, ROC AUC) of each slice of
  ``by`` (or of the whole file) must be at least ``min``;
- ``fairness``: on a labelled data file, the gap between the groups of ``protected``
  (demographic parity or equalized odds, as :mod:`keelwork.core.fairness` defines them) must
  be at most ``max_difference``.

Inputs of ``invariance``/``directional`` are ``inputs`` (instances written out) or the first
``rows`` rows of ``data`` (a CSV, Parquet or JSON-lines file, relative to keel.yaml).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, model_validator

from keelwork.spec.section import Section, check_name

TESTS_KIND: Literal["keel-tests"] = "keel-tests"
#: Bounds of one file: tests, written-out instances per test, rows read from a data file.
MAX_TESTS = 200
MAX_INSTANCES = 1000
MAX_ROWS = 100_000

#: keel.yaml's ``models[].tests`` (declared here so that spec.model stays within its size).
TESTS_FIELD: Any = Field(
    default=None, description="Path (relative to keel.yaml) of the model's behavioural tests "
    "(keelwork.spec.model_tests). When set, 'keel rollout start' and 'promote' refuse a version "
    "whose tests failed or were not run on it ('keel test NAME:V'); --skip-tests overrides, "
    "audited.")

Instance = dict[str, Any]
Instances = Annotated[list[Instance], Field(min_length=1, max_length=MAX_INSTANCES)]


class _Test(Section):
    name: str = Field(description="Names the test in results and failures.")

    def _named(self) -> None:
        check_name(self.name, "a test name")


class Case(Section):
    """One input of a ``minimum`` test and what the model must answer."""

    input: Instance
    expect_label: str | int | float | bool | None = None
    min_score: float | None = None
    max_score: float | None = None

    @model_validator(mode="after")
    def _expects(self) -> Case:
        if self.expect_label is None and self.min_score is None and self.max_score is None:
            raise ValueError("a case needs expect_label, min_score or max_score")
        if (self.min_score is not None and self.max_score is not None
                and self.min_score > self.max_score):
            raise ValueError(f"min_score {self.min_score} is above max_score {self.max_score}")
        return self


class MinimumTest(_Test):
    kind: Literal["minimum"]
    cases: list[Case] = Field(min_length=1, max_length=MAX_INSTANCES)


class _OnInputs(_Test):
    inputs: Instances | None = None
    data: str | None = Field(default=None, description="Data file of inputs, relative to "
                             "keel.yaml (its first 'rows' rows; other columns are ignored "
                             "unless the model takes them).")
    rows: Annotated[int, Field(ge=1, le=MAX_INSTANCES)] = 200
    drop: list[str] = Field(default_factory=list, description="Columns of 'data' not given "
                            "to the model (e.g. its label).")
    field: str = Field(description="The input field that is changed.")
    max_failure_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.0, description="Share of the cases allowed to fail (CheckList's failure "
        "rate: a few borderline answers may flip); 0: every case must hold.")

    @model_validator(mode="after")
    def _source(self) -> _OnInputs:
        if (self.inputs is None) == (self.data is None):
            raise ValueError("give either 'inputs' or 'data'")
        return self


class InvarianceTest(_OnInputs):
    kind: Literal["invariance"]
    typos: PositiveInt | None = Field(default=None, le=20, description="Character edits "
                                      "(swap, drop, repeat) made in the text field.")
    values: list[Any] | None = Field(default=None, min_length=1, max_length=50,
                                     description="Each value put in the (irrelevant) field.")
    max_score_change: Annotated[float, Field(ge=0)] = 0.05
    seed: int = 0

    @model_validator(mode="after")
    def _one_perturbation(self) -> InvarianceTest:
        if (self.typos is None) == (self.values is None):
            raise ValueError("give either 'typos' or 'values'")
        return self


class DirectionalTest(_OnInputs):
    kind: Literal["directional"]
    add: float | None = None
    multiply: Annotated[float, Field(gt=0)] | None = None
    direction: Literal["up", "down"] = "up"
    tolerance: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _one_change(self) -> DirectionalTest:
        if (self.add is None) == (self.multiply is None):
            raise ValueError("give either 'add' or 'multiply'")
        return self


class _OnLabelled(_Test):
    data: str = Field(description="Labelled data file, relative to keel.yaml.")
    label: str = Field(description="The column holding the ground truth (never given to the "
                       "model).")
    drop: list[str] = Field(default_factory=list, description="Other columns not given to "
                            "the model.")
    max_rows: Annotated[int, Field(ge=1, le=MAX_ROWS)] = 20_000


class SliceTest(_OnLabelled):
    kind: Literal["slice"]
    metric: Literal["accuracy", "roc_auc"] = "accuracy"
    min: Annotated[float, Field(ge=0, le=1)]
    by: str | None = Field(default=None, description="Column whose values are the slices "
                           "(none: the whole file is one slice).")
    min_rows: PositiveInt = Field(default=20, description="Slices with fewer rows are "
                                  "reported but not judged.")


class FairnessTest(_OnLabelled):
    kind: Literal["fairness"]
    protected: str
    metric: Literal["demographic_parity", "equalized_odds"] = "demographic_parity"
    max_difference: Annotated[float, Field(gt=0, le=1)]


ModelTest = Annotated[MinimumTest | InvarianceTest | DirectionalTest | SliceTest
                      | FairnessTest, Field(discriminator="kind")]


class ModelTestsFile(Section):
    """A model's tests file."""

    kind: Literal["keel-tests"] = TESTS_KIND
    version: Literal[1] = 1
    positive: str | int | bool | None = Field(
        default=None, description="A classifier's class whose probability is the score "
        "(default: monitoring.labels.positive, else the second class).")
    tests: list[ModelTest] = Field(min_length=1, max_length=MAX_TESTS)

    @model_validator(mode="after")
    def _names(self) -> ModelTestsFile:
        seen: set[str] = set()
        for t in self.tests:
            t._named()
            if t.name in seen:
                raise ValueError(f"test name {t.name!r} appears twice")
            seen.add(t.name)
        return self


__all__ = ["MAX_INSTANCES", "MAX_ROWS", "MAX_TESTS", "TESTS_FIELD", "TESTS_KIND", "Case",
           "DirectionalTest", "FairnessTest", "InvarianceTest", "MinimumTest", "ModelTest",
           "ModelTestsFile", "SliceTest"]
