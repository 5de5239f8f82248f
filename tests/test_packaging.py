"""Packaging (design.md §8): docker-compose.yml, Dockerfile, pyproject.toml and the README's
quick start. The compose healthcheck's snippet is run against a real taskstore process."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskstore.server.cli import build_config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _flag_values(argv: list[str]) -> dict[str, str]:
    """``--flag value`` pairs of a command line (``--flag=value`` too)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq:
                i += 1
                value = argv[i]
            out[name] = value
        i += 1
    return out


def _check_server_command(argv: list[str]) -> None:
    """The container's command: taskstore-server on 0.0.0.0:6379, protected mode off, and
    a command line the CLI really accepts."""
    assert argv[0] == "taskstore-server", argv
    flags = _flag_values(argv[1:])
    assert flags.get("--bind") == "0.0.0.0"
    assert flags.get("--port") == "6379"
    assert flags.get("--protected-mode") == "no"
    cfg = build_config(argv[1:])  # raises ConfigError if the CLI would refuse it
    assert cfg.bind == "0.0.0.0"
    assert cfg.port == 6379
    assert cfg.protected_mode is False


# -- docker-compose.yml ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with open(ROOT / "docker-compose.yml") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    services = compose["services"]
    assert len(services) == 1, list(services)
    return next(iter(services.values()))


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def test_compose_single_service_command(service: dict[str, Any]) -> None:
    _check_server_command(_argv(service["command"]))


def test_compose_publishes_on_loopback_only(service: dict[str, Any]) -> None:
    ports = service["ports"]
    assert ports == ["127.0.0.1:6379:6379"], ports


