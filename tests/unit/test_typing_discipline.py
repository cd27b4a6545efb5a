"""How the code is type-checked (mypy runs in `make test`): every `type: ignore` names its error code and why,
the pure core is held to every flag of `--strict`, and each adapter is proved an ExchangePort."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest
from mypy.config_parser import parse_config_file
from mypy.main import process_options
from mypy.options import Options

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("trading", "bot", "storage")
# `# type: ignore[code, ...]  # why`: the codes, then a comment of at least a few words' length.
_WELL_FORMED = re.compile(r"#\s*type:\s*ignore\[[a-z][a-z-]*(?:,\s*[a-z][a-z-]*)*\]\s+#\s*\S.{4,}")
_IGNORE = re.compile(r"#\s*type:\s*ignore\b")


def _ignore_comments(source: str) -> list[tuple[int, str]]:
    """(line, comment) of each comment that holds a `type: ignore` (strings and docstrings do not count)."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and _IGNORE.search(tok.string):
            found.append((tok.start[0], tok.string))
    return found


def _bad_ignores(source: str) -> list[tuple[int, str]]:
    return [(line, text) for line, text in _ignore_comments(source) if not _WELL_FORMED.search(text)]


def test_the_rule_tells_a_reasoned_ignore_from_a_bare_one() -> None:
    good = "x = f()  # type: ignore[attr-defined]  # ccxt's exceptions carry no types\n"
    two_codes = "x = f()  # type: ignore[arg-type, return-value]  # pandas' stubs lag behind\n"
    assert _bad_ignores(good) == [] and _bad_ignores(two_codes) == []
    for bare in (
        "x = f()  # type: ignore\n",
        "x = f()  # type: ignore[attr-defined]\n",
        "x = f()  # type: ignore  # no code given\n",
        "x = f()  # type: ignore[attr-defined]  #\n",
    ):
        assert _bad_ignores(bare) == [(1, bare[9:].rstrip())], bare
    assert _bad_ignores('text = "# type: ignore"\n') == []  # a string is no comment


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 100, "the packages are where they were"
    problems = [
        f"{path.relative_to(REPO)}:{line}: {text}"
        for path in files
        for line, text in _bad_ignores(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "write `# type: ignore[code]  # why` (or fix the type):\n" + "\n".join(problems)


def _strict_flags(tmp_path: Path) -> dict[str, object]:
    """What `--strict` changes from mypy's defaults (the flags it turns on, in this version of mypy)."""
    empty = tmp_path / "mypy.ini"
    empty.write_text("[mypy]\n")
    snapshots = []
    for extra in ([], ["--strict"]):
        _sources, options = process_options(["--config-file", str(empty), *extra, "-c", "pass"])
        snapshots.append(options.snapshot())
    plain, strict = snapshots
    return {k: v for k, v in strict.items() if v != plain[k]}


def test_the_core_gets_every_strict_flag_and_the_rest_the_checks_promised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYPY_CONFIG_FILE_DIR", "")  # mypy sets it while reading a configuration
    strict_flags = _strict_flags(tmp_path)
    assert {"disallow_untyped_defs", "warn_return_any", "disallow_any_generics"} <= set(strict_flags)

    ours, strict_set = Options(), []
    parse_config_file(ours, lambda: strict_set.append(True), str(REPO / "pyproject.toml"), sys.stdout, sys.stderr)
    assert not strict_set, "`strict = true`, even in an override, turns strict on for every module"
    assert ours.files == list(PACKAGES) and "pydantic.mypy" in ours.plugins
    core = ours.clone_for_module("trading.core.indicators").snapshot()
    assert {k: core[k] for k in strict_flags} == strict_flags
    elsewhere = ours.clone_for_module("trading.service").snapshot()
    promised = {
        "check_untyped_defs": True,
        "warn_unused_ignores": True,
        "warn_redundant_casts": True,
        "implicit_optional": False,
    }
    assert {k: elsewhere[k] for k in promised} == promised


def test_each_adapter_and_stream_is_checked_against_its_protocol() -> None:
    tree = ast.parse((REPO / "trading" / "exchange" / "conformance.py").read_text(encoding="utf-8"))
    checked = {
        (ast.unparse(node.annotation), ast.unparse(node.value))
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and node.value is not None
    }
    assert {
        ("type[ExchangePort]", "SimExchange"),
        ("type[ExchangePort]", "PaperExchange"),
        ("type[ExchangePort]", "CcxtBinanceAdapter"),
        ("type[MarketStream]", "SimMarketStream"),
        ("type[MarketStream]", "PaperMarketStream"),
        ("type[MarketStream]", "BinanceMarketStream"),
        ("type[UserStream]", "SimUserStream"),
        ("type[UserStream]", "BinanceUserStream"),
    } <= checked
