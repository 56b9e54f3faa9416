"""The dashboard's panel of what a model relied on (mean |attribution| per feature)."""

from __future__ import annotations

from keelwork.core.reports.reliance_html import MAX_FEATURES, reliance_panel


def test_features_largest_first_with_their_share() -> None:
    html = reliance_panel({"explained": 3, "mean_abs": {"debt": 0.5, "income": 1.5,
                                                        "<job>": 0.0}})
    assert "over 3 explained predictions" in html
    assert html.index("income") < html.index("debt") < html.index("&lt;job&gt;")
    assert "75%" in html and "25%" in html and "<job>" not in html  # escaped


def test_no_explained_prediction_is_no_data_never_zero() -> None:
    for view in (None, {}, {"explained": 0, "mean_abs": {}}):
        html = reliance_panel(view)
        assert "no data" in html and "0%" not in html


def test_long_lists_are_cut_and_counted() -> None:
    view = {"explained": 1, "mean_abs": {f"f{i}": float(i + 1) for i in range(12)}}
    html = reliance_panel(view)
    assert f"and {12 - MAX_FEATURES} more features" in html
    assert "f11" in html and "f0<" not in html


def test_the_move_from_the_reference_is_shown() -> None:
    view = {"explained": 2, "mean_abs": {"income": 1.0, "debt": 1.0},
            "reference": {"distance": 0.4, "threshold": 0.2, "shifted": True,
                          "explained": 200, "mean_abs": {"income": 9.0, "debt": 1.0}}}
    html = reliance_panel(view)
    assert "0.40 of the reliance moved from the reference's 200 rows" in html
    assert "shifted" in html and "90%" in html and "10%" in html
    assert "no reference baseline" in reliance_panel({**view, "reference": None})
