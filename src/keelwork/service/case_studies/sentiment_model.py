"""The sentiment story's model and its measures: the TF-IDF + logistic regression pipeline it
trains, accuracy on labelled tweets (overall and per topic), and how far apart two sets of
tweets are (a domain classifier's ROC AUC: the size of a shift, measured)."""

from __future__ import annotations

from typing import Any

from keelwork.service.case_studies.tweets import Tweet


def train(texts: list[str], labels: list[str]) -> Any:
    """A TF-IDF (words and pairs of words) + logistic regression pipeline, fitted.

    Raises:
        MissingExtraError: scikit-learn is not installed.
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        from keelwork.errors import MissingExtraError

        raise MissingExtraError("scikit-learn", "demo", "The sentiment story") from None
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=5000),
        LogisticRegression(C=4.0, max_iter=1000))
    model.fit(texts, labels)
    # A fitted TfidfVectorizer keeps every pruned term: only for introspection, not saved.
    model[0].stop_words_ = None
    return model


def accuracy(model: Any, tweets: list[Tweet]) -> float:
    """Share of ``tweets`` whose label ``model`` predicts."""
    predicted = model.predict([t.text for t in tweets])
    return sum(bool(p == t.label) for p, t in zip(predicted, tweets, strict=True)) / len(tweets)


def domain_auc(first: list[Tweet], second: list[Tweet]) -> float:
    """How well the texts of ``first`` and ``second`` are told apart: the cross-validated
    (2-fold) ROC AUC of a TF-IDF + logistic regression classifier of which list a text is
    from. 0.5: the two are alike; 1.0: they share nothing."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    texts = [t.text for t in first + second]
    which = [0] * len(first) + [1] * len(second)
    model = make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True),
                          LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=20)
    proba = cross_val_predict(model, texts, which, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(which, proba))


def by_topic(models: dict[str, Any], tweets: list[Tweet]) -> dict[str, dict[str, float]]:
    """Each model's accuracy on the held-out tweets of each topic."""
    topics = sorted({t.topic for t in tweets})
    return {topic: {name: round(accuracy(m, [t for t in tweets if t.topic == topic]), 4)
                    for name, m in models.items()} for topic in topics}


__all__ = ["accuracy", "by_topic", "domain_auc", "train"]
