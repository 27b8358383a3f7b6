"""deploy/Dockerfile and .dockerignore: a wheel-building stage and a slim non-root runtime stage
whose entrypoint is the crmhub command, with everything it copies present in the context."""
import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuations joined, comments and blanks dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(text: str) -> tuple[dict, list[dict]]:
    """Global ARG defaults, and per stage: its base, name and instructions."""
    args, found = {}, []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append({"base": base, "name": name, "steps": []})
        elif not found and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif found:
            found[-1]["steps"].append((keyword, rest))
    return args, found


def steps(stage: dict, keyword: str) -> list[str]:
    return [rest for kw, rest in stage["steps"] if kw == keyword]


def env_of(stage: dict) -> dict:
    env = {}
    for rest in steps(stage, "ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def parsed():
    return stages(DOCKERFILE.read_text(encoding="utf-8"))[1]


def test_multi_stage_build_makes_wheels_once_then_installs_them_offline(parsed):
    assert len(parsed) >= 2
    builder, runtime = parsed[0], parsed[-1]
    assert builder["base"] == runtime["base"] == "python:3.11-slim"
    assert builder["name"] == "builder"
    assert any(re.search(r"\bpip wheel\b.*--wheel-dir[ =]/wheels\b", run) for run in steps(builder, "RUN"))
    installs = [run for run in steps(runtime, "RUN") if re.search(r"\bpip install\b", run)]
    assert len(installs) == 1
    assert "--no-index" in installs[0] and "/wheels" in installs[0]
    assert "from=builder" in installs[0] or any("--from=builder" in c for c in steps(runtime, "COPY"))


def test_runtime_stage_has_no_build_tools(parsed):
    runtime = " ".join(steps(parsed[-1], "RUN"))
    for tool in ("build-essential", "gcc", "g++", "make ", "libpq-dev", "python3-dev"):
        assert tool not in runtime, tool


def test_runtime_runs_as_a_non_root_user(parsed):
    users = steps(parsed[-1], "USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("10001", "crmhub")
    assert any("10001" in run for run in steps(parsed[-1], "RUN")), "uid 10001 is created"


def test_entrypoint_is_crmhub_and_the_default_runs_the_gateway(parsed):
    runtime = parsed[-1]
    assert json.loads(steps(runtime, "ENTRYPOINT")[-1]) == ["crmhub"]
    assert json.loads(steps(runtime, "CMD")[-1]) == ["run", "--service", "gateway"]


def test_config_is_baked_in_and_named_by_crmhub_config(parsed):
    runtime = parsed[-1]
    assert "deploy/config.yaml /etc/crmhub/config.yaml" in steps(runtime, "COPY")
    env = env_of(runtime)
    assert env["CRMHUB_CONFIG"] == "/etc/crmhub/config.yaml"
    assert env["OPS_ADDRESS"] == "0.0.0.0:9100"
    assert env["GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    assert env["CRMHUB_DATA_DIR"] == "/var/lib/crmhub"


def test_ports_data_directory_workdir_and_healthcheck(parsed):
    runtime = parsed[-1]
    assert set(" ".join(steps(runtime, "EXPOSE")).split()) >= {"8000", "9100"}
    assert steps(runtime, "WORKDIR")[-1] == "/var/lib/crmhub"
    assert any("chown" in run and "/var/lib/crmhub" in run for run in steps(runtime, "RUN"))
    (check,) = steps(runtime, "HEALTHCHECK")
    assert "http://127.0.0.1:9100/health" in check and "curl" not in check


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: a pattern excludes a path or anything under it; the last
    matching pattern wins and ``!`` re-includes."""
    verdict = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, body) for prefix in prefixes)
        if hit:
            verdict = not negate
    return verdict


def test_what_the_image_copies_is_in_the_build_context(parsed):
    patterns = dockerignore()
    copied = []
    for stage in parsed:
        for rest in steps(stage, "COPY"):
            words = [w for w in rest.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in rest.split()):
                continue
            copied += words[:-1]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f".dockerignore leaves {source} out of the context"


def test_every_package_folder_setup_py_maps_is_copied_into_the_builder(parsed):
    mapped = re.search(r"MAPPED = \(([^)]*)\)", (ROOT / "setup.py").read_text(encoding="utf-8"))
    folders = {name.strip().strip("\"'") for name in mapped.group(1).split(",") if name.strip()}
    sources = {word for rest in steps(parsed[0], "COPY") for word in rest.split()[:-1]}
    assert folders | {"crmhub", "pyproject.toml", "setup.py", "README.md"} <= sources


def test_dockerignore_keeps_local_state_out():
    patterns = dockerignore()
    for path in (".venv/bin/python", ".git/HEAD", "var/contacts.db", "bench/results/ingest.json",
                 "crmhub/__pycache__/cli.cpython-311.pyc", "services/gateway/__pycache__/x.pyc"):
        assert ignored(path, patterns), path
    for path in ("crmhub/cli.py", "services/gateway/static/ui.css", "deploy/config.yaml"):
        assert not ignored(path, patterns), path
