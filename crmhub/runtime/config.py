"""Config loading: nameko-style YAML with ``${ENV:default}``, merged over built-in defaults."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

DEFAULTS: dict = {
    "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    "DATABASE_URL": "",
    "DATA_DIR": "var",
    "WEB_SERVER_ADDRESS": "127.0.0.1:8000",
    "OPS_ADDRESS": "127.0.0.1:9100",
    "max_workers": 20,
    "RPC_TIMEOUT_SECONDS": 30,
    "serializer": "json",
    # Delays of the successive retries of a failing event handler; after the last one the
    # message is parked in the service's dead-letter queue.
    "RETRY_DELAYS_MS": [1000, 10000, 60000, 300000],
    # Handler, retry and dead-letter queues: quorum (replicated) or classic; a message
    # delivered DELIVERY_LIMIT times without being settled is parked (crmhub.runtime.topology).
    "QUEUE_TYPE": "quorum",
    "DELIVERY_LIMIT": 20,
    "API_KEYS": "dev-admin-key:admin",
    "MAX_BODY_BYTES": 1048576,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "CONNECTORS": {},
    "DISABLED_CONNECTORS": [],
}


def _install_env_resolver() -> None:
    """Teach yaml.SafeLoader the ``${VAR:default}`` syntax, exactly as ``nameko run`` does."""
    from nameko.cli.main import setup_yaml_parser

    if "!env_var" not in yaml.SafeLoader.yaml_constructors:
        setup_yaml_parser()


# Where the config (file or overrides) leaves these empty or unset, the environment's
# variables of the same name apply: the broker and the database are what ops set first.
FROM_ENVIRONMENT = ("AMQP_URI", "DATABASE_URL")


def load_config(path: str | os.PathLike | None = None, overrides: dict | None = None) -> dict:
    """Return the effective config: defaults, then the YAML file, then ``overrides``; for
    ``FROM_ENVIRONMENT``, the environment where neither gives a value."""
    config = copy.deepcopy(DEFAULTS)
    given = dict(overrides or {})
    if path:
        _install_env_resolver()
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config must be a mapping")
        given = {**loaded, **given}
    config.update(given)
    # Unset or empty in the file and overrides: the environment, then the default.
    for name in FROM_ENVIRONMENT:
        if not given.get(name):
            config[name] = os.environ.get(name) or DEFAULTS[name]
    return config


def data_dir(config: dict) -> Path:
    path = Path(config.get("DATA_DIR") or "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_flag(config: dict, key: str, default: bool) -> bool:
    """A yes/no setting: YAML's booleans, or an environment's "false", "0", "off", "no"."""
    return str(config.get(key, default)).lower() not in ("false", "0", "off", "no")


def parse_api_keys(value) -> dict[str, dict]:
    """API keys from config: ``"key:role[:name],..."`` or a list of ``{key, role, name}``.

    Returns ``{key: {"role": ..., "name": ...}}``.
    """
    from crmhub.contracts.auth import ROLES

    entries = []
    if isinstance(value, str):
        for item in filter(None, (part.strip() for part in value.split(","))):
            key, _, rest = item.partition(":")
            role, _, name = rest.partition(":")
            entries.append({"key": key, "role": role, "name": name or role})
    elif isinstance(value, list):
        entries = [dict(item) for item in value]
    elif value:
        raise ValueError("API_KEYS must be a 'key:role,...' string or a list of {key, role}")
    keys = {}
    for entry in entries:
        key, role = str(entry.get("key") or ""), entry.get("role")
        if not key or role not in ROLES:
            raise ValueError(f"API_KEYS entry {entry!r}: needs a key and a role in {sorted(ROLES)}")
        keys[key] = {"role": role, "name": entry.get("name") or role}
    return keys
