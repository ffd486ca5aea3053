"""values.schema.json refuses bad values (Helm validates it on every install,
upgrade and render); a few rules that JSON Schema cannot express are refused
by the templates. values.yaml documents every field it sets."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from identity_runtime import mesh
from tests.support.chart import CHART, PRODUCTION_EXAMPLE, VALUES_FILES, render_values, values_of

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def service(name: str, **fields: Any) -> dict[str, Any]:
    return {"services": {name: fields}}


REFUSED_BY_SCHEMA = {
    "another region": ({"residency": {"region": "ap-southeast-3"}}, "/residency/region"),
    "a zone outside id-jkt-1": (
        {"residency": {"zones": ["id-jkt-1a", "sg-sin-1a"]}},
        "/residency/zones/1",
    ),
    "an unknown top-level key": ({"replicaCount": 3}, "'replicaCount' not allowed"),
    "an unknown service": ({"services": {"ocr": {"replicas": 1}}}, "'ocr' not allowed"),
    "a typo in a service field": (service("kyc-tier", replica=3), "'replica' not allowed"),
    "zero replicas": (service("audit", replicas=0), "/services/audit/replicas"),
    "no CPU limit": (
        service(
            "embedding",
            resources={
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"cpu": None, "memory": "2Gi"},
            },
        ),
        "missing property 'cpu'",
    ),
    "a quantity that is not one": (
        service("matching", resources={"limits": {"memory": "lots"}}),
        "/services/matching/resources/limits/memory",
    ),
    "the latest tag": ({"global": {"image": {"tag": "latest"}}}, "/global/image/tag"),
    "a malformed digest": (
        {"global": {"image": {"digest": "sha256:1234"}}},
        "/global/image/digest",
    ),
    "pull policy Never": (
        {"global": {"image": {"pullPolicy": "Never"}}},
        "/global/image/pullPolicy",
    ),
    "running as root": (
        {"global": {"podSecurityContext": {"runAsUser": 0}}},
        "/global/podSecurityContext/runAsUser",
    ),
    "an unknown environment": ({"global": {"environment": "staging"}}, "/global/environment"),
    "a lower-case setting name": (
        service("kyc-tier", config={"database_pool_size": 5}),
        "invalid propertyName 'database_pool_size'",
    ),
    "a prefixed setting name in secretEnv": (
        service("kyc-tier", secretEnv={"KYC-TIER-X": "database"}),
        "invalid propertyName 'KYC-TIER-X'",
    ),
    "an object as a setting value": (
        service("kyc-tier", config={"DATABASE_POOL_SIZE": {"value": 5}}),
        "/services/kyc-tier/config/DATABASE_POOL_SIZE",
    ),
    "a model volume without a source": (
        service("embedding", models={"enabled": True}),
        "/services/embedding/models/volume",
    ),
    "a relative model path": (
        service("liveness", models={"mountPath": "models"}),
        "/services/liveness/models/mountPath",
    ),
    "a startup probe that never fails": (
        service("capture-quality", probes={"startup": {"failureThreshold": 0}}),
        "/services/capture-quality/probes/startup/failureThreshold",
    ),
    "a CPU target above 100%": (
        service("kyc-tier", autoscaling={"targetCPUUtilizationPercentage": 150}),
        "/services/kyc-tier/autoscaling/targetCPUUtilizationPercentage",
    ),
    "a percentage PDB without %": (
        service("kyc-tier", pdb={"maxUnavailable": "50"}),
        "/services/kyc-tier/pdb/maxUnavailable",
    ),
    "a PDB with no bound": (
        service("kyc-tier", pdb={"enabled": True, "maxUnavailable": None}),
        "/services/kyc-tier/pdb",
    ),
    "Triton off the GPU pool": (
        {
            "triton": {
                "enabled": True,
                "nodeSelector": None,
                "modelRepository": {"volume": {"emptyDir": {}}},
            }
        },
        "missing property 'nodeSelector'",
    ),
    "Triton without a GPU": ({"triton": {"gpus": 0}}, "/triton/gpus"),
    "a Triton client that is not a service": (
        {"triton": {"clients": {"ocr": ["TRITON_URL"]}}},
        "invalid propertyName 'ocr'",
    ),
    "an Ingress without hosts": (
        {"gateway": {"ingress": {"enabled": True, "hosts": []}}},
        "/gateway/ingress/hosts",
    ),
    "an unknown Service type": (
        {"gateway": {"service": {"type": "ExternalName"}}},
        "/gateway/service/type",
    ),
    "an OTLP endpoint with a path": (
        {"observability": {"otlpEndpoint": "http://collector:4317/v1/traces"}},
        "/observability/otlpEndpoint",
    ),
    "a scrape interval without unit": (
        {"observability": {"serviceMonitor": {"interval": "30"}}},
        "/observability/serviceMonitor/interval",
    ),
    "a secret without a key": (
        {"secrets": {"database": {"name": "identity-database", "key": None}}},
        "missing property 'key'",
    ),
    "no database secret": ({"secrets": {"database": None}}, "missing property 'database'"),
    "a bad DNS name for a Secret": (
        {"secrets": {"apiKeyPepper": {"name": "Pepper_Secret", "key": "pepper"}}},
        "/secrets/apiKeyPepper/name",
    ),
    "an egress rule without ports": (
        {"networkPolicy": {"otlp": {"to": [], "ports": []}}},
        "/networkPolicy/otlp/ports",
    ),
    "a zone spread policy that does not exist": (
        {"topologySpread": {"zones": {"whenUnsatisfiable": "Never"}}},
        "/topologySpread/zones/whenUnsatisfiable",
    ),
    "migrations that may retry forever": (
        {"migrations": {"backoffLimit": 100}},
        "/migrations/backoffLimit",
    ),
}


@pytest.mark.parametrize(
    ("overrides", "where"), REFUSED_BY_SCHEMA.values(), ids=REFUSED_BY_SCHEMA.keys()
)
def test_schema_refuses(overrides: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render_values(overrides)


REFUSED_BY_TEMPLATES = {
    "minReplicas above maxReplicas": (
        service("kyc-tier", autoscaling={"minReplicas": 5, "maxReplicas": 3}),
        "minReplicas 5 is above maxReplicas 3",
    ),
    "a PDB that blocks every drain": (
        service("audit", pdb={"enabled": True, "maxUnavailable": None, "minAvailable": 2}),
        "services.audit.pdb.minAvailable 2 would block every node drain",
    ),
    "Triton with two model sources": (
        {
            "triton": {
                "enabled": True,
                "modelRepository": {
                    "volume": {"emptyDir": {}},
                    "sync": {"enabled": True, "source": "m:b"},
                },
            }
        },
        "set either volume or sync.enabled, not both",
    ),
    "Triton without models": ({"triton": {"enabled": True}}, "set volume"),
    "a sync without a source": (
        {"triton": {"enabled": True, "modelRepository": {"sync": {"enabled": True}}}},
        "sync.source is required",
    ),
    "migrations without a database Secret name": (
        {"secrets": {"database": {"name": ""}}},
        "secrets.database",
    ),
}


@pytest.mark.parametrize(
    ("overrides", "message"), REFUSED_BY_TEMPLATES.values(), ids=REFUSED_BY_TEMPLATES.keys()
)
def test_templates_refuse(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render_values(overrides)


ACCEPTED = {
    "a digest": {"global": {"image": {"digest": "sha256:" + "a" * 64}}},
    "percentages in a PDB": service("kyc-tier", pdb={"maxUnavailable": "25%"}),
    "minAvailable instead of maxUnavailable": service(
        "kyc-tier", pdb={"maxUnavailable": None, "minAvailable": 1}
    ),
    "numbers and booleans as setting values": service("kyc-tier", config={"DATABASE_POOL_SIZE": 7}),
    "an OTLP host:port": {"observability": {"otlpEndpoint": "otel-collector.observability:4317"}},
    "extra secrets for other components": {
        "secrets": {"dukcapil": {"name": "dukcapil-credentials", "key": "token"}}
    },
    "an image volume of models": service(
        "embedding",
        models={"enabled": True, "volume": {"image": {"reference": "registry.example/models:1"}}},
    ),
}


@pytest.mark.parametrize("overrides", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_schema_accepts(overrides: dict[str, Any]) -> None:
    assert render_values(overrides)


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_shipped_values_files_pass_the_schema(values_name: str) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.merge_values(values_of(values_name)))


def test_schema_knows_exactly_the_mesh_services() -> None:
    names = [s.name for s in mesh.SERVICES]
    assert sorted(SCHEMA["properties"]["services"]["properties"]) == sorted(names)
    assert sorted(SCHEMA["properties"]["services"]["required"]) == sorted(names)
    clients = SCHEMA["properties"]["triton"]["properties"]["clients"]["propertyNames"]["enum"]
    assert sorted(clients) == sorted(names)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert sorted(defaults["services"]) == sorted(names)


def test_schema_refuses_unknown_keys_everywhere() -> None:
    """Every object the schema describes with properties is closed, so typos fail."""
    open_objects = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and node.get("additionalProperties") is not False
            ):
                open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}/{index}")

    walk(SCHEMA, "")
    assert not open_objects


def test_values_yaml_documents_every_field() -> None:
    """Top-level sections and their fields carry a comment of their own; deeper
    keys are covered by a documented ancestor. The other services and the
    gateway share the fields documented once on services.capture-quality."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    shared = set(yaml.safe_load((CHART / "values.yaml").read_text())["services"]["capture-quality"])
    stack: list[tuple[int, str, bool]] = []
    undocumented = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k, _ in stack] + [key]
        own = " #" in line or (index > 0 and lines[index - 1].strip().startswith("#"))
        inherited = bool(stack) and stack[-1][2]
        shared_field = (path[0] == "services" and len(path) >= 3 and path[2] in shared) or (
            path[0] == "gateway" and len(path) >= 2 and path[1] in shared
        )
        if len(path) <= 2:
            documented = own or shared_field
        else:
            documented = own or inherited or shared_field
        if not documented:
            undocumented.append(f"values.yaml:{index + 1}: {'.'.join(path)}")
        stack.append((indent, key, documented))
    assert not undocumented, "\n".join(undocumented)


def test_production_example_is_what_the_issue_asks_for() -> None:
    values = yaml.safe_load(PRODUCTION_EXAMPLE.read_text())
    assert values["residency"] == {
        "region": "id-jkt-1",
        "zones": ["id-jkt-1a", "id-jkt-1b", "id-jkt-1c"],
        # The object store's region is declared: production refuses an undeclared one.
        "endpointRegions": {"s3.id-jkt-1.example.co.id": "id-jkt-1"},
    }
    assert values["triton"]["enabled"] is True and values["triton"]["gpus"] >= 1
    # External PostgreSQL: no database in the chart, egress pinned to its network.
    assert values["networkPolicy"]["backends"]["database"]["to"]
    for name in (s.name for s in mesh.SERVICES):
        autoscaling = values["services"][name]["autoscaling"]
        assert autoscaling["minReplicas"] >= 3, f"{name}: one replica per zone at least"
