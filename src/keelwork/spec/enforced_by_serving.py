"""Rows of :data:`keelwork.spec.enforced_by.ENFORCED_BY` for what a request meets:
``service``, ``models``, ``contract``, ``guards``, ``storage``, ``server``, ``features``,
``flags`` and ``explain``."""

from __future__ import annotations

#: keel.yaml path -> (component, test[, note]): see :mod:`keelwork.spec.enforced_by`.
SERVING: dict[str, tuple[str, ...]] = {
    # ------------------------------------------------------------ service
    "service.owners": (
        "keelwork.core.alerting.routing", "tests/integration/test_alert_delivery.py",
        "tickets go to each owner"),
    "service.on_call.contact": (
        "keelwork.core.alerting.routing", "tests/integration/test_alert_delivery.py",
        "pages go to it"),
    "service.on_call.escalation": (
        "keelwork.service.alerting", "tests/integration/test_alert_delivery.py",
        "AlertDelivery.escalations: an unacknowledged page goes there too"),
    "service.on_call.escalate_after": (
        "keelwork.service.alerting", "tests/integration/test_alert_delivery.py",
        "AlertDelivery.escalations: how long a page waits for an acknowledgement"),
    "service.tenant_header": (
        "keelwork.interfaces.http.context", "tests/integration/test_spec_header_fields.py"),
    # ------------------------------------------------------------ models
    "models[].name": (
        "keelwork.service.gateway.gateway", "tests/unit/interfaces/http/test_app.py",
        "routes /v1/models/NAME to its model"),
    "models[].runtime": (
        "keelwork.service.assembly", "tests/integration/test_serve_reference.py",
        "registers keel.yaml's artifact with this runtime at serve; keelwork.service.models "
        "loads it"),
    "models[].artifact": (
        "keelwork.service.assembly", "tests/integration/test_serve_reference.py",
        "registered at serve when the model is not registered yet"),
    "models[].aliases": (
        "keelwork.service.assembly", "tests/integration/test_spec_storage_server_fields.py",
        "the aliases the serve-time registration gives"),
    "models[].options": (
        "keelwork.service.models", "tests/unit/interfaces/http/test_app.py",
        "merged into the runtime's options at load"),
    "models[].allow_unsafe_pickle": (
        "keelwork.service.assembly", "tests/integration/test_spec_storage_server_fields.py",
        "passed to registration and to the runtime's load"),
    "models[].timeout_ms": (
        "keelwork.service.gateway.dispatch", "tests/unit/interfaces/http/test_app.py",
        "the call only; a version's loading is not counted "
        "(tests/unit/service/gateway/test_timeout_scope.py)"),
    "models[].batching.enabled": (
        "keelwork.service.gateway.host", "tests/unit/interfaces/http/test_app.py",
        "no MicroBatcher when false"),
    "models[].batching.max_batch_size": (
        "keelwork.service.gateway.host", "tests/unit/interfaces/http/test_batch_size.py",
        "given to keelwork.core.batching.MicroBatcher"),
    "models[].batching.max_wait_ms": (
        "keelwork.service.gateway.host", "tests/unit/core/test_batching.py",
        "given to keelwork.core.batching.MicroBatcher, whose wait the test measures"),
    "models[].fallback": (
        "keelwork.service.gateway.dispatch", "tests/unit/interfaces/http/test_app.py",
        "also for a version replica lost twice "
        "(tests/unit/adapters/engines/test_version_runtime.py)"),
    "models[].tests": (
        "keelwork.service.model_tests", "tests/integration/test_journey_model_tests.py",
        "keel test runs the file's tests; the rollout start and promote gate refuses a "
        "version that did not pass them"),
    # ------------------------------------------------------------ contract
    "contract.inputs[].name": (
        "keelwork.core.contracts.record", "tests/unit/core/contracts/test_record.py"),
    "contract.inputs[].type": (
        "keelwork.core.contracts.record", "tests/unit/core/contracts/test_record.py"),
    "contract.inputs[].required": (
        "keelwork.core.contracts.record", "tests/unit/core/contracts/test_record.py"),
    "contract.inputs[].nullable": (
        "keelwork.core.contracts.record", "tests/unit/core/contracts/test_record.py"),
    "contract.inputs[].min": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].max": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].categories": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].min_length": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].max_length": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].shape": (
        "keelwork.core.contracts.tensor", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].dtype": (
        "keelwork.core.contracts.tensor", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].allow_nan": (
        "keelwork.core.contracts.scalars", "tests/unit/core/contracts/test_record.py",
        "compiled per field by keelwork.core.contracts.record"),
    "contract.inputs[].pii": (
        "keelwork.service.redaction", "tests/integration/test_pii_proof.py"),
    "contract.outputs[].description": (
        "keelwork.interfaces.http.openapi", "tests/unit/interfaces/http/test_app.py",
        "predict_description: the predict operation's text in /openapi.json and /docs"),
    "contract.outputs[].name": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].type": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].required": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].nullable": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].min": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].max": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].categories": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].min_length": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].max_length": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].shape": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].dtype": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].allow_nan": (
        "keelwork.core.contracts.outputs", "tests/unit/core/contracts/test_output_rules.py",
        "the inputs' rules (keelwork.core.contracts.record) applied to each answer"),
    "contract.outputs[].pii": (
        "keelwork.service.redaction", "tests/integration/test_spec_storage_server_fields.py"),
    "contract.extra_fields": (
        "keelwork.core.contracts.record", "tests/unit/core/contracts/test_record.py"),
    "contract.subject_field": (
        "keelwork.service.gateway.dispatch", "tests/integration/test_spec_header_fields.py"),
    "contract.output_policy": (
        "keelwork.service.gateway.dispatch", "tests/unit/interfaces/http/test_output_contract.py"),
    # ------------------------------------------------------------ guards
    "guards.max_body_bytes": (
        "keelwork.interfaces.http.limits", "tests/integration/test_hostile_clients.py",
        "BodyLimitMiddleware, installed by keelwork.interfaces.http.app"),
    "guards.body_read_timeout_s": (
        "keelwork.interfaces.http.limits", "tests/integration/test_hostile_clients.py",
        "BodyLimitMiddleware, installed by keelwork.interfaces.http.app"),
    "guards.header_read_timeout_s": (
        "keelwork.interfaces.http.head_deadline", "tests/integration/test_hostile_clients.py",
        "the uvicorn protocols of keel serve, its workers and the admin apps; granian's "
        "header_read_timeout (keelwork.adapters.engines.granian_front)"),
    "guards.max_connections": (
        "keelwork.interfaces.http.head_deadline", "tests/integration/test_hostile_clients.py",
        "the uvicorn protocols of keel serve, its workers and the admin apps (503 and closed); "
        "granian's backpressure (keelwork.adapters.engines.granian_front); the open-file "
        "limit raised to hold it (keelwork.adapters.processes)"),
    "guards.max_concurrency": (
        "keelwork.service.gateway.dispatch", "tests/unit/interfaces/http/test_app.py",
        "granian's batch queues count their requests in flight together "
        "(keelwork.service.batch_predict.BatchQueue)"),
    "guards.max_loaded_versions": (
        "keelwork.service.gateway.gateway", "tests/unit/service/gateway/test_loaded_versions.py"),
    "guards.version_refs": (
        "keelwork.service.gateway.gateway", "tests/unit/service/gateway/test_loaded_versions.py"),
    "guards.rate_limit.requests_per_second": (
        "keelwork.service.rate_limits", "tests/integration/test_rate_limit.py"),
    "guards.rate_limit.burst": (
        "keelwork.service.rate_limits", "tests/integration/test_rate_limit.py"),
    "guards.rate_limit.per": (
        "keelwork.interfaces.http.rate_limit", "tests/integration/test_rate_limit.py",
        "who a caller is: key, tenant or IP"),
    "guards.pii_redaction": (
        "keelwork.service.redaction", "tests/integration/test_pii_proof.py"),
    "guards.pii_redaction.text": (
        "keelwork.service.redaction", "tests/integration/test_spec_storage_server_fields.py"),
    "guards.pii_redaction.model_sees": (
        "keelwork.service.redaction", "tests/integration/test_spec_header_fields.py"),
    "guards.pii_redaction.entities": (
        "keelwork.service.redaction", "tests/integration/test_spec_storage_server_fields.py",
        "the entity scanner is built for these only"),
    "guards.prompt_injection": (
        "keelwork.service.injection", "tests/integration/test_journey_injection.py"),
    "guards.prompt_injection.action": (
        "keelwork.service.injection", "tests/unit/service/test_injection_screen.py"),
    "guards.prompt_injection.threshold": (
        "keelwork.service.injection", "tests/unit/service/test_injection_screen.py"),
    "guards.prompt_injection.fields": (
        "keelwork.service.injection", "tests/integration/test_journey_injection.py"),
    "guards.prompt_injection.on_error": (
        "keelwork.service.injection", "tests/unit/service/test_injection_screen.py"),
    "guards.prompt_injection.timeout_ms": (
        "keelwork.service.injection", "tests/unit/service/test_injection_screen.py"),
    "guards.prompt_injection.canary_field": (
        "keelwork.service.injection", "tests/integration/test_journey_injection.py"),
    "guards.out_of_distribution": (
        "keelwork.service.ood", "tests/integration/test_journey_ood.py"),
    "guards.out_of_distribution.action": (
        "keelwork.service.ood", "tests/integration/test_journey_ood.py"),
    "guards.out_of_distribution.target_fpr": (
        "keelwork.service.ood", "tests/integration/test_journey_ood.py"),
    "guards.require_api_key": (
        "keelwork.interfaces.http.app", "tests/integration/test_server_auth.py"),
    "guards.feedback_auth": (
        "keelwork.interfaces.http.auth", "tests/integration/test_server_auth.py"),
    "guards.relabel": (
        "keelwork.interfaces.http.feedback", "tests/integration/test_server_auth.py"),
    # ------------------------------------------------------------ storage
    "storage.url": (
        "keelwork.service.assembly", "tests/integration/test_journey_tabular.py",
        "the store every adapter opens (ResolvedSpec.storage_url)"),
    "storage.subject_keys_url": (
        "keelwork.service.subjects", "tests/integration/test_crypto_shredding_pg.py",
        "the key store project_keys attaches to the project's store (refused when it names "
        "the data store itself)"),
    "storage.durability": (
        "keelwork.adapters.stores.prediction_log", "tests/unit/interfaces/http/test_app.py",
        "passed by keelwork.service.assembly; the test proves sync (the default)"),
    "storage.spool_dir": (
        "keelwork.adapters.stores.prediction_spool",
        "tests/integration/test_spec_storage_server_fields.py",
        "ResolvedSpec.spool_dir, given to the PredictionLog by keelwork.service.assembly"),
    "storage.log_inputs": (
        "keelwork.service.gateway.dispatch",
        "tests/integration/test_spec_storage_server_fields.py"),
    "storage.max_rejected_input_bytes": (
        "keelwork.service.gateway.dispatch", "tests/unit/service/gateway/test_refused_requests.py"),
    # ------------------------------------------------------------ server
    "server.host": (
        "keelwork.interfaces.cli.serve_cmd",
        "tests/integration/test_spec_storage_server_fields.py"),
    "server.port": (
        "keelwork.interfaces.cli.serve_cmd",
        "tests/integration/test_spec_storage_server_fields.py"),
    "server.workers": (
        "keelwork.interfaces.cli.serve_cmd", "tests/integration/test_serve_workers.py",
        "checked by keelwork.service.serving; the work done once runs under "
        "keelwork.service.leases"),
    "server.replicas.min": (
        "keelwork.adapters.engines.ray_serve",
        "tests/unit/adapters/engines/test_ray_serve_adapter.py",
        "read by keelwork.service.scale_out.replica_bounds for keel serve --engine ray: the "
        "gateway's replicas and each version deployment's (the default; not with "
        "--no-version-deployments) "
        "(keelwork.adapters.engines.ray_versions.version_options; "
        "tests/integration/test_serve_ray_versions.py reads them from Serve's status)"),
    "server.replicas.max": (
        "keelwork.adapters.engines.ray_serve",
        "tests/unit/adapters/engines/test_ray_serve_adapter.py",
        "Ray Serve's autoscaler bound (deployment_options; each version deployment's too, "
        "unless --no-version-deployments: ray_serve.replica_count, ray_versions.version_options)"),
    "server.replicas.target_ongoing_requests": (
        "keelwork.adapters.engines.ray_serve",
        "tests/unit/adapters/engines/test_ray_serve_adapter.py",
        "Ray Serve's autoscaling target (deployment_options; each version deployment's "
        "too, unless --no-version-deployments: ray_serve.replica_count, "
        "ray_versions.version_options)"),
    "server.tracing": (
        "keelwork.interfaces.http.tracing", "tests/unit/interfaces/http/test_app.py",
        "installed by keelwork.interfaces.http.app"),
    # ------------------------------------------------------------ features
    "features.modules": (
        "keelwork.adapters.data.feature_modules", "tests/unit/interfaces/cli/test_features_cmd.py",
        "imported so their transforms register"),
    "features.event_timestamp": (
        "keelwork.core.features.pit", "tests/unit/core/test_features.py"),
    "features.entities[].name": (
        "keelwork.core.features.online", "tests/integration/test_feature_store.py",
        "the online store's table of the entity"),
    "features.entities[].key": (
        "keelwork.core.features.online", "tests/integration/test_feature_store.py"),
    "features.entities[].timestamp": (
        "keelwork.core.features.pit", "tests/integration/test_feature_store.py"),
    "features.entities[].features": (
        "keelwork.core.features.online", "tests/integration/test_feature_store.py"),
    "features.entities[].source": (
        "keelwork.service.features", "tests/integration/test_feature_store.py",
        "materialised into the online store"),
    "features.entities[].ttl": (
        "keelwork.core.features.online", "tests/integration/test_feature_store.py"),
    "features.entities[].prefix": (
        "keelwork.core.features.online", "tests/unit/core/test_features.py",
        "EntitySpec.outputs"),
    "features.transforms[].name": (
        "keelwork.core.features.pipeline", "tests/unit/core/test_features.py",
        "names the step in errors"),
    "features.transforms[].fn": (
        "keelwork.core.features.pipeline", "tests/unit/core/test_features.py"),
    "features.transforms[].inputs": (
        "keelwork.core.features.pipeline", "tests/unit/core/test_features.py"),
    "features.transforms[].output": (
        "keelwork.core.features.pipeline", "tests/unit/core/test_features.py"),
    "features.transforms[].params": (
        "keelwork.core.features.pipeline", "tests/unit/core/test_features.py"),
    # ------------------------------------------------------------ flags
    "flags[].name": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].model": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].enabled": (
        "keelwork.core.flags", "tests/unit/core/test_flags.py"),
    "flags[].rules[].tenants": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].rules[].headers": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].rules[].percentage": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].rules[].serve": (
        "keelwork.core.flags", "tests/integration/test_flag_routing.py"),
    "flags[].default": (
        "keelwork.core.flags", "tests/unit/core/test_flags.py"),
    "flags[].sticky_header": (
        "keelwork.core.flags", "tests/integration/test_spec_header_fields.py"),
    # ------------------------------------------------------------ explain
    "explain.enabled": (
        "keelwork.interfaces.http.explain_routes", "tests/integration/test_journey_explain.py",
        "false: POST :explain answers 404"),
    "explain.max_evaluations": (
        "keelwork.service.explain", "tests/integration/test_journey_explain.py",
        "the permutation explainer's model rows per instance"),
    "explain.timeout_ms": (
        "keelwork.service.explain", "tests/integration/test_journey_explain.py",
        "504 past it"),
    "explain.background_rows": (
        "keelwork.service.explain", "tests/integration/test_journey_explain.py",
        "the sample of monitoring.reference"),
    "explain.budget_per_minute": (
        "keelwork.service.explain", "tests/integration/test_journey_explain.py",
        "429 past it"),
    "explain.max_stored": (
        "keelwork.adapters.stores.explanation_store", "tests/unit/service/test_explain_budget.py",
        "the explanations table's bound"),
}
