"""Settings: defaults, a TOML file, GOVSHARE_* environment variables, and the refusal of unusable values."""

from __future__ import annotations

from pathlib import Path

import pytest

from govshare.config import Settings, load_settings
from govshare.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path, monkeypatch):
    """load_settings reads ./govshare.toml: run each test where there is none unless the test writes one."""
    monkeypatch.chdir(tmp_path)


def write_toml(tmp_path: Path, text: str, name: str = "govshare.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.language == "zh-CN"
    assert settings.var_dir == Path("var")
    assert settings.catalog_dir == Path("catalog/demo")
    assert settings.default_page_size == 20 and settings.max_page_size == 100
    assert settings.trace_exporter == "none"
    assert settings.refresh_seconds == 0.5
    assert (settings.web_dir / "graphiql.html").is_file()


def test_platform_url_puts_the_var_folder_in_the_database_url(tmp_path):
    settings = load_settings(env={"GOVSHARE_VAR_DIR": "state"})
    assert settings.platform_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/state/platform.db"
    assert (
        settings.expand("sqlite:///{var}/sources/police.db")
        == f"sqlite:///{tmp_path.resolve()}/state/sources/police.db"
    )


def test_environment_overrides_are_coerced_to_the_setting_type():
    settings = load_settings(
        env={
            "GOVSHARE_PORT": "9001",
            "GOVSHARE_MAX_PAGE_SIZE": "250",
            "GOVSHARE_SOURCE_TIMEOUT_SECONDS": "2.5",
            "GOVSHARE_REFRESH_SECONDS": "0",
            "GOVSHARE_VAR_DIR": "/srv/govshare/var",
            "GOVSHARE_CATALOG_DIR": "catalog/prod",
            "GOVSHARE_LANGUAGE": "en",
            "GOVSHARE_DATABASE_URL": "sqlite+aiosqlite:////data/platform.db",
        }
    )
    assert settings.port == 9001 and isinstance(settings.port, int)
    assert settings.max_page_size == 250
    assert settings.source_timeout_seconds == 2.5 and isinstance(settings.source_timeout_seconds, float)
    assert settings.refresh_seconds == 0.0 and isinstance(settings.refresh_seconds, float)
    assert settings.var_dir == Path("/srv/govshare/var")
    assert settings.catalog_dir == Path("catalog/prod") and isinstance(settings.catalog_dir, Path)
    assert settings.language == "en"
    assert settings.platform_url == "sqlite+aiosqlite:////data/platform.db"


def test_variables_of_other_programs_are_ignored():
    settings = load_settings(env={"PORT": "1", "HOME": "/root", "GOVSHAREPORT": "2"})
    assert settings == Settings()


def test_explicit_overrides_beat_the_environment():
    settings = load_settings(env={"GOVSHARE_PORT": "9001"}, port=9002, host=None)
    assert settings.port == 9002 and settings.host == "127.0.0.1"


def test_toml_file_in_the_working_folder(tmp_path):
    write_toml(tmp_path, 'port = 8100\nlanguage = "en"\nvar_dir = "/tmp/gs-var"\nsource_timeout_seconds = 3\n')
    settings = load_settings(env={})
    assert settings.port == 8100
    assert settings.language == "en"
    assert settings.var_dir == Path("/tmp/gs-var")
    assert settings.source_timeout_seconds == 3.0 and isinstance(settings.source_timeout_seconds, float)


def test_toml_file_named_by_govshare_config_replaces_the_working_folder_one(tmp_path):
    write_toml(tmp_path, "port = 8100\n")
    other = write_toml(tmp_path, "max_page_size = 500\n", name="prod.toml")
    settings = load_settings(env={"GOVSHARE_CONFIG": str(other)})
    assert settings.max_page_size == 500
    assert settings.port == 8000  # ./govshare.toml is not read when GOVSHARE_CONFIG names another file


def test_environment_beats_the_file(tmp_path):
    config = write_toml(tmp_path, 'port = 8100\nhost = "0.0.0.0"\n', name="site.toml")
    settings = load_settings(env={"GOVSHARE_CONFIG": str(config), "GOVSHARE_PORT": "8200"})
    assert settings.port == 8200
    assert settings.host == "0.0.0.0"  # not overridden, so the file's value stands


def test_unknown_toml_key_is_refused_naming_file_and_key(tmp_path):
    config = write_toml(tmp_path, "port = 8100\nmax_pagesize = 50\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(env={})
    assert str(config.name) in str(refused.value)
    assert "unknown setting 'max_pagesize'" in str(refused.value)


def test_toml_syntax_error_is_a_config_error_naming_the_file(tmp_path):
    write_toml(tmp_path, "port = \n")
    with pytest.raises(ConfigError, match=r"govshare\.toml"):
        load_settings(env={})


def test_missing_file_named_by_govshare_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"GOVSHARE_CONFIG names .*nowhere\.toml, which does not exist"):
        load_settings(env={"GOVSHARE_CONFIG": str(tmp_path / "nowhere.toml")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOVSHARE_PORT": "http"}, "setting 'port': cannot read 'http' as int"),
        ({"GOVSHARE_MAX_PAGE_SIZE": "1e3"}, "setting 'max_page_size': cannot read '1e3' as int"),
        ({"GOVSHARE_SOURCE_TIMEOUT_SECONDS": "soon"}, "setting 'source_timeout_seconds': cannot read 'soon' as float"),
        ({"GOVSHARE_REFRESH_SECONDS": ""}, "setting 'refresh_seconds'"),
        ({"GOVSHARE_LANGUAGE": "fr"}, "language must be one of zh-CN, en, not 'fr'"),
        ({"GOVSHARE_TRACE_EXPORTER": "jaeger"}, "trace_exporter must be one of none, console, otlp, not 'jaeger'"),
        ({"GOVSHARE_DEFAULT_PAGE_SIZE": "0"}, "default_page_size must be between 1 and max_page_size"),
        (
            {"GOVSHARE_DEFAULT_PAGE_SIZE": "50", "GOVSHARE_MAX_PAGE_SIZE": "10"},
            "default_page_size must be between 1 and max_page_size",
        ),
    ],
)
def test_bad_environment_values_are_refused_naming_the_setting(env, message):
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env)
    assert message in str(refused.value)


