"""docs/deploy.md keeps up with what it describes: the commands, services, files and variables it
names exist."""
import argparse
import re
from pathlib import Path

import pytest

from crmhub.cli import build_parser
from crmhub.runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "deploy.md"
# Variables of the image and of the Compose file that deploy/config.yaml does not read itself.
OUTSIDE_CONFIG = {"CRMHUB_CONFIG", "DATABASE_URL"}


@pytest.fixture(scope="module")
def text():
    return RUNBOOK.read_text(encoding="utf-8")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_readme_links_the_runbook():
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def code(text: str) -> list[str]:
    """The code blocks and inline code spans of the runbook."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    return blocks + spans


def test_every_crmhub_command_named_exists(text):
    known = subcommands()
    command = re.compile(r"(?:^|&&\s*|--\s+|exec\s+[\w/-]+\s+)crmhub ([a-z][a-z0-9-]*)", re.M)
    named = [name for snippet in code(text) for name in command.findall(snippet)]
    assert {"run", "migrate", "declare", "dlq"} <= set(named)
    for name in named:
        assert name in known, f"docs/deploy.md: no `crmhub {name}`"
    dlq = known["dlq"]
    actions = next(a for a in dlq._actions if a.dest == "action").choices
    for action, options in re.findall(r"crmhub dlq ([a-z]+)([^\n`]*)", text):
        assert action in actions or action + "|" in text, action
        for option in re.findall(r"(--[a-z-]+)", options):
            assert option in dlq._option_string_actions, f"crmhub dlq {action} {option}"


def test_every_service_named_exists(text):
    for name in re.findall(r"--service[ =]([a-z<][a-z>]*)", text):
        assert name in SERVICES or name == "<name>", name
    for name in SERVICES:
        assert f"| {name}" in text or f", {name}" in text, f"the scaling table misses {name}"


def test_every_repository_file_linked_exists(text):
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", text):
        assert (RUNBOOK.parent / target).resolve().exists(), target
    for path in re.findall(r"\b(deploy/(?:[\w/-]+\.(?:yaml|yml|json|sh)|k8s|Dockerfile))\b", text):
        assert (ROOT / path).exists(), path


def test_every_variable_named_is_read_by_the_config_or_compose(text):
    config = (ROOT / "deploy" / "config.yaml").read_text(encoding="utf-8")
    compose = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    known = set(re.findall(r"\$\{([A-Z0-9_]+)", config + compose)) | OUTSIDE_CONFIG
    known |= set(re.findall(r"^([A-Z][A-Z0-9_]+):", config, re.M))  # config keys (RETRY_DELAYS_MS...)
    for name in re.findall(r"`([A-Z][A-Z0-9_]{3,})`", text):
        assert name in known, f"docs/deploy.md names {name}, which nothing reads"
