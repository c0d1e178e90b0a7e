"""Settings: built-in defaults < config file < THREADLINE_* environment < command-line flags.

Every setting is one field of `Config`; the TOML file, the environment and the flags all name the
same fields, so a setting exists in one place and is validated once (by msgspec, against the field's
type and limits). Unknown keys and bad values raise `ConfigError` naming the setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

ENV_PREFIX = "THREADLINE_"
DEFAULT_CONFIG_FILE = Path("config/threadline.toml")

FsyncPolicy = Literal["always", "never"]
LogFormat = Literal["plain", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
# "*" or a browser origin exactly as browsers send it: scheme://host[:port], no path or trailing
# slash (Jan's desktop app is a Tauri origin, hence any scheme).
CorsOrigin = Annotated[str, Meta(pattern=r"^(\*|[a-z][a-z0-9+.-]*://[^/\s]+)$")]


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; the message names it."""


# A key a client can send as `Authorization: Bearer <key>`: an empty one (or one with spaces)
# would start a server no request can authenticate to.
ApiKey = Annotated[str, Meta(min_length=1, pattern=r"^\S+$")]


class Config(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every Threadline setting with its built-in default."""

    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 1337
    api_keys: tuple[ApiKey, ...] = ()
    allow_unauthenticated_remote: bool = False
    cors_origins: tuple[CorsOrigin, ...] = ()
    fsync: FsyncPolicy = "always"
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 4 * 1024 * 1024
    max_line_bytes: Annotated[int, Meta(ge=1024)] = 4 * 1024 * 1024
    write_queue_limit: Annotated[int, Meta(ge=1)] = 1024
    watch: bool = True
    watch_debounce_ms: Annotated[int, Meta(ge=0)] = 2
    watch_step_ms: Annotated[int, Meta(ge=1)] = 2
    watch_polling: bool = False
    watch_poll_interval_ms: Annotated[int, Meta(ge=1)] = 50
    sse_ping_seconds: Annotated[float, Meta(gt=0)] = 10.0
    sse_queue_limit: Annotated[int, Meta(ge=1)] = 1000
    sse_queue_mb: Annotated[int, Meta(ge=1)] = 8
    log_level: LogLevel = "info"
    log_format: LogFormat = "plain"
    access_log: bool = False
    workers: Annotated[int, Meta(ge=1, le=64)] = 1
    line_cache_mb: Annotated[int, Meta(ge=0)] = 64
    prove_lines: bool = True

    @property
    def threads_dir(self) -> Path:
        return self.data_dir / "threads"


_LIST_FIELDS = frozenset({"api_keys", "cors_origins"})
# THREADLINE_ variables that are not settings of the server: which config file to read, and
# the names docker-compose.yml (host port, volume) and the test suite (screenshot) read. Any
# other unknown one stops the server, as a misspelt setting would otherwise go unnoticed.
_NOT_SETTINGS = frozenset({"CONFIG", "HOST_PORT", "VOLUME", "UPDATE_SCREENSHOT"})
FIELDS: tuple[str, ...] = Config.__struct_fields__


def _dec_hook(type_: type, obj: Any) -> Any:
    # msgspec has no Path type: a path from the file or the environment arrives as a string.
    if type_ is Path and isinstance(obj, str | Path):
        return Path(obj)
    raise msgspec.ValidationError(f"Expected `{type_.__name__}`, got `{type(obj).__name__}`")


def _to_config(raw: Mapping[str, Any]) -> Config:
    return msgspec.convert(dict(raw), Config, strict=False, dec_hook=_dec_hook)


_AT_PATH = re.compile(r" - at `\$[^`]*`$")


def _convert(raw: Mapping[str, Any], source: Callable[[str], str]) -> dict[str, Any]:
    """Validate a partial mapping of settings one by one, so an error names the setting and where
    it came from (`source(name)`: the file, the environment variable, the flag)."""
    for name, value in raw.items():
        if name not in FIELDS:
            raise ConfigError(f"unknown setting {name!r} in {source(name)}")
        try:
            _to_config({name: value})
        except msgspec.ValidationError as exc:
            reason = _AT_PATH.sub("", str(exc))  # the value is not echoed: it may be a key
            raise ConfigError(f"invalid value for setting {name!r} in {source(name)}: "
                              f"{reason}") from None
    return dict(raw)


def _flag(name: str) -> str:
    return "--api-key" if name == "api_keys" else "--" + name.replace("_", "-")


def from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = raw.pop("threadline", None)
    if isinstance(section, dict):
        raw.update(section)
    return _convert(raw, lambda _: f"config file {path}")


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key[len(ENV_PREFIX):] in _NOT_SETTINGS:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in FIELDS:
            raise ConfigError(f"unknown setting {name!r} in environment variable {key}")
        if name in _LIST_FIELDS:
            raw[name] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            raw[name] = value
    return _convert(raw, lambda name: f"environment variable {ENV_PREFIX}{name.upper()}")


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    """Build the Config: defaults < file < env < flags. `config_file` None means the default
    file if it exists (or THREADLINE_CONFIG)."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    merged: dict[str, Any] = {}
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        merged.update(from_file(config_file))
    elif DEFAULT_CONFIG_FILE.is_file():
        merged.update(from_file(DEFAULT_CONFIG_FILE))
    merged.update(from_env(environ))
    merged.update(_convert(flags, lambda name: f"command-line flag {_flag(name)}"))
    config = _to_config(merged)
    if str(config.data_dir).startswith("~"):  # a shell expands it on the command line only
        # (os.path's: `~nosuchuser` stays as it is, where Path's raises)
        config = msgspec.structs.replace(
            config, data_dir=Path(os.path.expanduser(config.data_dir)))
    check_bind(config)
    return config


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: Config) -> None:
    """Refuse to serve a non-loopback address without a key unless explicitly allowed."""
    if not (is_loopback(config.host) or config.api_keys or config.allow_unauthenticated_remote):
        raise ConfigError(
            f"refusing to bind non-loopback host {config.host!r} with no api_keys; set api_keys "
            "(THREADLINE_API_KEYS / --api-key) or allow_unauthenticated_remote = true "
            "(THREADLINE_ALLOW_UNAUTHENTICATED_REMOTE=true)"
        )
