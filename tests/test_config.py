"""Settings: precedence flag > env > file > default, rejection naming the setting and its source,
the non-loopback guard, and docs that list every setting with its true default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from service.__main__ import parse_args
from service.config import FIELDS, Config, ConfigError, load

ROOT = Path(__file__).resolve().parent.parent


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(text)
    return path


def test_precedence_is_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 2001\nlog_level = "warning"\nfsync = "never"\n'
                                'data_dir = "/from/file"\n')
    env = {"THREADLINE_PORT": "2002", "THREADLINE_LOG_LEVEL": "error"}
    config = load({"port": 2003}, environ=env, config_file=path)
    assert config.port == 2003  # flag beats env and file
    assert config.log_level == "error"  # env beats file
    assert config.fsync == "never"  # file beats default
    assert config.data_dir == Path("/from/file")
    assert config.max_body_bytes == Config().max_body_bytes  # default


def test_settings_may_sit_under_a_threadline_table(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[threadline]\nport = 2004\nwatch = false\n")
    config = load({}, environ={}, config_file=path)
    assert (config.port, config.watch) == (2004, False)


def test_config_file_may_be_named_by_environment(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 2005\n")
    assert load({}, environ={"THREADLINE_CONFIG": str(path)}).port == 2005


def test_env_lists_are_comma_separated_and_bools_parse() -> None:
    env = {"THREADLINE_API_KEYS": "k1, k2,,k3", "THREADLINE_WATCH": "false",
           "THREADLINE_CORS_ORIGINS": "http://localhost:3000,tauri://localhost"}
    config = load({}, environ=env)
    assert config.api_keys == ("k1", "k2", "k3")
    assert config.watch is False
    assert config.cors_origins == ("http://localhost:3000", "tauri://localhost")


def test_repeated_api_key_flags_accept_several_keys() -> None:
    assert load({"api_keys": ["a", "b"]}, environ={}).api_keys == ("a", "b")


@pytest.mark.parametrize(("text", "expected"), [
    ("bogus = 1\n", r"unknown setting 'bogus' in config file .*threadline\.toml"),
    ("[threadline]\nprot = 1\n", r"unknown setting 'prot' in config file"),
    ('port = "high"\n', r"invalid value for setting 'port' in config file .*: Expected `int`"),
    ("port = 70000\n", r"setting 'port' in config file .*<= 65535"),
    ('fsync = "sometimes"\n', r"setting 'fsync' in config file .*'sometimes'"),
    ("max_body_bytes = 10\n", r"setting 'max_body_bytes' in config file .*>= 1024"),
    ('cors_origins = ["http://localhost:3000/"]\n', r"setting 'cors_origins' in config file"),
    ("port = \n", r"is not valid TOML"),
])
def test_bad_config_file_is_rejected_naming_the_setting(tmp_path: Path, text: str,
                                                        expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load({}, environ={}, config_file=write_toml(tmp_path, text))


@pytest.mark.parametrize(("env", "expected"), [
    ({"THREADLINE_PROT": "1"}, r"unknown setting 'prot' in environment variable THREADLINE_PROT"),
    ({"THREADLINE_PORT": "abc"},
     r"invalid value for setting 'port' in environment variable THREADLINE_PORT"),
    ({"THREADLINE_WATCH": "maybe"}, r"setting 'watch' in environment variable THREADLINE_WATCH"),
    ({"THREADLINE_LOG_FORMAT": "xml"}, r"setting 'log_format' in environment variable"),
])
def test_bad_environment_is_rejected_naming_the_variable(env: dict[str, str],
                                                         expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load({}, environ=env)


def test_the_projects_own_other_variables_are_not_settings() -> None:
    """docker-compose.yml's host port and volume and the suite's screenshot switch share the
    prefix: a shell that exports the compose `.env` must still start the server."""
    env = {"THREADLINE_HOST_PORT": "8080", "THREADLINE_VOLUME": "v",
           "THREADLINE_UPDATE_SCREENSHOT": "1", "THREADLINE_PORT": "1400"}
    assert load({}, environ=env).port == 1400


def test_a_data_folder_under_home_is_expanded(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'data_dir = "~/jan/data"\n')
    assert load({}, environ={}, config_file=path).data_dir == Path.home() / "jan" / "data"
    assert load({}, environ={"THREADLINE_DATA_DIR": "~"}).data_dir == Path.home()
    unknown = "~no_such_user_here/data"  # no such home: the path as given, as a shell leaves it
    assert load({"data_dir": Path(unknown)}, environ={}).data_dir == Path(unknown)


def test_bad_flag_is_rejected_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"setting 'port' in command-line flag --port"):
        load({"port": 99999}, environ={})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load({}, environ={}, config_file=tmp_path / "nope.toml")


def test_error_does_not_echo_an_api_key_value() -> None:
    with pytest.raises(ConfigError) as info:
        load({"api_keys": [12345678]}, environ={})
    assert "12345678" not in str(info.value)


@pytest.mark.parametrize("where", ["flag", "file", "env"])
@pytest.mark.parametrize("key", ["", "two words", "tab\tkey"])
def test_a_key_no_client_could_send_is_refused(tmp_path: Path, where: str, key: str) -> None:
    """An empty key (or one with spaces) started a server to which nothing could authenticate."""
    with pytest.raises(ConfigError, match="invalid value for setting 'api_keys'") as info:
        if where == "flag":
            load({"api_keys": [key]}, environ={})
        elif where == "file":
            toml = write_toml(tmp_path, f"api_keys = [{json.dumps(key)}]")
            load({}, environ={}, config_file=toml)
        else:  # the environment drops empty items of its comma list: a key with a space
            load({}, environ={"THREADLINE_API_KEYS": key or "a b"})
    assert "two words" not in str(info.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_non_loopback_host_without_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="refusing to bind non-loopback host"):
        load({"host": host}, environ={})


def test_the_refusal_names_the_environment_variable_a_container_sets() -> None:
    with pytest.raises(ConfigError, match="THREADLINE_ALLOW_UNAUTHENTICATED_REMOTE=true"):
        load({"host": "0.0.0.0"}, environ={})


@pytest.mark.parametrize(("argv", "access_log"), [
    ([], True), (["--access-log"], True), (["--no-access-log"], False)])
def test_the_access_log_flag_turns_it_on_and_off_over_the_environment(
        argv: list[str], access_log: bool) -> None:
    """`THREADLINE_ACCESS_LOG=true` (or the file) can be overridden from the command line."""
    args = parse_args(["serve", *argv])
    config = load({"access_log": args.access_log}, environ={"THREADLINE_ACCESS_LOG": "true"})
    assert config.access_log is access_log


@pytest.mark.parametrize("extra", [{"THREADLINE_API_KEYS": "k"},
                                   {"THREADLINE_ALLOW_UNAUTHENTICATED_REMOTE": "true"}])
def test_non_loopback_host_with_key_or_explicit_override_is_allowed(extra: dict[str, str]
                                                                    ) -> None:
    assert load({"host": "0.0.0.0"}, environ=extra).host == "0.0.0.0"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_host_needs_no_key(host: str) -> None:
    assert load({"host": host}, environ={}).api_keys == ()


def test_cli_refuses_to_start_on_bad_setting_with_exit_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "THREADLINE_FSYNC": "sometimes"}
    proc = subprocess.run([sys.executable, "-m", "service", "--data-dir", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "setting 'fsync' in environment variable THREADLINE_FSYNC" in proc.stderr


def test_cli_refuses_non_loopback_host_without_key(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "service", "--host", "0.0.0.0",
                           "--data-dir", str(tmp_path)], cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to bind non-loopback host '0.0.0.0'" in proc.stderr


# --- docs -----------------------------------------------------------------------------------------

def uncommented_settings() -> str:
    """The commented-out `# name = value` lines of config/threadline.toml, uncommented."""
    text = (ROOT / "config" / "threadline.toml").read_text()
    return "\n".join(m.group(1) for m in re.finditer(r"^# ([a-z_]+ = .+)$", text, re.M))


def test_config_file_documents_every_setting_with_its_true_default(tmp_path: Path) -> None:
    toml_text = uncommented_settings()
    assert sorted(tomllib.loads(toml_text)) == sorted(FIELDS)
    assert load({}, environ={}, config_file=write_toml(tmp_path, toml_text)) == Config()


def test_shipped_config_file_loads_and_changes_nothing() -> None:
    assert load({}, environ={}, config_file=ROOT / "config" / "threadline.toml") == Config()


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert sorted(set(FIELDS) - rows) == []
    assert sorted(rows - set(FIELDS)) == []
