"""Registry credentials and challenges: Docker's ``config.json`` and ``WWW-Authenticate`` headers.

Kept apart from the HTTP client so both can be tested without a registry. Credentials are looked
up only when a registry asks for them: a public image pulls anonymously even if the user's
config names a credential helper we cannot run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from keelwatch.errors import AuthError, ConfigError

# Docker Hub is spelled many ways in config files; they all mean one registry.
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class CredentialLookup:
    """What the docker config holds for one registry.

    ``unsupported`` explains why credentials that probably exist could not be used (a credential
    helper, an identity token); it is reported only if the registry then refuses us.
    """

    credentials: Credentials | None = None
    unsupported: str | None = None
    config_path: str | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lowercased: "bearer", "basic"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def docker_config_path(explicit: str | None = None) -> Path:
    """``--docker-config`` (a file or a directory), else ``$DOCKER_CONFIG/config.json``, else ``~/.docker``."""
    if explicit:
        path = Path(explicit).expanduser()
        return path / "config.json" if path.is_dir() else path
    env_dir = os.environ.get("DOCKER_CONFIG")
    if env_dir:
        return Path(env_dir).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def _registry_key(text: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://host:5000`` → ``host:5000``."""
    host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", text.strip()).split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_ALIASES else host


def find_credentials(registry: str, docker_config: str | None = None) -> CredentialLookup:
    """Credentials for ``registry`` (as in a normalised reference: ``docker.io``, ``host:5000``)."""
    path = docker_config_path(docker_config)
    if not path.is_file():
        if docker_config:
            raise ConfigError(f"docker config {path} does not exist")
        return CredentialLookup()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"docker config {path} cannot be read ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"docker config {path}: expected a JSON object")
    want = _registry_key(registry)
    where = str(path)

    helpers = doc.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _registry_key(str(key)) == want:
                return CredentialLookup(unsupported=_helper_note(str(helper), where), config_path=where)

    auths = doc.get("auths") or {}
    entry = None
    if isinstance(auths, dict):
        for key, value in auths.items():
            if _registry_key(str(key)) == want and isinstance(value, dict):
                entry = value
                break
    if entry:
        creds = _entry_credentials(entry, want, where)
        if creds is not None:
            return CredentialLookup(creds, config_path=where)
        if entry.get("identitytoken"):
            return CredentialLookup(
                unsupported=f"{where} holds an identity token for {want}, which keelwatch cannot use yet; "
                "add a username and password (or `auth`) for it",
                config_path=where)

    store = doc.get("credsStore")
    if store:
        # With a store, `docker login` leaves an empty entry in auths and keeps the secret outside.
        return CredentialLookup(unsupported=_helper_note(str(store), where), config_path=where)
    return CredentialLookup(config_path=where)


def _helper_note(helper: str, where: str) -> str:
    return (f"credentials are kept by the credential helper docker-credential-{helper} ({where}), which "
            "keelwatch does not run; write them to a docker config with `auths` and pass it with --docker-config")


def _entry_credentials(entry: dict[str, object], registry: str, where: str) -> Credentials | None:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"docker config {where}: auths[{registry}].auth is not base64 of user:password") from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"docker config {where}: auths[{registry}].auth is not base64 of user:password")
        return Credentials(user, password)
    username, secret = entry.get("username"), entry.get("password")
    if isinstance(username, str) and username and isinstance(secret, str):
        return Credentials(username, secret)
    return None


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE = re.compile(r"[^,\s]+")  # unquoted values: a token by the RFC, but realms are sent as bare URLs too
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=\s*(?:,|$))")


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` values (RFC 7235): ``Bearer realm="…",service="…",scope="…"``.

    One header may hold several challenges separated by commas, so a token not followed by ``=``
    starts a new challenge.
    """
    out: list[Challenge] = []
    for header in headers:
        pos, current = 0, None
        while pos < len(header):
            while pos < len(header) and header[pos] in " \t,":
                pos += 1
            m = _TOKEN.match(header, pos)
            if not m:
                break  # malformed: keep what was understood
            token, pos = m.group(0), m.end()
            rest = pos
            while rest < len(header) and header[rest] in " \t":
                rest += 1
            if rest < len(header) and header[rest] == "=" and current is not None:
                pos = rest + 1
                while pos < len(header) and header[pos] in " \t":
                    pos += 1
                q = _QUOTED.match(header, pos)
                if q:
                    value = re.sub(r"\\(.)", r"\1", q.group(1))
                    pos = q.end()
                else:
                    v = _BARE.match(header, pos)
                    value = v.group(0) if v else ""
                    pos = v.end() if v else pos
                current.params[token.lower()] = value
            else:
                current = Challenge(token.lower(), {})
                out.append(current)
                # A token68 credential (``Basic abc==``) belongs to the scheme, not a parameter.
                t68 = _TOKEN68.match(header, rest)
                if t68:
                    pos = t68.end()
    return out


def require(lookup: CredentialLookup, registry: str) -> Credentials:
    if lookup.credentials is not None:
        return lookup.credentials
    raise AuthError(f"{registry} asks for credentials and none are configured",
                    hint=lookup.unsupported or f"run `docker login {registry}` or pass --docker-config")
