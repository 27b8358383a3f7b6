"""deploy/k8s: every manifest valid against the Kubernetes schemas (kubernetes-validate, strict),
the RabbitMQ operator objects well-formed, and a Deployment per service of the registry that
runs it, probes it and mounts what it shares."""
import copy
import re
from pathlib import Path

import pytest
import yaml

from crmhub.runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"
CRD_GROUP = "rabbitmq.com"
HPA_SERVICES = {"gateway", "contacts", "telephony"}
# Who reads or writes each shared directory (see test_compose.SHARED_DIRS for where in the code).
SHARED_DIRS = {
    "RECORDINGS_DIR": {"telephony", "gateway"},
    "EXCHANGE_DIR": {"gateway", "catalog"},
    "EMAIL_ATTACHMENTS_DIR": {"email"},
}
# Deployment variables that only build AMQP_URI ($(AMQP_USER) references).
HELPER_VARIABLES = {"AMQP_USER", "AMQP_PASSWORD"}
# Required spec fields of the operators' kinds (rabbitmq.com/v1beta1), beyond apiVersion/kind/metadata.
CRD_REQUIRED = {
    "RabbitmqCluster": ["replicas", "image", "rabbitmq"],
    "Vhost": ["name", "rabbitmqClusterReference"],
    "User": ["rabbitmqClusterReference", "importCredentialsSecret"],
    "Permission": ["vhost", "userReference", "permissions", "rabbitmqClusterReference"],
    "Policy": ["name", "vhost", "pattern", "definition", "rabbitmqClusterReference"],
}


def _manifests():
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((path.name, doc))
    return found


MANIFESTS = _manifests()


def objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in MANIFESTS if doc["kind"] == kind}


def config_variables() -> set[str]:
    names = set()
    for line in (ROOT / "deploy" / "config.yaml").read_text(encoding="utf-8").splitlines():
        names.update(re.findall(r"\$\{([A-Z0-9_]+):", re.sub(r"(^|\s)#.*$", "", line)))
    return names


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def deployment(service: str) -> dict:
    found = objects("Deployment")
    assert f"crmhub-{service}" in found, f"no Deployment crmhub-{service}"
    return found[f"crmhub-{service}"]


def port_number(spec: dict, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container(spec)["ports"] if p.get("name") == port)


def validate(doc: dict) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is missing: it is a test extra (pip install -e '.[test]')")
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# -- kustomize and schemas ------------------------------------------------------------------------

def test_kustomization_lists_every_manifest_and_only_those():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == on_disk
    assert kustomization["namespace"] == objects("Namespace").popitem()[0]
    assert [i["name"] for i in kustomization["images"]] == ["crmhub"]


@pytest.mark.parametrize("filename,doc", MANIFESTS,
                         ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in MANIFESTS])
def test_manifest_validates_against_the_kubernetes_schema(filename, doc):
    if doc["apiVersion"].split("/")[0] == CRD_GROUP:
        pytest.skip(f"{doc['kind']} is a custom resource: checked by test_rabbitmq_operator_objects_*")
    validate(doc)


