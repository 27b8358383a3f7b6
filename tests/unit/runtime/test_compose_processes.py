"""Reading deploy/compose.yaml as Compose would: variables, merge keys, and what a process
needs mapped (network host names, listen ports, data volumes)."""
import pytest

from crmhub.compose_processes import LocalCompose, interpolate


@pytest.mark.parametrize(("text", "expected"), [
    ("${A:-x}", "set"), ("${EMPTY:-x}", "x"), ("${EMPTY-x}", ""), ("${UNSET-x}", "x"),
    ("${UNSET:-${A}}", "set"), ("$A/$$HOME", "set/$HOME"), ("${UNSET}", ""),
])
def test_compose_variable_syntax(text, expected):
    assert interpolate(text, {"A": "set", "EMPTY": ""}) == expected


def test_a_required_variable_that_is_missing_is_an_error():
    with pytest.raises(ValueError, match="PASSWORD is required: set it"):
        interpolate("${PASSWORD:?set it}", {})


def test_each_service_gets_its_containers_command_and_a_localized_environment(tmp_path):
    compose = LocalCompose(tmp_path, {"RABBITMQ_USER": "postgres", "RABBITMQ_VHOST": "v1",
                                      "POSTGRES_USER": "postgres", "POSTGRES_DB": "d1"})
    assert set(compose.crmhub_services()) == {"gateway", "contacts", "deals", "telephony",
                                              "messenger", "catalog", "email", "reporting"}
    contacts = compose.process("contacts")
    assert contacts.argv[1:] == ["run", "--service", "contacts"]
    # A user named like a compose host stays a user: only the host part is this machine.
    assert contacts.env["AMQP_URI"].startswith("amqp://postgres:")
    assert "@127.0.0.1:5672/v1" in contacts.env["AMQP_URI"]
    assert contacts.env["DATABASE_URL"].endswith("@127.0.0.1:5432/d1")
    ops_port = contacts.ports[9100]
    assert contacts.env["OPS_ADDRESS"] == f"127.0.0.1:{ops_port}"
    assert any(f"127.0.0.1:{ops_port}/health" in arg for arg in contacts.healthcheck)
    assert contacts.env["RECORDINGS_DIR"] == str(tmp_path / "volumes" / "recordings")

    first, second = compose.process("gateway"), compose.process("gateway")
    assert first.env["GATEWAY_ADDRESS"] == second.env["GATEWAY_ADDRESS"]  # one published port
    assert first.env["OPS_ADDRESS"] != second.env["OPS_ADDRESS"]
