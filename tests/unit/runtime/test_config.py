"""Where the broker and the database come from: the config file, else the environment."""
from crmhub.runtime.config import DEFAULTS, load_config

BROKER = "amqp://ops:secret@rabbit.internal:5672/crm"
DATABASE = "postgresql://crm@db.internal/crm"


def test_without_a_config_file_the_environment_names_the_broker_and_database(monkeypatch):
    monkeypatch.setenv("AMQP_URI", BROKER)
    monkeypatch.setenv("DATABASE_URL", DATABASE)
    config = load_config()
    assert (config["AMQP_URI"], config["DATABASE_URL"]) == (BROKER, DATABASE)


def test_a_config_file_wins_over_the_environment_and_an_empty_value_falls_back(
        monkeypatch, tmp_path):
    monkeypatch.setenv("AMQP_URI", BROKER)
    monkeypatch.setenv("DATABASE_URL", DATABASE)
    path = tmp_path / "config.yaml"
    path.write_text("AMQP_URI: amqp://guest:guest@127.0.0.1:5672/other\nDATABASE_URL: ''\n")
    config = load_config(path)
    assert config["AMQP_URI"] == "amqp://guest:guest@127.0.0.1:5672/other"
    assert config["DATABASE_URL"] == DATABASE


def test_with_nothing_set_the_defaults_apply(monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config()
    assert config["AMQP_URI"] == DEFAULTS["AMQP_URI"]
    assert config["DATABASE_URL"] == ""
