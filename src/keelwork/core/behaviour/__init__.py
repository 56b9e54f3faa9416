"""Behavioural tests of a model (``keel test``): pure judging, given a way to ask the model.

- :mod:`~keelwork.core.behaviour.results`: what a run found: each test's verdict and its
  failing cases (the case, the input, what was expected and what was got).
- :mod:`~keelwork.core.behaviour.cases`: minimum functionality, invariance to perturbations
  (typos, irrelevant fields) and directional expectations.
- :mod:`~keelwork.core.behaviour.quality`: slice minimum quality (accuracy, ROC AUC) and
  fairness limits (:mod:`keelwork.core.fairness`'s disparities) on labelled rows.

The model is asked through an :data:`~keelwork.core.behaviour.results.Ask` callable: a batch
of instances in, their labels and scores out. Nothing here loads a model or reads a file.
"""

from __future__ import annotations

from keelwork.core.behaviour.results import Ask, Failure, TestResult, run_passed

__all__ = ["Ask", "Failure", "TestResult", "run_passed"]
