"""Rows of :data:`keelwork.spec.enforced_by.ENFORCED_BY` for what watches the service:
``slos``, ``monitoring``, ``rollout``, ``cost``, ``retention``, ``alerts``, ``review`` and
``fairness``."""

from __future__ import annotations

#: keel.yaml path -> (component, test[, note]): see :mod:`keelwork.spec.enforced_by`.
WATCHING: dict[str, tuple[str, ...]] = {
    # ------------------------------------------------------------ slos
    "slos.latency_p99_ms": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_evaluate.py",
        "objectives built here; judged by keelwork.core.slo.evaluate and the Prometheus rules"),
    "slos.error_rate": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_evaluate.py"),
    "slos.availability": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py"),
    "slos.throughput_rps": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_evaluate.py"),
    "slos.window": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "SloSection.window_seconds: the error budget's period"),
    "slos.tiers[].name": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "the burn-rate alert tiers"),
    "slos.tiers[].severity": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "the burn-rate alert tiers"),
    "slos.tiers[].long_window": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "the burn-rate alert tiers"),
    "slos.tiers[].short_window": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "the burn-rate alert tiers"),
    "slos.tiers[].burn_rate": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_embedded.py",
        "the burn-rate alert tiers"),
    "slos.evaluation_interval": (
        "keelwork.service.slo_watch", "tests/unit/service/test_slo_watch.py"),
    "slos.evaluated_by": (
        "keelwork.service.slo_watch", "tests/integration/test_slo_embedded.py",
        "'server': the server evaluates; 'prometheus': the rules do"),
    "slos.min_events": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_rules.py"),
    "slos.quality[].name": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].metric": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].objective": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].model": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].feature": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].threshold": (
        "keelwork.core.slo.objectives", "tests/unit/core/slo/test_slo_quality.py",
        "quality objectives; measured by keelwork.core.slo.quality"),
    "slos.quality[].tiers[].name": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_quality_watch.py"),
    "slos.quality[].tiers[].severity": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_quality_watch.py"),
    "slos.quality[].tiers[].long_window": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_quality_watch.py"),
    "slos.quality[].tiers[].short_window": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_quality_watch.py"),
    "slos.quality[].tiers[].burn_rate": (
        "keelwork.core.slo.objectives", "tests/integration/test_slo_quality_watch.py"),
    # ------------------------------------------------------------ monitoring
    "monitoring.reference": (
        "keelwork.service.monitoring.reference", "tests/integration/test_monitor_run.py"),
    "monitoring.drift.numeric_method": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitor_run.py",
        "MonitorSettings.from_spec"),
    "monitoring.drift.categorical_method": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitor_run.py",
        "MonitorSettings.from_spec"),
    "monitoring.drift.threshold": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitor_run.py",
        "MonitorSettings.from_spec: the floor of every column's score"),
    "monitoring.drift.features": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitoring_fields.py",
        "the reference restricted to them"),
    "monitoring.windows": (
        "keelwork.service.monitoring.runs", "tests/integration/test_monitoring_fields.py",
        "'keel monitor run's windows; also the server's /metrics window"),
    "monitoring.labels.expected_delay": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitor_run.py",
        "labels are awaited this long before quality is judged"),
    "monitoring.labels.column": (
        "keelwork.service.monitoring.reference", "tests/integration/test_serve_reference.py"),
    "monitoring.labels.positive": (
        "keelwork.service.monitoring.reference", "tests/integration/test_monitor_run.py"),
    "monitoring.labels.max_unknown_per_request": (
        "keelwork.interfaces.http.feedback", "tests/unit/interfaces/http/test_feedback.py"),
    "monitoring.labels.unknown_ttl": (
        "keelwork.interfaces.http.feedback", "tests/unit/interfaces/http/test_feedback.py",
        "LabelsSection.unknown_ttl_seconds"),
    "monitoring.segments": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitoring_fields.py"),
    "monitoring.min_segment_rows": (
        "keelwork.service.monitoring.window", "tests/integration/test_monitoring_fields.py"),
    "monitoring.text_columns": (
        "keelwork.service.monitoring.reference", "tests/integration/test_monitor_text.py"),
    # ------------------------------------------------------------ rollout
    "rollout.strategy": (
        "keelwork.service.rollout.operations",
        "tests/integration/test_rollout_strategy_field.py",
        "the strategy a 'keel rollout start' uses; routed by keelwork.service.gateway.gateway"),
    "rollout.steps": (
        "keelwork.core.rollout.state", "tests/unit/core/rollout/test_rollout_analysis.py"),
    "rollout.interval": (
        "keelwork.service.rollout.operations", "tests/integration/test_rollout_canary.py",
        "seconds between steps"),
    "rollout.min_requests": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py"),
    "rollout.max_failures": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py"),
    "rollout.gates.max_error_rate": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_p99_latency_ms": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_contract_violation_rate": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_prediction_drift": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.min_accuracy": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_guard_hit_rate": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_mae": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_rmse": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_relative_mae_increase": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_analysis.py",
        "read by key from the gates"),
    "rollout.gates.max_fairness_difference": (
        "keelwork.core.rollout.analysis", "tests/unit/core/rollout/test_rollout_fairness_gate.py",
        "read by key from the gates"),
    # ------------------------------------------------------------ cost
    "cost.currency": (
        "keelwork.service.cost_watch", "tests/unit/service/test_cost_watch.py",
        "the unit of every cost metric and alert"),
    "cost.per_1k_predictions": (
        "keelwork.core.cost", "tests/unit/core/test_cost.py"),
    "cost.cpu_hour": (
        "keelwork.core.cost", "tests/unit/core/test_cost.py"),
    "cost.gpu_hour": (
        "keelwork.core.cost", "tests/unit/service/gateway/test_gpu_token_cost.py"),
    "cost.token_prices[].since": (
        "keelwork.core.cost", "tests/unit/core/test_token_prices.py"),
    "cost.token_prices[].input_per_1k": (
        "keelwork.core.cost", "tests/unit/core/test_token_prices.py"),
    "cost.token_prices[].output_per_1k": (
        "keelwork.core.cost", "tests/unit/core/test_token_prices.py"),
    "cost.token_prices[].model": (
        "keelwork.core.cost", "tests/unit/core/test_token_prices.py"),
    "cost.monthly_budget": (
        "keelwork.core.budget", "tests/unit/core/test_budget.py"),
    "cost.alert_at": (
        "keelwork.core.budget", "tests/unit/core/test_budget.py"),
    "cost.forecast_window": (
        "keelwork.service.cost_watch", "tests/integration/test_budget_promtool.py",
        "CostSection.forecast_seconds; the same window in keelwork.core.budget_rules"),
    "cost.evaluation_interval": (
        "keelwork.service.cost_watch", "tests/integration/test_journey_budget.py",
        "CostSection.interval_seconds"),
    "cost.evaluated_by": (
        "keelwork.service.cost_watch", "tests/unit/service/test_cost_watch.py"),
    # ------------------------------------------------------------ retention
    "retention.predictions_days": (
        "keelwork.service.retention", "tests/integration/test_retention.py"),
    "retention.labels_days": (
        "keelwork.service.retention", "tests/integration/test_retention.py"),
    "retention.audit_days": (
        "keelwork.service.retention", "tests/integration/test_retention.py"),
    "retention.dead_letters_days": (
        "keelwork.service.retention", "tests/integration/test_retention.py"),
    "retention.interval": (
        "keelwork.service.retention", "tests/integration/test_journey_retention.py",
        "retention_loop's period"),
    # ------------------------------------------------------------ alerts
    "alerts.receivers[].name": (
        "keelwork.core.alerting.routing",
        "tests/unit/core/alerting/test_named_receivers.py",
        "an owner or the on-call contact names it"),
    "alerts.receivers[].kind": (
        "keelwork.core.alerting.routing",
        "tests/unit/core/alerting/test_named_receivers.py"),
    "alerts.receivers[].url": (
        "keelwork.adapters.notifiers.slack",
        "tests/integration/test_alert_delivery.py",
        "posted to (a webhook receiver's by keelwork.adapters.notifiers.webhook)"),
    "alerts.receivers[].to": (
        "keelwork.core.alerting.routing",
        "tests/unit/core/alerting/test_named_receivers.py",
        "one e-mail target per address"),
    "alerts.receivers[].channel": (
        "keelwork.core.alerting.routing",
        "tests/unit/core/alerting/test_named_receivers.py",
        "the Slack target's channel"),
    "alerts.smtp.smarthost": (
        "keelwork.adapters.notifiers.smtp", "tests/integration/test_alert_delivery.py"),
    "alerts.smtp.from": (
        "keelwork.adapters.notifiers.smtp", "tests/integration/test_alert_delivery.py"),
    "alerts.smtp.username": (
        "keelwork.core.alerting.alertmanager",
        "tests/unit/core/alerting/test_alertmanager_config.py",
        "written into the Alertmanager configuration ('keel alerts config')"),
    "alerts.smtp.password": (
        "keelwork.core.alerting.alertmanager",
        "tests/unit/core/alerting/test_alertmanager_config.py",
        "written into the Alertmanager configuration ('keel alerts config')"),
    "alerts.smtp.require_tls": (
        "keelwork.core.alerting.alertmanager",
        "tests/unit/core/alerting/test_alertmanager_config.py",
        "written into the Alertmanager configuration ('keel alerts config')"),
    # ------------------------------------------------------------ review
    "review.budget_per_day": (
        "keelwork.core.review", "tests/integration/test_journey_review.py",
        "selection within the budget; filled by keelwork.service.review"),
    "review.random_share": (
        "keelwork.core.review", "tests/unit/core/test_review.py"),
    "review.guards": (
        "keelwork.service.review", "tests/integration/test_review_guards_field.py"),
    "review.double_label_share": (
        "keelwork.service.review", "tests/integration/test_journey_review.py"),
    "review.interval": (
        "keelwork.service.review", "tests/unit/service/test_review_interval.py",
        "review_loop's period"),
    # ------------------------------------------------------------ fairness
    "fairness.protected": (
        "keelwork.service.monitoring.fairness", "tests/integration/test_journey_fairness.py"),
    "fairness.label_fields": (
        "keelwork.service.monitoring.fairness", "tests/integration/test_journey_fairness.py"),
    "fairness.positive_label": (
        "keelwork.core.fairness.groups", "tests/integration/test_journey_fairness.py"),
    "fairness.metrics": (
        "keelwork.core.fairness.verdict",
        "tests/unit/service/monitoring/test_fairness_fields.py"),
    "fairness.max_difference": (
        "keelwork.core.fairness.verdict",
        "tests/integration/test_journey_fairness.py"),
    "fairness.min_ratio": (
        "keelwork.core.fairness.verdict",
        "tests/integration/test_journey_fairness.py"),
    "fairness.min_group_size": (
        "keelwork.core.fairness.verdict",
        "tests/integration/test_journey_fairness.py"),
    "fairness.confidence": (
        "keelwork.core.fairness.verdict",
        "tests/unit/service/monitoring/test_fairness_fields.py"),
}
