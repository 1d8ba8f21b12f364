"""Settings: defaults <- YAML <- environment, validated with errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings


def test_defaults_never_choose_random_weights() -> None:
    settings = load_settings(environ={})
    assert settings.weights == "imagenet"
    assert settings.cifar_head == "none"
    assert settings.port == 8080 and settings.host == "127.0.0.1"


def test_yaml_then_environment_override(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("max_batch_size: 16\nmax_wait_ms: 2.5\nweights: random\n")
    settings = load_settings(environ={"CONFIG_FILE": str(config), "VISIONSERVE_MAX_BATCH_SIZE": "4"})
    assert settings.max_batch_size == 4  # environment wins
    assert settings.max_wait_ms == 2.5  # from YAML
    assert settings.weights == "random"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"VISIONSERVE_MAX_BATCH_SIZE": "0"}, "max_batch_size"),
        ({"VISIONSERVE_MAX_BATCH_SIZE": "eight"}, "max_batch_size"),
        ({"VISIONSERVE_DEVICE": "tpu"}, "device"),
        ({"VISIONSERVE_PORT": "70000"}, "port"),
        ({"VISIONSERVE_MAX_BACH_SIZE": "8"}, "VISIONSERVE_MAX_BACH_SIZE"),
    ],
)
def test_bad_environment_values_name_the_key(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=environ)


def test_unknown_yaml_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("max_batch: 8\n")
    with pytest.raises(SettingsError, match="unknown key 'max_batch'"):
        load_settings(environ={}, config_file=config)


def test_yaml_type_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("max_queue: [1, 2]\n")
    with pytest.raises(SettingsError, match="max_queue"):
        load_settings(environ={}, config_file=config)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(environ={"CONFIG_FILE": str(tmp_path / "absent.yaml")})


def test_the_configuration_doc_documents_every_setting() -> None:
    from app.settings import settings_reference

    readme = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for key, _default, _doc in settings_reference():
        assert f"| `{key}` | `VISIONSERVE_{key.upper()}` |" in readme, key


def test_the_test_policy_variable_is_not_a_setting() -> None:
    assert load_settings(environ={"VISIONSERVE_REQUIRE_TOOLS": "1"}) == Settings()


def test_a_request_limit_the_queue_could_never_hold_is_refused() -> None:
    with pytest.raises(SettingsError, match="max_images=32 is not below max_queue=32"):
        load_settings(environ={"VISIONSERVE_MAX_IMAGES": "32", "VISIONSERVE_MAX_QUEUE": "32"})


@pytest.mark.parametrize(
    ("key", "too_low", "too_high"),
    [
        ("header_timeout_s", "0.1", "601"),
        ("body_timeout_s", "0", "3601"),
        ("keepalive_timeout_s", "0.5", "3601"),
        ("max_connections", "0", "65537"),
        ("max_header_bytes", "1023", "1048577"),
    ],
)
def test_connection_limits_are_bounded(key: str, too_low: str, too_high: str) -> None:
    for value in (too_low, too_high):
        with pytest.raises(SettingsError, match=f"{key}=.* is out of range"):
            load_settings(environ={f"VISIONSERVE_{key.upper()}": value})


def test_connection_defaults_outlast_common_load_balancers() -> None:
    settings = load_settings(environ={})
    assert settings.keepalive_timeout_s > 60  # AWS ALB and ingress-nginx close idle connections first
    assert settings.header_timeout_s < settings.body_timeout_s < settings.keepalive_timeout_s
    assert settings.max_header_bytes == 16 * 1024
    assert load_settings(environ={"VISIONSERVE_KEEPALIVE_TIMEOUT_S": "620"}).keepalive_timeout_s == 620


def test_the_client_commands_api_key_variable_is_not_a_setting() -> None:
    assert load_settings(environ={"VISIONSERVE_API_KEY": "a-client-key-0123456789"}) == Settings()


def test_the_metrics_port_must_differ_from_the_main_port() -> None:
    with pytest.raises(SettingsError, match="metrics_port=8080 is the main port"):
        load_settings(environ={"VISIONSERVE_METRICS_PORT": "8080"})
    assert load_settings(environ={"VISIONSERVE_METRICS_PORT": "9090"}).metrics_port == 9090