def test_bad_value_in_the_file_is_refused_naming_the_setting(tmp_path):
    write_toml(tmp_path, 'port = "eighty"\n')
    with pytest.raises(ConfigError, match="setting 'port': cannot read 'eighty' as int"):
        load_settings(env={})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port = true", "setting 'port': cannot read True as int"),
        ("max_page_size = 50.9", "setting 'max_page_size': cannot read 50.9 as int"),
        ("source_timeout_seconds = false", "setting 'source_timeout_seconds': cannot read False as float"),
    ],
)
def test_toml_value_of_the_wrong_type_is_refused_not_converted(tmp_path, line, message):
    write_toml(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(env={})
    assert message in str(refused.value)


def test_enforcement_cannot_be_switched_off_by_configuration(tmp_path):
    # The bench's "enforcement off" exists in code only: no file, variable or option of a served deployment reaches it.
    assert load_settings(env={}).enforce is True
    write_toml(tmp_path, "enforce = false\n")
    with pytest.raises(ConfigError, match="enforce"):
        load_settings(env={})
    (tmp_path / "govshare.toml").unlink()
    for value in ("0", "false", "no"):
        with pytest.raises(ConfigError, match="enforce"):
            load_settings(env={"GOVSHARE_ENFORCE": value})
    with pytest.raises(ConfigError, match="enforce"):
        load_settings(env={}, enforce=False)


def test_a_production_server_refuses_to_run_unenforced(tmp_path):
    import dataclasses

    from server import create_app

    settings = dataclasses.replace(load_settings(env={}, var_dir=tmp_path, production=True), enforce=False)
    with pytest.raises(ConfigError, match="enforce"):
        create_app(settings)


# --- GOVSHARE_* variables: a misspelled one is refused, as an unknown key in the file is --------------------


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("GOVSHARE_MAX_PAGESIZE", "GOVSHARE_MAX_PAGE_SIZE"),
        ("GOVSHARE_REFRESH_SECOND", "GOVSHARE_REFRESH_SECONDS"),
        ("GOVSHARE_POLICY_NOTIFY_ULR", "GOVSHARE_POLICY_NOTIFY_URL"),
        ("GOVSHARE_LANGAUGE", "GOVSHARE_LANGUAGE"),
        ("GOVSHARE_REQUIRE_SERVICE", "GOVSHARE_REQUIRE_SERVICES"),
    ],
)
def test_a_misspelled_variable_is_refused_naming_it_and_the_closest_known_one(variable, suggestion):
    with pytest.raises(ConfigError) as refused:
        load_settings(env={variable: "1", "GOVSHARE_PORT": "8100"})
    error = refused.value
    assert error.code == "SETTING_VARIABLE_UNKNOWN_SUGGEST"
    assert error.params == {"variable": variable, "suggestion": suggestion}
    assert variable in str(error) and f"did you mean {suggestion}?" in str(error)
    assert (
        error.text("zh-CN")
        == f"[SETTING_VARIABLE_UNKNOWN_SUGGEST] 环境变量 {variable} 不是已知的配置项，是否应为 {suggestion}？"
    )


