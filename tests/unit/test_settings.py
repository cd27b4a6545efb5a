"""Settings from the environment (ARCHITECTURE's table): defaults, clear start-up errors, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading.cli import main
from trading.settings import Settings, SettingsError, load_settings

ENV_KEYS = (
    "TRADING_MODE",
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "BINANCE_TESTNET",
    "BINANCE_DEMO",
    "BINANCE_REST_URL",
    "BINANCE_WS_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_ALLOWED_CHAT_IDS",
    "TELEGRAM_ALLOWED_USER_IDS",
    "TELEGRAM_API_URL",
    "DB_PATH",
    "STRATEGY_FILE",
    "LOCALE",
    "LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of a developer's checkout


def test_defaults_are_the_architecture_table() -> None:
    s = load_settings()
    assert s.trading_mode == "sim" and s.binance_testnet is False and s.binance_demo is False
    assert s.locale == "ko" and s.log_level == "INFO"
    assert s.db_path == Path("data/surgedca-sim.sqlite3") and s.db_path_is_default
    assert s.strategy_file is None and s.headless and s.telegram_allowed_user_ids == []
    assert s.binance_rest_url is None and s.binance_ws_url is None and s.telegram_api_url is None


def test_a_token_without_allowed_chats_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    with pytest.raises(SettingsError, match="TELEGRAM_ALLOWED_CHAT_IDS"):
        load_settings()
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "408258968")
    s = load_settings()
    assert s.telegram_allowed_chat_ids == [408258968] and not s.headless


def test_an_allowed_group_needs_allowed_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "408258968, -1001234567890")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(exc.value) == (
        "invalid settings:\n  TELEGRAM_ALLOWED_CHAT_IDS includes the group -1001234567890 but "
        "TELEGRAM_ALLOWED_USER_IDS is empty: every member of the group could sell positions and change the config. "
        "Set TELEGRAM_ALLOWED_USER_IDS to the user ids who may act (the others may only read)."
    )
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", "996202131; 996202132")
    s = load_settings()
    assert s.telegram_allowed_chat_ids == [408258968, -1001234567890]
    assert s.telegram_allowed_user_ids == [996202131, 996202132]
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", "@owner")
    with pytest.raises(SettingsError, match="TELEGRAM_ALLOWED_USER_IDS: must be comma-separated numeric user ids"):
        load_settings()


def test_the_default_database_differs_per_mode_and_an_explicit_one_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "paper")
    s = load_settings()
    assert s.db_path == Path("data/surgedca-paper.sqlite3") and s.db_path_is_default
    assert s.exchange_environment == "live"
    monkeypatch.setenv("DB_PATH", "  ")
    assert load_settings().db_path == Path("data/surgedca-paper.sqlite3")
    monkeypatch.setenv("DB_PATH", "/srv/x.sqlite3")
    s = load_settings()
    assert s.db_path == Path("/srv/x.sqlite3") and not s.db_path_is_default


def test_the_exchange_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().exchange_environment == "offline"  # sim
    monkeypatch.setenv("TRADING_MODE", "paper")
    assert load_settings().exchange_environment == "live"  # Binance's public data
    monkeypatch.setenv("TRADING_MODE", "live")
    monkeypatch.setenv("BINANCE_API_KEY", "k")
    monkeypatch.setenv("BINANCE_API_SECRET", "s")
    monkeypatch.setenv("BINANCE_DEMO", "true")
    assert load_settings().exchange_environment == "demo"
    monkeypatch.setenv("BINANCE_TESTNET", "true")
    with pytest.raises(SettingsError, match="BINANCE_DEMO and BINANCE_TESTNET are both true"):
        load_settings()
    monkeypatch.setenv("BINANCE_DEMO", "false")
    assert load_settings().exchange_environment == "testnet"


def test_bad_chat_ids_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "me,408258968")
    with pytest.raises(SettingsError, match="numeric chat ids"):
        load_settings()


def test_live_without_keys_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "live")
    with pytest.raises(SettingsError, match="BINANCE_API_KEY"):
        load_settings()
    monkeypatch.setenv("BINANCE_API_KEY", "key-123")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-456")
    assert load_settings().trading_mode == "live"


def test_secrets_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "key-123")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-456")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "7000:token-789")
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "1")
    s = load_settings()
    for text in (repr(s), str(s), str(s.model_dump())):
        assert "secret-456" not in text and "token-789" not in text and "key-123" not in text
    assert s.binance_api_secret is not None and s.binance_api_secret.get_secret_value() == "secret-456"


def test_urls_are_normalised_and_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_REST_URL", " http://127.0.0.1:8080/ ")
    monkeypatch.setenv("BINANCE_WS_URL", "")
    monkeypatch.setenv("STRATEGY_FILE", "")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "  ")
    s = load_settings()
    assert s.binance_rest_url == "http://127.0.0.1:8080" and s.binance_ws_url is None
    assert s.strategy_file is None and s.telegram_bot_token is None


def test_out_of_range_values_are_refused_with_the_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "yolo")
    with pytest.raises(SettingsError, match="TRADING_MODE"):
        load_settings()
    monkeypatch.setenv("TRADING_MODE", "sim")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        load_settings()


def test_the_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADING_MODE=paper\nLOCALE=en\n")
    s = Settings()
    assert s.trading_mode == "paper" and s.locale == "en"


def test_the_command_line_reports_bad_settings_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    with pytest.raises(SystemExit) as exc:
        main(["status"])
    assert exc.value.code == 2
    assert "TELEGRAM_ALLOWED_CHAT_IDS" in capsys.readouterr().err


def test_demo_and_testnet_are_live_only_and_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_DEMO", "true")
    with pytest.raises(SettingsError, match="BINANCE_DEMO=true has no effect with TRADING_MODE=sim"):
        load_settings()
    monkeypatch.setenv("TRADING_MODE", "paper")
    with pytest.raises(SettingsError, match="TRADING_MODE=paper"):
        load_settings()
    monkeypatch.setenv("TRADING_MODE", "live")
    monkeypatch.setenv("BINANCE_API_KEY", "demo-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "demo-secret")
    s = load_settings()
    assert s.binance_demo and not s.binance_testnet
    monkeypatch.setenv("BINANCE_TESTNET", "true")
    with pytest.raises(SettingsError, match="both true: choose one"):
        load_settings()
    monkeypatch.setenv("BINANCE_DEMO", "false")
    assert load_settings().binance_testnet  # kept: the service warns at start (see the adapter tests)
    monkeypatch.setenv("BINANCE_DEMO", "maybe")
    with pytest.raises(SettingsError, match="BINANCE_DEMO"):
        load_settings()