def test_schema_validation_refuses_a_misspelt_field():
    """The schema check has teeth: strict mode refuses a field Kubernetes does not know."""
    import kubernetes_validate

    broken = copy.deepcopy(deployment("gateway"))
    container(broken)["readinesProbe"] = container(broken)["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = copy.deepcopy(deployment("gateway"))
    container(broken)["resources"]["limits"]["memory"] = ["768Mi"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_only_the_rabbitmq_operator_kinds_lack_a_schema():
    custom = {doc["kind"] for _, doc in MANIFESTS if doc["apiVersion"].split("/")[0] == CRD_GROUP}
    assert custom <= set(CRD_REQUIRED)
    versions = {doc["apiVersion"] for _, doc in MANIFESTS if doc["kind"] in CRD_REQUIRED}
    assert versions == {"rabbitmq.com/v1beta1"}


# -- the RabbitMQ operators' objects ------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(CRD_REQUIRED))
def test_rabbitmq_operator_objects_have_their_required_fields(kind):
    found = objects(kind)
    assert found, f"no {kind}"
    cluster = next(iter(objects("RabbitmqCluster")))
    for name, doc in found.items():
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, name
        missing = [field for field in CRD_REQUIRED[kind] if field not in doc["spec"]]
        assert not missing, f"{kind}/{name} lacks {missing}"
        if kind != "RabbitmqCluster":
            assert doc["spec"]["rabbitmqClusterReference"] == {"name": cluster}


def test_rabbitmq_cluster_has_three_nodes_and_prometheus():
    (cluster,) = objects("RabbitmqCluster").values()
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert spec["image"].startswith("rabbitmq:3.13")
    assert "rabbitmq_prometheus" in spec["rabbitmq"]["additionalPlugins"]
    assert "default_queue_type" not in spec["rabbitmq"].get("additionalConfig", ""), (
        "a default queue type would turn the RPC queues crmhub keeps classic into quorum queues")


@pytest.mark.parametrize("user", [*SERVICES, "ops"])
def test_rabbitmq_user_per_service_with_its_secret_and_permission(user):
    users, permissions, secrets = objects("User"), objects("Permission"), objects("Secret")
    (vhost,) = objects("Vhost").values()
    spec = users[f"crmhub-{user}"]["spec"]
    secret = secrets[spec["importCredentialsSecret"]["name"]]
    assert set(secret["stringData"]) == {"username", "password"}
    granted = [p["spec"] for p in permissions.values()
               if p["spec"]["userReference"]["name"] == f"crmhub-{user}"]
    assert len(granted) == 1
    assert granted[0]["vhost"] == vhost["spec"]["name"]
    assert set(granted[0]["permissions"]) == {"configure", "write", "read"}


def test_policy_applies_to_the_crmhub_vhost_queues():
    (vhost,) = objects("Vhost").values()
    for policy in objects("Policy").values():
        spec = policy["spec"]
        assert spec["vhost"] == vhost["spec"]["name"]
        assert spec["applyTo"] in ("queues", "quorum_queues", "classic_queues", "exchanges", "all")
        for queue in ("evt-contacts-contact_created--deals.on_contact_created", "crmhub.dlq.deals",
                      "crmhub.retry.1000ms"):
            assert re.search(spec["pattern"], queue), queue
        assert not re.search(spec["pattern"], "rpc-contacts")


# -- the services -----------------------------------------------------------------------------------

@pytest.mark.parametrize("service", list(SERVICES))
def test_deployment_runs_the_service_with_the_crmhub_image(service):
    spec = deployment(service)
    main = container(spec)
    assert main["args"] == ["run", "--service", service]
    assert "command" not in main, "the image's ENTRYPOINT is crmhub"
    assert main["image"].split(":")[0] == "crmhub"
    labels = spec["spec"]["template"]["metadata"]["labels"]
    assert spec["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == service


@pytest.mark.parametrize("service", list(SERVICES))
def test_deployment_probes_health_on_the_ops_port(service):
    """Readiness asks /health (the database too); liveness only /live, so a database outage
    takes pods out of rotation instead of restarting them all."""
    spec = deployment(service)
    main = container(spec)
    assert any(p["containerPort"] == 9100 for p in main["ports"])
    for probe, path in (("readinessProbe", "/health"), ("livenessProbe", "/live"),
                        ("startupProbe", "/health")):
        get = main[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(spec, get["port"]) == 9100, probe
    annotations = spec["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9100"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", list(SERVICES))
def test_deployment_is_bounded_and_locked_down(service):
    spec = deployment(service)
    pod, main = spec["spec"]["template"]["spec"], container(spec)
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(main["resources"][bound]), bound
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("service", list(SERVICES))
def test_deployment_environment_comes_from_the_configmap_secret_and_own_rabbitmq_user(service):
    main = container(deployment(service))
    sources = {(s.get("configMapRef") or s.get("secretRef"))["name"] for s in main["envFrom"]}
    assert sources == {"crmhub-env", "crmhub-secrets"}
    assert "crmhub-env" in objects("ConfigMap") and "crmhub-secrets" in objects("Secret")
    env = {e["name"]: e for e in main["env"]}
    for helper in HELPER_VARIABLES:
        assert env[helper]["valueFrom"]["secretKeyRef"]["name"] == f"crmhub-amqp-{service}"
    names = list(env)
    assert names.index("AMQP_URI") > max(names.index(h) for h in HELPER_VARIABLES), (
        "$(VAR) only expands variables defined before it")
    assert re.fullmatch(r"amqp://\$\(AMQP_USER\):\$\(AMQP_PASSWORD\)@rabbitmq:5672/crmhub",
                        env["AMQP_URI"]["value"])
    unknown = set(env) - HELPER_VARIABLES - config_variables()
    assert not unknown, f"deploy/config.yaml reads no {sorted(unknown)}"


def test_gateway_listens_on_all_interfaces_behind_its_service():
    spec = deployment("gateway")
    env = {e["name"]: e.get("value") for e in container(spec)["env"]}
    assert env["GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    service = objects("Service")["crmhub-gateway"]
    assert service["spec"]["selector"].items() <= spec["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port_number(spec, port["targetPort"]) == 8000


def test_metrics_service_selects_every_service_pod_and_not_the_job():
    selector = objects("Service")["crmhub-metrics"]["spec"]["selector"]
    assert objects("Service")["crmhub-metrics"]["spec"]["clusterIP"] == "None"
    for service in SERVICES:
        assert selector.items() <= deployment(service)["spec"]["template"]["metadata"]["labels"].items()
    job_labels = objects("Job")["crmhub-migrate"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()


@pytest.mark.parametrize("variable", list(SHARED_DIRS))
def test_shared_directories_are_one_read_write_many_claim(variable):
    path = objects("ConfigMap")["crmhub-env"]["data"][variable]
    claims = {}
    for name, spec in objects("Deployment").items():
        pod = spec["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container(spec)["volumeMounts"]:
            if mount["mountPath"] == path:
                claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
                claims[name.removeprefix("crmhub-")] = claim
    assert set(claims) == SHARED_DIRS[variable]
    assert len(set(claims.values())) == 1
    claim = objects("PersistentVolumeClaim")[next(iter(claims.values()))]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_configmap_and_secret_hold_only_what_the_config_reads():
    read = config_variables()
    configmap = objects("ConfigMap")["crmhub-env"]["data"]
    secret = objects("Secret")["crmhub-secrets"]["stringData"]
    assert not set(configmap) & set(secret)
    assert not (set(configmap) | set(secret)) - read, sorted((set(configmap) | set(secret)) - read)
    assert all(isinstance(value, str) for value in configmap.values())
    assert configmap["OPS_ADDRESS"] == "0.0.0.0:9100"
    assert configmap["QUEUE_TYPE"] == "quorum"
    assert configmap["LOG_FORMAT"] == "json"
    assert "DATABASE_URL" in secret and "API_KEYS" in secret


def test_secret_carries_every_secret_the_compose_file_passes():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    secret_like = re.compile(r"PASSWORD|SECRET|TOKEN|_SALT$|API_KEY")
    wanted = {k for k in compose["x-crmhub-env"] if secret_like.search(k)}
    assert wanted <= set(objects("Secret")["crmhub-secrets"]["stringData"])


# -- scaling, disruption, migration -------------------------------------------------------------------

def test_ingest_services_scale_horizontally():
    hpas = objects("HorizontalPodAutoscaler")
    targets = {}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        targets[ref["name"].removeprefix("crmhub-")] = hpa["spec"]
    assert set(targets) == HPA_SERVICES
    for service, spec in targets.items():
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
        assert "replicas" not in deployment(service)["spec"], f"{service}: the HPA owns replicas"


def test_every_multi_replica_service_has_a_disruption_budget():
    budgets = objects("PodDisruptionBudget").values()
    for service in SERVICES:
        spec = deployment(service)["spec"]
        several = service in HPA_SERVICES or spec.get("replicas", 1) > 1
        labels = spec["template"]["metadata"]["labels"]
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == (1 if several else 0), service


def test_migration_job_migrates_then_declares_as_the_ops_user():
    job = objects("Job")["crmhub-migrate"]
    main = job["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(main["command"] + main.get("args", []))
    assert 0 <= script.index("crmhub migrate") < script.index("crmhub declare")
    env = {e["name"]: e for e in main["env"]}
    assert env["AMQP_USER"]["valueFrom"]["secretKeyRef"]["name"] == "crmhub-amqp-ops"
    assert main["image"].split(":")[0] == "crmhub"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
