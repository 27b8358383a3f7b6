"""``crmhub simulate pbx``: play realistic, correctly signed call scenarios of a PBX against a
running hub, as the vendor's cloud would send them (the demo of ``make run``, tests, and
integrators writing a PBX connector of their own).

Each provider's scenarios live beside its connector (``crmhub.plugins.<provider>.simulator``:
``SCENARIOS``, ``build(scenario, **params)``); this module signs them with the keys of the
hub's own config (so the hub accepts them) and posts them a moment apart, as a PBX leaves
seconds between a phone ringing and someone answering.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from importlib import import_module

import requests

DEFAULT_PAUSE = 0.5


@dataclass(frozen=True)
class Provider:
    module: str
    # simulator keyword -> key of the connector's settings that holds it
    secrets: dict[str, str]


PROVIDERS = {
    "mango": Provider("crmhub.plugins.mango.simulator", {"api_key": "api_key",
                                                         "api_salt": "api_salt"}),
    "zadarma": Provider("crmhub.plugins.zadarma.simulator", {"secret": "api_secret"}),
}


def simulator(provider: str):
    try:
        return import_module(PROVIDERS[provider].module)
    except KeyError:
        raise SystemExit(f"simulate: no simulator for {provider!r}; "
                         f"known: {', '.join(PROVIDERS)}") from None


def scenario_params(scenario_fn, *, secrets: dict, client=None, line=None,
                    extensions=()) -> dict:
    """The keyword arguments ``scenario_fn`` takes, from what the command line gave."""
    accepted = inspect.signature(scenario_fn).parameters
    params = {k: v for k, v in secrets.items() if k in accepted and v}
    if client and "client" in accepted:
        params["client"] = client
    if line and "line" in accepted:
        params["line"] = line
    if extensions:
        if "extensions" in accepted:
            params["extensions"] = tuple(extensions)
        elif "extension" in accepted:
            params["extension"] = extensions[0]
    return params


def hook_request(hook, hub_url: str) -> tuple[str, str, bytes, dict]:
    """(method, url, body, headers) of a simulator's webhook, whatever its provider's shape."""
    url = hook.url(hub_url) if callable(getattr(hook, "url", None)) else hub_url.rstrip("/") + hook.path
    return getattr(hook, "method", "POST"), url, hook.body, dict(hook.headers)


def play(provider: str, hub_url: str, settings: dict, scenarios: list[str], *, count: int = 1,
         client=None, line=None, extensions=(), pause: float = DEFAULT_PAUSE, out=print) -> int:
    """Post ``count`` rounds of ``scenarios``; returns how many webhooks were refused."""
    module = simulator(provider)
    secrets = {arg: settings.get(key) for arg, key in PROVIDERS[provider].secrets.items()}
    unknown = [s for s in scenarios if s not in module.SCENARIOS]
    if unknown:
        raise SystemExit(f"simulate: no {provider} scenario {', '.join(unknown)}; "
                         f"known: {', '.join(module.SCENARIOS)}")
    refused = 0
    with requests.Session() as session:
        for round_ in range(count):
            for name in scenarios:
                fn = module.SCENARIOS[name]
                hooks = module.build(name, **scenario_params(
                    fn, secrets=secrets, client=client, line=line, extensions=extensions))
                statuses = []
                for hook in hooks:
                    method, url, body, headers = hook_request(hook, hub_url)
                    try:
                        response = session.request(method, url, data=body, headers=headers,
                                                   timeout=10)
                        statuses.append(response.status_code)
                        if response.status_code >= 400:
                            refused += 1
                            out(f"  {url}: {response.status_code} {response.text[:200]}")
                    except requests.RequestException as exc:
                        raise SystemExit(f"simulate: the hub at {hub_url} did not answer: "
                                         f"{exc}") from None
                    time.sleep(pause)
                out(f"{provider} {name} #{round_ + 1}: {len(hooks)} webhooks, "
                    f"statuses {sorted(set(statuses))}")
    return refused