def _healthcheck_snippet(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if test[0] == "CMD":
        argv = _argv(test[1:])
    elif test[0] == "CMD-SHELL":
        argv = shlex.split(test[1])
    else:
        argv = _argv(test)
    assert argv[0] in ("python", "python3"), argv
    assert argv[1] == "-c", argv
    return argv[2]


def test_compose_healthcheck_pings(service: dict[str, Any]) -> None:
    hc = service["healthcheck"]
    assert hc["test"][0] in ("CMD", "CMD-SHELL")
    snippet = _healthcheck_snippet(service)
    assert "PING" in snippet
    assert "6379" in snippet
    for key in ("interval", "timeout", "retries"):
        assert key in hc, key


def _run_snippet(snippet: str, port: int) -> subprocess.CompletedProcess[str]:
    assert snippet.count("6379") == 1, snippet  # the port, and nothing else that looks like it
    return subprocess.run(
        [sys.executable, "-c", snippet.replace("6379", str(port))],
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_compose_keeps_tasks_on_a_volume(service: dict[str, Any], compose: dict[str, Any]) -> None:
    """The append-only file is on, in a directory that is a named volume."""
    flags = _flag_values(_argv(service["command"])[1:])
    assert flags["--appendonly"] == "yes"
    directory = flags["--dir"]
    volumes = [str(v).split(":") for v in service["volumes"]]
    assert [name for name, target, *_ in volumes if target == directory] == ["taskstore-data"]
    assert "taskstore-data" in compose["volumes"]


def test_compose_healthcheck_runs_against_taskstore(
    service: dict[str, Any], spawn_server, tmp_path: Path
) -> None:
    snippet = _healthcheck_snippet(service)
    # the container's settings, except that tests listen on loopback only and keep the
    # append-only file in a temporary directory
    argv = _argv(service["command"])[1:]
    flags = _flag_values(argv)
    flags["--dir"] = str(tmp_path)
    extra = [a for k, v in flags.items() if k not in ("--bind", "--port") for a in (k, v)]
    proc = spawn_server(*extra)
    res = _run_snippet(snippet, proc.port)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""


def test_compose_healthcheck_fails_without_server(service: dict[str, Any]) -> None:
    """The healthcheck really checks something: nothing listening means unhealthy."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _run_snippet(_healthcheck_snippet(service), port)
    assert res.returncode != 0


# -- Dockerfile --------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuations joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        out.append((instr.upper(), rest.strip()))
    return out


def test_dockerfile() -> None:
    steps = _dockerfile()
    instrs = [i for i, _ in steps]
    assert instrs[0] == "FROM"
    assert re.match(r"^python:3\.(1[1-9]|[2-9]\d)", steps[0][1]), steps[0][1]

    installs = []
    for instr, args in steps:
        if instr == "RUN":
            for part in re.split(r"&&|;", args):
                words = shlex.split(part)
                if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
                    installs.append(words)
    # the package itself (".", or "." with extras) is installed
    assert any(w == "." or w.startswith(".[") for words in installs for w in words), installs

    exposes = [a.split() for i, a in steps if i == "EXPOSE"]
    assert any(p in ("6379", "6379/tcp") for e in exposes for p in e), exposes

    cmds = [a for i, a in steps if i == "CMD"]
    assert len(cmds) == 1
    cmd = json.loads(cmds[0])  # exec form, so the server gets the signals as PID 1
    _check_server_command(cmd)


def test_dockerfile_copies_existing_files() -> None:
    for instr, args in _dockerfile():
        if instr != "COPY":
            continue
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"


# -- pyproject.toml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _req_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()


def test_pyproject_console_script(project: dict[str, Any]) -> None:
    assert project["scripts"] == {"taskstore-server": "taskstore.server.cli:main"}
    from taskstore.server import cli

    assert callable(cli.main)


def test_pyproject_dependencies(project: dict[str, Any]) -> None:
    assert [_req_name(r) for r in project["dependencies"]] == ["hiredis"]
    extras = project["optional-dependencies"]
    assert {"uvloop", "test"} <= set(extras)
    assert [_req_name(r) for r in extras["uvloop"]] == ["uvloop"]
    test_deps = {_req_name(r) for r in extras["test"]}
    assert {"pytest", "redis", "pyyaml"} <= test_deps


def test_pyproject_pytest_plugin_entry_point(project: dict[str, Any]) -> None:
    plugins = project["entry-points"]["pytest11"]
    assert list(plugins.values()) == ["taskstore.pytest_plugin"]
    import taskstore.pytest_plugin as plugin

    assert hasattr(plugin, "taskstore_server")


def test_pyproject_requires_python(project: dict[str, Any]) -> None:
    spec = project["requires-python"]
    m = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert m and int(m.group(1)) >= 11, spec
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return
    specifiers = SpecifierSet(spec)
    assert "3.11.0" in specifiers
    assert "3.10.14" not in specifiers


# -- README ------------------------------------------------------------------------------


def _quick_start_blocks(text: str) -> list[list[str]]:
    """The fenced code blocks of the "Quick start" section (headings inside fences ignored)."""
    level = 0
    in_section = False
    fence: list[str] | None = None
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if fence is None:
                fence = []
            else:
                if in_section:
                    blocks.append(fence)
                fence = None
            continue
        if fence is not None:
            fence.append(line)
            continue
        heading = re.match(r"^(#+)\s+(.*?)\s*$", line)
        if heading:
            depth = len(heading.group(1))
            if in_section and depth <= level:
                break
            if heading.group(2).lower() == "quick start":
                in_section, level = True, depth
    assert in_section, "no 'Quick start' section"
    return blocks


def test_readme_quick_start() -> None:
    blocks = _quick_start_blocks(README.read_text())
    assert len(blocks) == 1, blocks
    commands = [
        line.strip().removeprefix("$ ")
        for line in blocks[0]
        if line.strip() and not line.strip().startswith("#")
    ]
    assert len(commands) == 2, commands
    assert any("taskstore-server" in c for c in commands), commands


def test_readme_parser() -> None:
    """The section parser above, on known good and bad READMEs."""
    good = (
        "# t\n## Quick start\n\n```sh\n# comment\npip install .\ntaskstore-server\n```\n"
        "## Next\n```\nx\n```\n"
    )
    assert _quick_start_blocks(good) == [["# comment", "pip install .", "taskstore-server"]]
    two = "## Quick start\n```\na\n```\ntext\n```\nb\n```\n"
    assert len(_quick_start_blocks(two)) == 2
    with pytest.raises(AssertionError):
        _quick_start_blocks("# Intro\n```\na\nb\n```\n")