def test_an_unknown_variable_like_no_setting_is_refused_without_a_suggestion():
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"GOVSHARE_XYZZY": "1"})
    assert refused.value.code == "SETTING_VARIABLE_UNKNOWN"
    assert "GOVSHARE_XYZZY" in str(refused.value) and "did you mean" not in str(refused.value)


def test_variables_of_other_prefixes_are_not_ours():
    assert load_settings(env={"GOVSHAREX_PORT": "1", "MY_GOVSHARE_PORT": "2", "PORT": "3"}) == Settings()


def test_every_govshare_variable_the_repository_mentions_is_known():
    # The tests, CI and the CLI read GOVSHARE_* variables that are not settings (GOVSHARE_TEST_DB_PREFIX, ...):
    # each must be known, or `make test` itself would be refused by the settings it loads.
    import re

    from govshare.config import OTHER_VARIABLES

    names = {"GOVSHARE_" + f.upper() for f in Settings.__dataclass_fields__} | OTHER_VARIABLES
    files = [
        p
        for p in REPO.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".md", ".toml", "")
        and not any(
            part in (".venv", ".git", "node_modules", "var") or part.endswith(".egg-info")
            for part in p.relative_to(REPO).parts
        )
    ]
    assert REPO / ".ci" / "run" in files and REPO / "Makefile" in files
    mentioned = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for found in re.findall(r"\bGOVSHARE_[A-Z0-9_]*[A-Z0-9]\b", text):
            mentioned.setdefault(found, path.relative_to(REPO))
    # This file's misspellings are meant to be unknown; GOVSHARE_ENFORCE is refused on purpose (docs say so).
    unknown = {
        name: str(path)
        for name, path in mentioned.items()
        if name not in names | {"GOVSHARE_ENFORCE"} and path != Path(__file__).relative_to(REPO)
    }
    assert not unknown, unknown
    assert load_settings(env=dict.fromkeys(OTHER_VARIABLES - {"GOVSHARE_CONFIG"}, "1")) == Settings()


def test_the_command_tells_a_misspelled_variable_in_the_configured_language(tmp_path):
    import os

    from click.testing import CliRunner

    from cli import main

    env = {k: None for k in os.environ if k.startswith("GOVSHARE_")} | {
        "GOVSHARE_VAR_DIR": str(tmp_path),
        "GOVSHARE_PORTT": "8100",
    }
    chinese = CliRunner().invoke(main, ["key", "list"], env=env)
    assert chinese.exit_code == 1
    assert (
        "[SETTING_VARIABLE_UNKNOWN_SUGGEST] 环境变量 GOVSHARE_PORTT 不是已知的配置项，是否应为 GOVSHARE_PORT？"
        in chinese.output
    )
    english = CliRunner().invoke(main, ["key", "list"], env=env | {"GOVSHARE_LANGUAGE": "en"})
    assert "GOVSHARE_PORTT is not a known setting; did you mean GOVSHARE_PORT?" in english.output
