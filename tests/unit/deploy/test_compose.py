"""deploy/compose.yaml: valid against the Compose Specification's JSON schema, and a container
for every service of the registry that starts the way the runtime and the ops docs expect."""
import copy
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from crmhub.runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

# Which services read or write each shared directory (services/telephony/recordings.py and
# services/gateway/calls_api.py; services/catalog/jobs.py and services/gateway/onec_api.py;
# services/email/dependencies.py).
SHARED_DIRS = {
    "RECORDINGS_DIR": {"telephony", "gateway"},
    "EXCHANGE_DIR": {"gateway", "catalog"},
    "EMAIL_ATTACHMENTS_DIR": {"email"},
}
# Variables whose value in a container differs from config.yaml's default on purpose.
CONTAINER_OVERRIDES = {"AMQP_URI", "DATABASE_URL", "OPS_ADDRESS", "GATEWAY_ADDRESS", "QUEUE_TYPE",
                       "LOG_FORMAT", "CRMHUB_DATA_DIR", "RECORDINGS_DIR", "EXCHANGE_DIR",
                       "EMAIL_ATTACHMENTS_DIR", "TRACKING_BASE_URL"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_SALT$|API_KEY|_PASS$")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME:+alt} and $$ (a literal $).
COMPOSE_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def interpolate(value, env: dict):
    """What Compose makes of the file's strings, given these variables (none set: defaults)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?"):
            if not current:
                raise ValueError(f"${{{name}}} is required: {arg}")
            return current
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return "" if current is None else arg
        return current or ""

    return COMPOSE_VAR.sub(replace, value)


def config_defaults() -> dict[str, str]:
    """``{NAME: default}`` of every ${NAME:default} that deploy/config.yaml reads (comments
    left out: a commented-out setting reads nothing)."""
    found = {}
    for line in (DEPLOY / "config.yaml").read_text(encoding="utf-8").splitlines():
        code = re.sub(r"(^|\s)#.*$", "", line)
        for name, default in re.findall(r"\$\{([A-Z0-9_]+):([^}]*)\}", code):
            found[name] = default
    return found


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw):
    return interpolate(raw, {})


def test_compose_file_validates_against_the_compose_specification(raw, compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for document in (raw, compose):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(document)]
        assert not errors, errors


def test_the_schema_refuses_what_compose_would_refuse(raw):
    """The validation has teeth: a misspelt key or a wrong depends_on condition fails."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    broken = copy.deepcopy(raw)
    broken["services"]["contacts"]["restrat"] = "always"
    assert list(validator.iter_errors(broken))
    broken = copy.deepcopy(raw)
    broken["services"]["contacts"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert list(validator.iter_errors(broken))


def test_compose_specification_form_without_version(raw):
    assert "version" not in raw
    assert set(SERVICES) <= set(raw["services"])


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_runs_in_a_container_of_its_own(compose, name):
    service = compose["services"][name]
    assert service["command"] == ["run", "--service", name]
    assert "entrypoint" not in service, "the image's ENTRYPOINT is crmhub"
    assert service["image"] == "crmhub:latest"
    build = service["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_is_healthy_by_its_health_endpoint(compose, name):
    check = compose["services"][name]["healthcheck"]
    assert not check.get("disable")
    test = check["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert "http://127.0.0.1:9100/health" in command
    assert test[0] in ("CMD", "CMD-SHELL") and "curl" not in command, "no curl in python:3.11-slim"


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_waits_for_broker_database_and_migration(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["rabbitmq"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_environment_reaches_broker_database_and_ops_port(raw, compose, name):
    assert isinstance(raw["services"][name]["environment"], dict)
    env = compose["services"][name]["environment"]
    amqp = urlsplit(env["AMQP_URI"])
    assert (amqp.scheme, amqp.hostname, amqp.port) == ("amqp", "rabbitmq", 5672)
    assert amqp.username and amqp.password and amqp.path.strip("/")
    database = urlsplit(env["DATABASE_URL"])
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert database.username and database.password and database.path.strip("/")
    assert env["OPS_ADDRESS"] == "0.0.0.0:9100"
    assert env["QUEUE_TYPE"] == "quorum"
    assert env["LOG_FORMAT"] == "json"
    # The shared part comes from the x-crmhub-env anchor, whole.
    assert raw["x-crmhub-env"].items() <= raw["services"][name]["environment"].items()


def test_gateway_listens_on_all_interfaces_and_is_published(compose):
    gateway = compose["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    assert any(str(port).endswith(":8000") for port in gateway["ports"])


def test_broker_and_database_credentials_match_the_urls(raw):
    for env in ({}, {"RABBITMQ_USER": "hub", "RABBITMQ_PASSWORD": "a1b2", "RABBITMQ_VHOST": "prod",
                     "POSTGRES_USER": "pg", "POSTGRES_PASSWORD": "c3d4", "POSTGRES_DB": "crm"}):
        compose = interpolate(raw, env)
        amqp = urlsplit(compose["x-crmhub-env"]["AMQP_URI"])
        rabbit = compose["services"]["rabbitmq"]["environment"]
        assert (amqp.username, amqp.password, amqp.path.lstrip("/")) == (
            rabbit["RABBITMQ_DEFAULT_USER"], rabbit["RABBITMQ_DEFAULT_PASS"],
            rabbit["RABBITMQ_DEFAULT_VHOST"])
        database = urlsplit(compose["x-crmhub-env"]["DATABASE_URL"])
        postgres = compose["services"]["postgres"]["environment"]
        assert (database.username, database.password, database.path.lstrip("/")) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
        if env:
            assert amqp.password == "a1b2" and database.password == "c3d4"


def test_broker_and_database_have_healthchecks_and_volumes(compose):
    rabbitmq, postgres = compose["services"]["rabbitmq"], compose["services"]["postgres"]
    assert rabbitmq["image"].startswith("rabbitmq:3.13-management")
    assert "rabbitmq-diagnostics" in json.dumps(rabbitmq["healthcheck"]["test"])
    assert "pg_isready" in json.dumps(postgres["healthcheck"]["test"])
    assert postgres["image"] == "postgres:16"
    for service, path in ((rabbitmq, "/var/lib/rabbitmq"), (postgres, "/var/lib/postgresql/data")):
        volume = next(v for v in service["volumes"] if v.split(":")[1] == path)
        assert volume.split(":")[0] in compose["volumes"]


def test_migration_runs_migrate_then_declare_once(compose):
    migrate = compose["services"]["migrate"]
    script = " ".join(migrate.get("entrypoint", []) + migrate.get("command", []))
    assert 0 <= script.index("crmhub migrate") < script.index("crmhub declare")
    assert migrate["restart"] == "no"
    assert migrate["image"] == "crmhub:latest"
    assert migrate["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["environment"]["QUEUE_TYPE"] == "quorum"


@pytest.mark.parametrize("variable", list(SHARED_DIRS))
def test_shared_directories_are_one_named_volume_in_each_service_using_them(compose, variable):
    path = compose["x-crmhub-env"][variable]
    assert path.startswith("/var/lib/crmhub/")
    mounted = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if target == path:
                mounted[name] = source
    assert set(mounted) == SHARED_DIRS[variable]
    assert len(set(mounted.values())) == 1, f"{variable}: not one volume {mounted}"
    assert next(iter(mounted.values())) in compose["volumes"]


def test_secrets_are_variables_never_literals(raw):
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and value.startswith("${") and value.endswith("}"), (
                    f"{name}: {key} must come from a variable, e.g. ${{{key}:-}}")
    for key in ("AMQP_URI", "DATABASE_URL"):
        password = urlsplit(raw["x-crmhub-env"][key]).netloc.rpartition("@")[0]
        assert re.fullmatch(r"\$\{\w+:-\w*\}:\$\{\w+:-\w*\}", password), f"{key}: {password}"


def test_every_variable_passed_is_read_by_the_config(raw):
    read = config_defaults()
    for name in SERVICES:
        unknown = set(raw["services"][name]["environment"]) - set(read)
        assert not unknown, f"{name}: deploy/config.yaml reads no {sorted(unknown)}"


def test_defaults_agree_with_the_config_defaults(raw):
    """A variable left unset means the same in a container as in deploy/config.yaml, unless a
    container needs its own value (CONTAINER_OVERRIDES)."""
    read = config_defaults()
    for key, value in raw["x-crmhub-env"].items():
        match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
        if key in CONTAINER_OVERRIDES or not match:
            assert key in CONTAINER_OVERRIDES, f"{key}: {value!r} is neither ${{{key}:-...}} nor an override"
            continue
        assert match.group(1) == key
        assert match.group(2) == read[key], f"{key}: compose {match.group(2)!r}, config {read[key]!r}"


def test_observability_profile_scrapes_every_service_and_provisions_the_dashboard(compose):
    prometheus, grafana = compose["services"]["prometheus"], compose["services"]["grafana"]
    assert prometheus["profiles"] == ["observability"] == grafana["profiles"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    names = {n for job in scrape["scrape_configs"] for sd in job.get("dns_sd_configs", [])
             for n in sd["names"] if sd["port"] == 9100}
    assert names == set(SERVICES)
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"] + grafana["volumes"])
    for source in mounts:
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), source
    dashboards = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "crmhub.yaml").read_text(encoding="utf-8"))
    target = mounts["./grafana/crmhub-dashboard.json"]
    assert Path(target).parent == Path(dashboards["providers"][0]["options"]["path"])
