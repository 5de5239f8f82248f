"""Every setting in one place: its name, type, default and whether CONFIG SET may change it.

A setting has the same name everywhere (docs/architecture.md): the key in the TOML file, the flag
``--<name-with-dashes>`` and the CONFIG GET/SET parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from taskstore.server.users import User, UserConfigError, parse_users
from taskstore.store import SecurityConfig, StoreConfig

if TYPE_CHECKING:
    from pathlib import Path


class ConfigError(ValueError):
    """A bad setting; the message is the one line the CLI prints."""


_UNITS = {
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_int(name: str, value: Any, *, minimum: int = 0, memory: bool = False) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip().lower()
        mult = 1
        if memory:
            for unit in ("kb", "mb", "gb", "k", "m", "g", "b"):
                if text.endswith(unit) and text[: -len(unit)].strip().isdigit():
                    mult = _UNITS[unit]
                    text = text[: -len(unit)].strip()
                    break
        try:
            n = int(text) * mult
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {n}")
    return n


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true"):
        return True
    if text in ("no", "false"):
        return False
    raise ConfigError(f"{name}: expected yes/no or true/false, got {value!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # int, memory, bool, optbool, str, path, loglevel, bind, fsync, filename, ...
    default: Any
    runtime: bool  # CONFIG SET may change it
    help: str
    minimum: int = 0
    maximum: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        if self.kind in ("int", "memory"):
            n = parse_int(self.name, value, minimum=self.minimum, memory=self.kind == "memory")
            if self.maximum is not None and n > self.maximum:
                raise ConfigError(f"{self.name}: must be at most {self.maximum}, got {n}")
            return n
        if self.kind == "bool":
            return parse_bool(self.name, value)
        if self.kind == "optbool":
            return None if value in (None, "") else parse_bool(self.name, value)
        if self.kind == "loglevel":
            text = str(value).lower()
            if text not in LOGLEVELS:
                raise ConfigError(
                    f"{self.name}: expected one of {', '.join(LOGLEVELS)}, got {value!r}"
                )
            return text
        if self.kind == "mcp_version":
            text = str(value)
            if text not in MCP_VERSIONS:
                raise ConfigError(
                    f"{self.name}: unsupported MCP version {value!r} "
                    f"(supported: {', '.join(MCP_VERSIONS)})"
                )
            return text
        if self.kind == "loop":
            text = str(value).lower()
            if text not in ("auto", "asyncio", "uvloop"):
                raise ConfigError(f"{self.name}: expected auto, asyncio or uvloop, got {value!r}")
            return text
        if self.kind == "fsync":
            text = str(value).lower()
            if text not in ("always", "everysec", "no"):
                raise ConfigError(f"{self.name}: expected always, everysec or no, got {value!r}")
            return text
        if self.kind == "filename":
            text = str(value)
            if not text or "/" in text or text in (".", ".."):
                raise ConfigError(f"{self.name}: must be a file name, not a path, got {value!r}")
            return text
        if self.kind == "bind":
            hosts = str(value).split()
            if not hosts:
                raise ConfigError(f"{self.name}: expected one or more addresses")
            return " ".join(hosts)
        if self.kind == "path" and isinstance(value, os.PathLike):
            return os.fspath(value)  # Server(dir=tmp_path): a pathlib.Path is a directory too
        if not isinstance(value, str | int):
            raise ConfigError(f"{self.name}: expected a string, got {value!r}")
        return str(value)

    def render(self, value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if value is None:
            return ""
        return str(value)


LOGLEVELS = ("debug", "verbose", "notice", "warning")
#: The MCP task generations a connection can render (docs/commands.md); TASK.VERSION picks one.
MCP_VERSIONS = ("2025-11-25", "2026-07-28")
#: Python logging levels for Redis's log level names
LOG_LEVELS = {"debug": 10, "verbose": 20, "notice": 20, "warning": 30}

_store_defaults = StoreConfig()

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("bind", "bind", "127.0.0.1", False, "addresses to listen on (space separated)"),
        Setting("port", "int", 6379, False, "TCP port (0 picks a free one)", 0, 65535),
        Setting(
            "console_port",
            "int",
            0,
            True,
            "HTTP port of the browser console on the bind addresses (0 = off; docs/console.md)",
            0,
            65535,
        ),
        Setting("requirepass", "str", "", True, "password of the default user"),
        Setting("protected_mode", "bool", True, False, "refuse non-loopback binds without auth"),
        Setting(
            "allow_anonymous",
            "optbool",
            None,
            True,
            "let unauthenticated clients act as owner 'local' (default: yes on loopback)",
        ),
        Setting("maxclients", "int", 10000, True, "most clients connected at once", 1),
        Setting("timeout", "int", 0, True, "close clients idle this many seconds (0 = never)"),
        Setting("loglevel", "loglevel", "notice", True, "debug, verbose, notice or warning"),
        Setting("proto_max_bulk_len", "memory", 64 * 1024 * 1024, True, "largest bulk argument", 1),
        Setting(
            "client_query_buffer_limit",
            "memory",
            1024 * 1024 * 1024,
            True,
            "most unparsed request bytes held for one client",
            1024,
        ),
        Setting(
            "client_output_high_water",
            "memory",
            1024 * 1024,
            True,
            "unsent reply bytes at which a client's requests stop being read",
            1024,
        ),
        Setting(
            "pubsub_output_limit",
            "memory",
            32 * 1024 * 1024,
            True,
            "unsent pub/sub bytes at which a subscriber that does not read is disconnected",
            1024,
        ),
        Setting("hz", "int", 10, True, "background expiry sweeps per second", 1),
        Setting(
            "mcp_version",
            "mcp_version",
            "2026-07-28",
            True,
            "MCP task generation new connections render (TASK.VERSION changes one)",
        ),
        Setting(
            "event_loop", "loop", "auto", False, "auto (uvloop when installed), asyncio or uvloop"
        ),
        Setting("appendonly", "bool", False, False, "keep every task in an append-only file"),
        Setting("dir", "path", ".", False, "directory of the append-only file"),
        Setting("appendfilename", "filename", "taskstore.aof", False, "append-only file name"),
        Setting("appendfsync", "fsync", "everysec", True, "always, everysec or no"),
        Setting(
            "aof_load_truncated",
            "bool",
            True,
            True,
            "start from a file whose last entry is torn, cutting it off (no: refuse)",
        ),
        Setting(
            "auto_aof_rewrite_percentage",
            "int",
            100,
            True,
            "rewrite when the file grew this much over its size after the last rewrite (0 = off)",
        ),
        Setting(
            "auto_aof_rewrite_min_size",
            "memory",
            64 * 1024 * 1024,
            True,
            "no automatic rewrite below this file size",
        ),
        *[
            Setting(
                f.name,
                "int",
                getattr(_store_defaults, f.name),
                f.name != "shards",  # every owner's tasks would have to move
                f"task store: {f.name.replace('_', ' ')}",
            )
            for f in fields(StoreConfig)
        ],
    ]
}

STORE_SETTINGS = frozenset(f.name for f in fields(StoreConfig))


#: Addresses ``ipaddress`` would call loopback, answered without importing it at start-up
_LOOPBACK_LITERALS = frozenset({"127.0.0.1", "::1"})


def _loopback_only(bind: str) -> bool:
    for host in bind.split():
        if host == "localhost" or host.lstrip("-").strip("[]") in _LOOPBACK_LITERALS:
            continue
        import ipaddress  # only for other addresses than the default's

        try:
            if not ipaddress.ip_address(host.lstrip("-").strip("[]")).is_loopback:
                return False
        except ValueError:
            return False
    return True


@dataclass
class ServerConfig:
    """The effective configuration of one server (mutable: CONFIG SET changes it)."""

    values: dict[str, Any] = field(
        default_factory=lambda: {n: s.default for n, s in SETTINGS.items()}
    )
    #: configured users by name (``[[users]]`` in the file, ``users=[...]`` in-process)
    users: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def set_users(self, entries: Any) -> None:
        try:
            self.users = parse_users(entries)
        except UserConfigError as e:
            raise ConfigError(str(e)) from None

    @classmethod
    def build(cls, file_values: dict[str, Any] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then the file, then explicit settings; every value checked."""
        cfg = cls()
        for source in (file_values or {}, overrides):
            for name, value in source.items():
                cfg.set(name, value)
        cfg.validate()
        return cfg

    def set(self, name: str, value: Any) -> None:
        if name == "users":
            self.set_users(value)
            return
        setting = SETTINGS.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting '{name}'")
        self.values[name] = setting.parse(value)

    def validate(self) -> None:
        try:
            self.store_config()
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None

    def check_protected_mode(self) -> None:
        """Redis's protected mode: no non-loopback address for unauthenticated clients."""
        if (
            self.protected_mode
            and not self.loopback_only
            and not self.requirepass
            and not self.users
        ):
            raise ConfigError(
                f"refusing to listen on {self.bind} with no password and no users: set "
                "--requirepass or add [[users]], or --protected-mode no if the network is trusted"
            )

    @property
    def loopback_only(self) -> bool:
        return _loopback_only(self.values["bind"])

    @property
    def anonymous(self) -> bool:
        """Whether unauthenticated clients may use tasks (docs/security.md)."""
        if self.values["requirepass"]:
            return False
        explicit = self.values["allow_anonymous"]
        return self.loopback_only if explicit is None else bool(explicit)

    def store_config(self) -> StoreConfig:
        return StoreConfig(**{n: self.values[n] for n in STORE_SETTINGS})

    def security_config(self) -> SecurityConfig:
        return SecurityConfig(allow_anonymous=self.anonymous)

    def render(self, name: str) -> str:
        return SETTINGS[name].render(self.values[name])


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into setting values (``[[users]]`` kept as is)."""
    import tomllib  # only with a config file: 1.9 ms of every start-up otherwise

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror}") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "users":
            try:
                parse_users(value)  # checked here so the error names the file
            except UserConfigError as e:
                raise ConfigError(f"config file {path}: {e}") from None
            out[key] = value
            continue
        if key not in SETTINGS:
            raise ConfigError(f"config file {path}: unknown setting '{key}'")
        out[key] = value
    return out
