"""Credentials from Docker's config.json and WWW-Authenticate challenges, without a registry."""

from __future__ import annotations

import json

import pytest

from keelwatch.errors import ConfigError
from keelwatch.images.auth import Challenge, Credentials, docker_config_path, find_credentials, parse_challenges

from .registry_helpers import basic_auth_entry


def _config(tmp_path, doc):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_bearer_challenge_as_docker_hub_sends_it():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/nginx:pull"')
    assert parse_challenges([header]) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull"})]


def test_several_challenges_quoting_and_token68():
    got = parse_challenges(['Basic realm="a, b", Bearer realm="x\\"y", error="invalid_token"',
                            "Negotiate abc==, Bearer realm=https://t/token,service=reg"])
    assert got == [
        Challenge("basic", {"realm": "a, b"}),
        Challenge("bearer", {"realm": 'x"y', "error": "invalid_token"}),
        Challenge("negotiate", {}),
        Challenge("bearer", {"realm": "https://t/token", "service": "reg"}),
    ]


def test_malformed_challenge_keeps_what_was_understood():
    assert parse_challenges(['Bearer realm="x", @@@']) == [Challenge("bearer", {"realm": "x"})]
    assert parse_challenges([""]) == []


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"])
def test_docker_hub_keys(tmp_path, key):
    lookup = find_credentials("docker.io", _config(tmp_path, {"auths": {key: basic_auth_entry("u", "p:w")}}))
    assert lookup.credentials == Credentials("u", "p:w")  # only the first colon separates


@pytest.mark.parametrize("key", ["localhost:5000", "http://localhost:5000", "https://localhost:5000/v2/"])
def test_registry_keys_with_scheme_and_path(tmp_path, key):
    lookup = find_credentials("localhost:5000",
                              _config(tmp_path, {"auths": {key: {"username": "u", "password": "p"}}}))
    assert lookup.credentials == Credentials("u", "p")


def test_other_registries_do_not_match(tmp_path):
    lookup = find_credentials("ghcr.io", _config(tmp_path, {"auths": {"docker.io": basic_auth_entry("u", "p")}}))
    assert lookup.credentials is None and lookup.unsupported is None


def test_helpers_are_named_not_run(tmp_path):
    config = _config(tmp_path, {"auths": {"ghcr.io": {}}, "credsStore": "desktop",
                                "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}})
    assert "docker-credential-desktop" in (find_credentials("ghcr.io", config).unsupported or "")
    ecr = find_credentials("123.dkr.ecr.us-east-1.amazonaws.com", config)
    assert ecr.credentials is None and "docker-credential-ecr-login" in (ecr.unsupported or "")


def test_inline_credentials_win_over_a_store(tmp_path):
    config = _config(tmp_path, {"auths": {"ghcr.io": basic_auth_entry("u", "p")}, "credsStore": "desktop"})
    assert find_credentials("ghcr.io", config).credentials == Credentials("u", "p")


def test_identity_tokens_are_reported(tmp_path):
    lookup = find_credentials("ghcr.io", _config(tmp_path, {"auths": {"ghcr.io": {"identitytoken": "t"}}}))
    assert lookup.credentials is None and "identity token" in (lookup.unsupported or "")


def test_bad_configs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not base64"):
        find_credentials("ghcr.io", _config(tmp_path, {"auths": {"ghcr.io": {"auth": "!!!"}}}))
    with pytest.raises(ConfigError, match="not base64"):
        find_credentials("ghcr.io", _config(tmp_path, {"auths": {"ghcr.io": {"auth": "bm9jb2xvbg=="}}}))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot be read"):
        find_credentials("ghcr.io", str(tmp_path / "broken.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        find_credentials("ghcr.io", str(tmp_path / "missing.json"))


def test_config_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "env"))
    assert docker_config_path() == tmp_path / "env" / "config.json"
    assert docker_config_path(str(tmp_path / "x.json")) == tmp_path / "x.json"
    assert docker_config_path(str(tmp_path)) == tmp_path / "config.json"  # a directory, as DOCKER_CONFIG
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert docker_config_path() == tmp_path / "home" / ".docker" / "config.json"


def test_no_config_means_anonymous(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nothing-here"))
    assert find_credentials("ghcr.io").credentials is None


def test_password_is_not_in_repr():
    assert "hunter2" not in repr(Credentials("bob", "hunter2"))
