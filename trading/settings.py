"""Service settings from the environment or ``.env`` (ARCHITECTURE's table).

Secrets are ``SecretStr``: they never show in ``repr`` or logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(ValueError):
    """A start-up configuration problem, with a message meant for the operator."""


class StartupError(RuntimeError):
    """The service refuses to start (wrong database, token rejected...): a message meant for the operator."""


def default_db_path(mode: str) -> Path:
    """``DB_PATH`` when it is not set: one file per trading mode, so switching modes never shares a database."""
    return Path(f"data/surgedca-{mode}.sqlite3")


LEGACY_DEFAULT_DB_PATH = Path("data/surgedca.sqlite3")  # the default before it became per mode


def group_chat_ids(chat_ids: Iterable[int]) -> list[int]:
    """The ids that are groups, supergroups or channels: Telegram gives those negative ids, users positive ones."""
    return [c for c in chat_ids if c < 0]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    trading_mode: Literal["sim", "paper", "live"] = "sim"
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    binance_demo: bool = False  # Binance's demo trading (play money): the safe place to try live mode
    binance_testnet: bool = False  # the older futures testnet (deprecated by ccxt; kept with a warning)
    binance_rest_url: str | None = None
    binance_ws_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_allowed_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_allowed_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_api_url: str | None = None
    db_path: Path = Path()  # empty: default_db_path(trading_mode), filled in by _default_db_path
    strategy_file: Path | None = None
    locale: Literal["ko", "en"] = "ko"
    log_level: str = "INFO"

    # Beyond the contract table: simulation and housekeeping knobs (documented in .env.example).
    sim_speed: float = Field(default=300.0, ge=0)  # 0 = as fast as possible
    sim_data_dir: Path | None = None
    sim_seed: int = 7
    sim_symbols: int = Field(default=20, ge=1, le=200)
    sim_balance: float = Field(default=1000.0, gt=0)
    sim_slippage: float = Field(default=0.0005, ge=0, le=0.05)
    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1, le=365)

    _db_path_is_default: bool = PrivateAttr(default=False)

    @field_validator("db_path", mode="before")
    @classmethod
    def _blank_db_path(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return Path()  # the per-mode default, filled in by _default_db_path
        return v

    @model_validator(mode="after")
    def _default_db_path(self) -> Settings:
        if self.db_path == Path():
            self.db_path = default_db_path(self.trading_mode)
            self._db_path_is_default = True
        return self

    @field_validator("telegram_allowed_chat_ids", "telegram_allowed_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, v: object, info: ValidationInfo) -> object:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            what = "chat ids" if info.field_name == "telegram_allowed_chat_ids" else "user ids"
            try:
                return [int(part) for part in v.replace(";", ",").split(",") if part.strip()]
            except ValueError as exc:
                raise ValueError(f"must be comma-separated numeric {what}, got {v!r}") from exc
        if isinstance(v, int):
            return [v]
        return v

    @field_validator("binance_rest_url", "binance_ws_url", "telegram_api_url", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip().rstrip("/")
            return v or None
        return v

    @field_validator("binance_api_key", "binance_api_secret", "telegram_bot_token", mode="before")
    @classmethod
    def _blank_secret_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("strategy_file", mode="before")
    @classmethod
    def _blank_path_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.telegram_bot_token is not None and not self.telegram_allowed_chat_ids:
            raise ValueError(
                "TELEGRAM_BOT_TOKEN is set but TELEGRAM_ALLOWED_CHAT_IDS is empty: the bot would answer "
                "nobody (or, worse, anybody). Set TELEGRAM_ALLOWED_CHAT_IDS to your chat id(s)."
            )
        groups = group_chat_ids(self.telegram_allowed_chat_ids)
        if groups and not self.telegram_allowed_user_ids:
            raise ValueError(
                f"TELEGRAM_ALLOWED_CHAT_IDS includes the group {', '.join(map(str, groups))} but "
                "TELEGRAM_ALLOWED_USER_IDS is empty: every member of the group could sell positions and change the "
                "config. Set TELEGRAM_ALLOWED_USER_IDS to the user ids who may act (the others may only read)."
            )
        if self.binance_demo and self.binance_testnet:
            raise ValueError(
                "BINANCE_DEMO and BINANCE_TESTNET are both true: choose one. BINANCE_DEMO=true (Binance's demo "
                "trading, keys from demo.binance.com) is the one to use; the futures testnet is deprecated."
            )
        if self.trading_mode != "live" and (self.binance_demo or self.binance_testnet):
            which = "BINANCE_DEMO" if self.binance_demo else "BINANCE_TESTNET"
            raise ValueError(
                f"{which}=true has no effect with TRADING_MODE={self.trading_mode}: demo trading is live trading "
                f"with Binance's play money. Set TRADING_MODE=live (with a demo-trading API key) or unset {which}."
            )
        if self.trading_mode == "live" and (self.binance_api_key is None or self.binance_api_secret is None):
            raise ValueError(
                "TRADING_MODE=live needs BINANCE_API_KEY and BINANCE_API_SECRET (or use TRADING_MODE=paper)"
            )
        return self

    @property
    def headless(self) -> bool:
        return self.telegram_bot_token is None

    @property
    def db_path_is_default(self) -> bool:
        """True when ``DB_PATH`` was not set and the per-mode default is used."""
        return self._db_path_is_default

    @property
    def exchange_environment(self) -> str:
        """Which Binance the mode talks to: ``live``, ``demo`` or ``testnet``; ``offline`` for the simulation."""
        if self.trading_mode == "sim":
            return "offline"
        if self.binance_demo:
            return "demo"
        return "testnet" if self.binance_testnet else "live"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a clear ``SettingsError`` instead of a pydantic dump (``overrides`` are
    validated like the environment's values)."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())).upper()
            msg = err.get("msg", "").removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}" if loc else msg)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
