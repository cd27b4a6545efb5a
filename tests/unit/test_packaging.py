"""What can be checked of the image and the locks without building: the runtime lock holds no test or build tool,
both locks pin every package with hashes and agree, the Dockerfile installs the runtime lock only on a base pinned
by digest, the build context leaves secrets and the dev environment out, compose waits longer than the service's
own orderly stop."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

from trading.service import ALERTS_STOP_GRACE_S, BOT_STOP_GRACE_S, SHUTDOWN_BUDGET_S, STOP_GRACE_S

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = {
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "hypothesis",
    "ruff",
    "ta",
    "setuptools",
    "wheel",
    "mypy",
    "pandas-stubs",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """package -> (version, hashes) of a uv/pip-compile lock file."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    current: str | None = None
    hashes: set[str] = set()
    for line in (REPO / name).read_text().splitlines():
        m = _PIN.match(line)
        if m:
            if current is not None:
                pins[current] = (pins[current][0], frozenset(hashes))
            current, hashes = _norm(m.group(1)), set()
            pins[current] = (m.group(2), frozenset())
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            hashes.add(line.strip().split(":", 1)[1].rstrip(" \\"))
    if current is not None:
        pins[current] = (pins[current][0], frozenset(hashes))
    return pins


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0])


def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_the_runtime_lock_holds_the_runtime_and_no_test_or_build_tool() -> None:
    runtime = lock("requirements.lock")
    project = pyproject()["project"]
    assert isinstance(project, dict)
    for req in project["dependencies"]:
        assert _requirement_name(req) in runtime, req
    assert not DEV_ONLY & set(runtime), sorted(DEV_ONLY & set(runtime))
    assert all(hashes for _version, hashes in runtime.values())


def test_the_dev_lock_adds_the_dev_extras_with_the_same_runtime_versions() -> None:
    runtime, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    extras = pyproject()["project"]["optional-dependencies"]["dev"]  # type: ignore[index]
    for req in extras:
        assert _requirement_name(req) in dev, req
    assert set(runtime) <= set(dev)
    assert {name: dev[name] for name in runtime} == runtime  # same version, same hashes
    assert all(hashes for _version, hashes in dev.values())
    assert "ta" in dev and "ta" not in runtime


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_service_imports_no_dev_only_package() -> None:
    used: set[str] = set()
    for package in ("bot", "trading", "storage"):
        for path in (REPO / package).rglob("*.py"):
            used |= _imports(path)
    assert not {_norm(m) for m in used} & DEV_ONLY


def test_the_dockerfile_installs_the_runtime_lock_only_on_a_pinned_base() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in instructions if ln.startswith("FROM ")]
    assert froms and all(re.search(r"@sha256:[0-9a-f]{64}\b", ln) for ln in froms), froms
    installs = [ln for ln in instructions if "pip install" in ln]
    assert installs == ["RUN pip install --require-hashes --only-binary=:all: -r requirements.lock"], installs
    assert "requirements-dev.lock" not in text and "-e ." not in text
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["surgedca", "status", "--check"\]', text, re.M)
    copied = {ln.split()[1] for ln in instructions if ln.startswith("COPY ")}
    assert copied == {"requirements.lock", "bot", "trading", "storage", "locales"}


@pytest.mark.parametrize("path", [".env", ".env.local", "data/x.sqlite3", ".venv/bin/python", "tests/unit/x.py"])
def test_the_build_context_leaves_out_secrets_databases_and_the_dev_environment(path: str) -> None:
    assert _docker_ignored(path), path


@pytest.mark.parametrize("path", ["bot/app.py", "requirements.lock", "locales/ko/LC_MESSAGES/messages.po"])
def test_the_build_context_keeps_what_the_image_needs(path: str) -> None:
    assert not _docker_ignored(path), path


def _docker_ignored(path: str) -> bool:
    """.dockerignore's rules as Docker applies them (the last matching pattern wins; ``!`` re-includes)."""
    ignored = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if re.fullmatch(regex + r"(/.*)?", path):
            ignored = not negate
    return ignored


def test_compose_waits_longer_than_the_orderly_stop() -> None:
    from bot.app import STOP_GRACE_S as BOT_GRACE

    assert BOT_STOP_GRACE_S == BOT_GRACE
    assert SHUTDOWN_BUDGET_S >= 2 * STOP_GRACE_S + BOT_GRACE + ALERTS_STOP_GRACE_S
    text = (REPO / "compose.yaml").read_text()
    m = re.search(r"^\s+stop_grace_period:\s*(\d+)s\s*$", text, re.M)
    assert m is not None, "compose.yaml has no stop_grace_period"
    assert int(m.group(1)) > SHUTDOWN_BUDGET_S + 5  # with room for closing sockets and the database
    assert re.search(r"^\s+- surgedca-data:/data\s*$", text, re.M) and re.search(r"^\s+env_file: \.env\s*$", text, re.M)


def test_python_is_the_one_the_locks_were_made_for() -> None:
    assert "--python-version 3.11" in (REPO / "requirements.lock").read_text().splitlines()[1]
    assert sys.version_info[:2] >= (3, 11)
