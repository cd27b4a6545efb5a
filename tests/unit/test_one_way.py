"""One way to do each thing: each policy lives in one place, and this keeps it so (a scan of the source).

* back-off: ``trading/core/backoff.py`` (the policy) and ``trading/retry.py`` (the loops and the jitter);
* REST request-weight pacing: ``trading/exchange/ratelimit.py``;
* the streams' reconnect loop: ``_Reconnecting._run`` in ``trading/exchange/streams.py``;
* float -> Decimal: ``trading/core/decimals.py`` (strategy fractions once per config: ``StrategyConfig.fractions``);
* symbol names as typed: ``trading/core/symbols.py``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("trading", "bot", "storage")
BACKOFF = {"trading/core/backoff.py", "trading/retry.py"}
MINUTE_NAMES = {"MINUTE_MS", "MINUTE"}


def sources() -> Iterator[tuple[str, ast.Module, str]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            yield path.relative_to(ROOT).as_posix(), ast.parse(text), text


def _line(rel: str, node: ast.AST) -> str:
    return f"{rel}:{getattr(node, 'lineno', '?')}"


def _is_const(node: ast.AST, *values: object) -> bool:
    return isinstance(node, ast.Constant) and (not values or node.value in values)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_sleep(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == "sleep")
        or (isinstance(node.func, ast.Name) and node.func.id == "sleep")
    )


def test_no_back_off_arithmetic_outside_the_one_policy() -> None:
    found = []
    for rel, tree, _ in sources():
        if rel in BACKOFF:
            continue
        for node in ast.walk(tree):
            # 2 ** attempt: a doubling that grows with the failures (10 ** places is not one)
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Pow)
                and _is_const(node.left, 2, 2.0)
                and not _is_const(node.right)
            ):
                found.append(f"{_line(rel, node)} exponent {ast.unparse(node)}")
            # min(delay * 2, cap): a doubling with a cap
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "min":
                for arg in node.args:
                    if (
                        isinstance(arg, ast.BinOp)
                        and isinstance(arg.op, ast.Mult)
                        and (_is_const(arg.left, 2, 2.0) or _is_const(arg.right, 2, 2.0))
                    ):
                        found.append(f"{_line(rel, node)} doubling {ast.unparse(node)}")
            # jitter drawn by hand
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("uniform", "random")
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
            ):
                found.append(f"{_line(rel, node)} jitter {ast.unparse(node)}")
    assert found == [], "back-off belongs to trading.core.backoff / trading.retry"


def test_no_retry_loop_sleeps_a_delay_it_grows_itself() -> None:
    """A loop that sleeps in an ``except`` for a delay it multiplies or adds to is a hand-written back-off."""
    found = []
    for rel, tree, _ in sources():
        if rel in BACKOFF:
            continue
        for loop in ast.walk(tree):
            if not isinstance(loop, ast.While | ast.For | ast.AsyncFor):
                continue
            grown = set()
            for node in ast.walk(loop):
                if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                    grown.add(node.target.id)
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp | ast.Call):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and target.id in _names(node.value):
                            grown.add(target.id)
            for handler in (n for n in ast.walk(loop) if isinstance(n, ast.ExceptHandler)):
                for call in (n for n in ast.walk(handler) if _is_sleep(n)):
                    if any(_names(arg) & grown for arg in call.args):
                        found.append(f"{_line(rel, call)} {ast.unparse(call)}")
    assert found == []


def test_the_streams_reconnect_in_one_loop() -> None:
    tree = ast.parse((ROOT / "trading/exchange/streams.py").read_text(encoding="utf-8"))
    callers = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("next_delay", "reset")
                    and "backoff" in ast.unparse(node.func.value)
                ):
                    callers.add(f"{cls.name}.{fn.name}")
    assert callers == {"_Reconnecting._run"}


def test_request_weight_is_paced_in_one_place() -> None:
    found = []
    for rel, tree, _ in sources():
        if rel == "trading/exchange/ratelimit.py":
            continue
        for node in ast.walk(tree):
            # (60_000 - now % 60_000): the time to the next minute, i.e. waiting for the weight to reset
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
                left_minute = _is_const(node.left, 60_000) or (
                    isinstance(node.left, ast.Name) and node.left.id in MINUTE_NAMES
                )
                if left_minute and isinstance(node.right, ast.BinOp) and isinstance(node.right.op, ast.Mod):
                    found.append(f"{_line(rel, node)} {ast.unparse(node)}")
            # reading the header's figure to pace on it
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "used_weight"
                and rel not in ("trading/api.py", "trading/exchange/paper.py", "trading/exchange/ccxt_adapter.py")
            ):
                found.append(f"{_line(rel, node)} {ast.unparse(node)}")
    assert found == [], "pacing belongs to trading.exchange.ratelimit.WeightBudget"


def test_floats_become_decimals_in_one_place() -> None:
    found = [
        f"{rel}:{i}"
        for rel, _, text in sources()
        if rel != "trading/core/decimals.py"
        for i, line in enumerate(text.splitlines(), 1)
        if "Decimal(repr(" in line
    ]
    assert found == [], "use StrategyConfig.fractions (config values) or trading.core.decimals.decimal_of"


def test_one_definition_per_name() -> None:
    """A public class or function name means one thing (``ServiceStopping`` is the event; the API's refusal is
    ``StoppingError``); routers each define ``create_router`` by design."""
    where: dict[str, list[str]] = defaultdict(list)
    for rel, tree, _ in sources():
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith(
                "_"
            ):
                where[node.name].append(rel)
    allowed = {
        "create_router",  # one per router module (bot/routers)
        "cmd_resume",  # the /resume handler and the `surgedca resume` command
        "iso",  # two different date formats of the backtest's outputs
        # the backtest's result rows, named after the exchange's trades and the ladder's lots
        "Leg",
        "Trade",
    }
    twice = {name: files for name, files in where.items() if len(files) > 1 and name not in allowed}
    assert twice == {}
