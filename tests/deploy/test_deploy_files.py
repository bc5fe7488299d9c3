"""Structural checks of deploy/ against the code it deploys.

The tools in deploy/check validate each file's syntax; these tests check what
no tool knows: that every setting named in deploy/ is a real field of
``server.config.Settings``, that every metric a dashboard or alert reads is
exported by ``server.metrics`` or listed as planned in docs/operations.md,
that Kubernetes objects carry probes, a restricted security context and no
inline secret, and that the files agree with each other (service names,
upstreams, scrape targets, heartbeat and proxy timeouts).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import generate_latest

from server.config import Settings
from server.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"
K8S_VERSION = "1.30.0"

SETTING_NAMES = {f"CARNET_{name.upper()}" for name in Settings.model_fields}
MANDATED_PLANNED = {
    "carnet_delivery_seconds",
    "carnet_undelivered_envelopes",
}
SERIES_SUFFIXES = ("", "_bucket", "_sum", "_count", "_created", "_total")
SECRET_WORDS = re.compile(r"(PASSWORD|SECRET|TOKEN|MONGODB_URI|PRIVATE|API_KEY)", re.I)


def load_yaml_docs(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def load_yaml(path: Path) -> Any:
    docs = load_yaml_docs(path)
    assert len(docs) == 1, f"{path} should hold one YAML document"
    return docs[0]


def exported_metrics() -> set[str]:
    text = generate_latest(Metrics().registry).decode()
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    return {n for n in names if not n.endswith("_created")}


def planned_metrics() -> set[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("### Planned metrics", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `(carnet_[a-z0-9_]+)` \|", section, re.M))


def known_series() -> set[str]:
    return {m + s for m in exported_metrics() | planned_metrics() for s in SERIES_SUFFIXES}


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bcarnet_[a-z0-9_]+\b", expr))


def k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            yield path, doc


def k8s_by_kind(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in k8s_objects() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_by_kind("Deployment")["spec"]["template"]["spec"]
    return spec


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return data


# --- metrics: dashboard, alerts, planned list --------------------------------


def test_planned_metrics_listed_and_not_yet_exported() -> None:
    planned = planned_metrics()
    assert MANDATED_PLANNED <= planned
    assert not planned & exported_metrics(), "a planned metric is exported: move it in the docs"


def test_exported_metrics_documented() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("### Metrics (exported today", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `(carnet_[a-z0-9_]+)` \|", section, re.M))
    assert documented == exported_metrics()


def test_alert_rules_use_known_metrics() -> None:
    rules = [
        r for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"] for r in g["rules"]
    ]
    assert rules
    known = known_series()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']} reads unknown metrics {unknown}"
        assert metric_names(rule["expr"]) or "up{" in rule["expr"], rule["alert"]


def test_alerts_cover_planned_metrics() -> None:
    exprs = " ".join(
        r["expr"]
        for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
        for r in g["rules"]
    )
    for name in planned_metrics():
        assert name in exprs, f"no alert reads the planned metric {name}"


def test_dashboard_uses_known_metrics_and_provisioned_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "carnet.json").read_text())
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    uid = datasource["datasources"][0]["uid"]
    known = known_series()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    read: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert not names - known, f"{panel['title']} reads unknown metrics {names - known}"
            read |= names
    base = exported_metrics() | planned_metrics()
    shown = {m for m in base if any(n in {m + s for s in SERIES_SUFFIXES} for n in read)}
    assert shown == base, f"no dashboard panel for {base - shown}"


def test_scraped_job_label_is_read_as_exported_job() -> None:
    """Prometheus renames a scraped ``job`` label to ``exported_job``."""
    metrics = Metrics()
    metrics.retention_last_success.labels("probe").set(1)
    text = generate_latest(metrics.registry).decode()
    with_job = set(re.findall(r"^(carnet_[a-z0-9_]+)\{[^}]*\bjob=", text, re.M))
    assert "carnet_retention_last_success_timestamp_seconds" in with_job
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "carnet.json").read_text())
    exprs = [
        r["expr"]
        for g in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
        for r in g["rules"]
    ] + [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for expr in exprs:
        if metric_names(expr) & with_job:
            assert "exported_job" in expr, expr
            assert not re.search(r"(?<!exported_)\bjob\b", expr), expr


def test_dashboard_provider_points_at_mounted_folder() -> None:
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "carnet.yaml")
    path = provider["providers"][0]["options"]["path"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts


def test_hpa_scales_on_an_exported_metric() -> None:
    hpa = k8s_by_kind("HorizontalPodAutoscaler")
    names = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
    assert names == {"carnet_connected_devices"}
    assert names <= exported_metrics()


# --- settings named anywhere in deploy/ are real ------------------------------


def test_configmap_keys_are_settings() -> None:
    data = k8s_by_kind("ConfigMap")["data"]
    assert set(data) <= SETTING_NAMES, set(data) - SETTING_NAMES
    assert data["CARNET_PUBLIC_URL"].startswith("https://")
    assert data["CARNET_TRUSTED_PROXY_HOPS"] == "1"
    json.loads(data["CARNET_ALLOWED_ORIGINS"])


def test_compose_environment_keys_are_settings() -> None:
    for name, service in compose()["services"].items():
        if not name.startswith("carnet-"):
            continue
        env = service["environment"]
        assert set(env) <= SETTING_NAMES, set(env) - SETTING_NAMES
        assert env["CARNET_TRUSTED_PROXY_HOPS"] == "1"


def test_dockerfile_and_unit_environment_keys_are_settings() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    unit = (DEPLOY / "systemd" / "carnet.service").read_text()
    names = set(re.findall(r"\b(CARNET_[A-Z_]+)=", dockerfile + unit))
    assert names and names <= SETTING_NAMES, names - SETTING_NAMES


def test_operations_doc_lists_every_setting_with_its_default() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(CARNET_[A-Z_]+)` \| ([^|]+) \|", text, re.M))
    assert set(rows) == SETTING_NAMES
    for name, field in Settings.model_fields.items():
        default = field.default
        cell = rows[f"CARNET_{name.upper()}"].strip()
        if default is None:
            continue
        if isinstance(default, tuple):
            expected = "`[]`" if not default else f"`{json.dumps(list(default))}`"
        elif isinstance(default, float) and default.is_integer():
            expected = f"`{int(default)}`"
        else:
            expected = f"`{default}`"
        assert cell == expected, f"CARNET_{name.upper()}: doc says {cell}, code says {expected}"


# --- Kubernetes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc"),
    list(k8s_objects()),
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_k8s_object_matches_schema(path: Path, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_examples() -> None:
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == {f for f in files if ".example." not in f}


def test_secrets_only_in_marked_examples() -> None:
    for path, doc in k8s_objects():
        if doc["kind"] == "Secret":
            assert ".example." in path.name
            assert "EXAMPLE ONLY" in path.read_text()
            for value in doc.get("stringData", {}).values():
                assert "CHANGE-ME" in value


def test_deployment_probes_drain_and_security() -> None:
    spec = pod_spec()
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # preStop, then Carnet's own drain (aiohttp shutdown_timeout=10 s) and the
    # database client's close must fit in the grace period.
    assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 10 + 15
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/carnet"} <= mounts  # noqa: S108
    assert spec["automountServiceAccountToken"] is False


def test_no_inline_secret_values_in_k8s() -> None:
    for path, doc in k8s_objects():
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for env in container.get("env", []):
                    if SECRET_WORDS.search(env["name"]):
                        assert "value" not in env, f"{path.name}: {env['name']} inline"
                        assert "secretKeyRef" in env["valueFrom"], env["name"]
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if SECRET_WORDS.search(k)], path.name


def test_ingress_websocket_timeouts_exceed_heartbeat() -> None:
    ingress = k8s_by_kind("Ingress")
    notes = ingress["metadata"]["annotations"]
    heartbeat = Settings.model_fields["heartbeat_seconds"].default
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(notes[f"nginx.ingress.kubernetes.io/{key}"]) > 2 * heartbeat
    paths = {p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert "/metrics" not in paths and "/" not in paths
    assert ingress["spec"]["tls"][0]["secretName"]


def test_selectors_match_pod_labels() -> None:
    labels = k8s_by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        spec = k8s_by_kind(kind)["spec"]
        selector = spec.get("selector") or spec["podSelector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind


# --- compose ----------------------------------------------------------------------


def test_compose_matches_compose_spec_schema() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.validate(compose(), schema)


def test_compose_replica_set_and_nodes() -> None:
    services = compose()["services"]
    members = sorted(n for n in services if re.fullmatch(r"mongo-\d", n))
    assert members == ["mongo-1", "mongo-2", "mongo-3"]
    for name in members:
        assert services[name]["image"] == "mongo:7"
        assert "--replSet" in services[name]["command"]
    init = services["mongo-init"]
    assert "rs.initiate" in (DEPLOY / "mongo" / "init-replica-set.js").read_text()
    assert set(init["depends_on"]) == set(members)
    nodes = sorted(n for n in services if n.startswith("carnet-"))
    assert nodes == ["carnet-1", "carnet-2"]
    for name in nodes:
        node = services[name]
        uri = node["environment"]["CARNET_MONGODB_URI"]
        assert "replicaSet=rs0" in uri and all(f"{m}:27017" in uri for m in members)
        assert node["read_only"] is True
        assert node["stop_signal"] == "SIGTERM"
        assert node["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"


def test_compose_bind_mounts_exist_and_secrets_are_ignored_by_git() -> None:
    data = compose()
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
    for secret in data["secrets"].values():
        path = DEPLOY / secret["file"]
        assert not path.exists() or _ignored(path), f"{path} would be committed"
        assert _ignored(path), f"{path} is not ignored by git"
    for env_file in (".env", "smtp.env"):
        assert _ignored(DEPLOY / env_file), env_file
        assert (DEPLOY / f"{env_file}.example").is_file(), env_file


def test_compose_required_variables_are_in_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert variables <= defined, variables - defined
    assert (DEPLOY / "smtp.env.example").is_file()


def test_tracked_files_hold_no_private_key() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        path = ROOT / name
        if path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text(errors="replace"), name


def _ignored(path: Path) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(path.relative_to(ROOT))], cwd=ROOT, check=False
    )
    return result.returncode == 0


# --- proxy, scrape targets, image, unit ----------------------------------------


def test_nginx_upstream_and_prometheus_targets_are_the_compose_nodes() -> None:
    nodes = {f"{n}:8080" for n in compose()["services"] if n.startswith("carnet-")}
    conf = (DEPLOY / "nginx" / "carnet.conf").read_text()
    upstream = re.search(r"upstream carnet \{(.*?)\}", conf, re.S)
    assert upstream is not None
    assert set(re.findall(r"^\s*server (\S+)", upstream.group(1), re.M)) == nodes
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    (carnet,) = [job for job in scrape if job["job_name"] == "carnet"]
    assert set(carnet["static_configs"][0]["targets"]) == nodes


def test_nginx_websocket_tls_and_headers() -> None:
    conf = (DEPLOY / "nginx" / "carnet.conf").read_text()
    for needle in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $carnet_connection;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "add_header Strict-Transport-Security",
        "listen 443 ssl;",
    ):
        assert needle in conf, needle
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", conf)
    assert read_timeout is not None
    assert int(read_timeout.group(1)) > 2 * Settings.model_fields["heartbeat_seconds"].default
    max_body = re.search(r"client_max_body_size (\d+)m;", conf)
    assert max_body is not None
    assert (
        int(max_body.group(1)) * 1024 * 1024 >= Settings.model_fields["max_request_bytes"].default
    )


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    assert len(stages) >= 2 and stages[0][1] == "builder"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD \[\"python\".*/healthz", text, re.M)
    assert re.search(r'^VOLUME \["/var/lib/carnet", "/tmp"\]', text, re.M)
    for line in re.findall(r"^(?:ENV|ARG) .*(?:\n\s+.*)*", text, re.M):
        assert not SECRET_WORDS.search(line), line
    copied = set(re.findall(r"^COPY (\w+) \./", text, re.M))
    with (ROOT / "pyproject.toml").open("rb") as f:
        include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    assert packages <= copied, f"the image misses packages {packages - copied}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for package in packages:
        assert f"!{package}/" in ignore


def test_systemd_unit_hardening_and_drain() -> None:
    unit = (DEPLOY / "systemd" / "carnet.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    expected = {
        "User": "carnet",
        "StateDirectory": "carnet",
        "KillSignal": "SIGTERM",
        "KillMode": "mixed",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }
    for key, value in expected.items():
        assert settings.get(key) == value, key
    assert int(settings["TimeoutStopSec"]) >= 30
    assert "Environment=CARNET_DATA_DIR=/var/lib/carnet" in unit
    assert settings["ExecStart"].endswith("carnet serve")
