"""``registry:REF`` (and bare references): pull from a registry over the OCI distribution API.

Only what a scan needs: manifests by tag or digest, then the config and layer blobs, streamed.
Every byte is checked: a manifest must hash to the registry's ``Docker-Content-Digest`` and, when
pulled by digest, to that digest; configs and layers to their descriptors (layers as they stream,
in ``TarLayerContents``). What the documents mean (index → platform → manifest → config) is
decided in ``manifest.py``, as for every other source.

Transport follows Docker: TLS, verified, unless ``--insecure``, which allows an unverified
certificate and then plain HTTP. Auth follows the distribution spec's token flow: anonymous first;
a 401 carries a ``WWW-Authenticate`` challenge, answered with a bearer token from its realm (using
basic credentials from the docker config if there are any) or with basic credentials directly.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import httpx

from keelwatch import __version__
from keelwatch.errors import (
    AuthError,
    DigestMismatch,
    ImageError,
    InvalidReference,
    RegistryError,
    UnsupportedMediaType,
)
from keelwatch.images.auth import Challenge, CredentialLookup, find_credentials, parse_challenges, require
from keelwatch.images.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    load_json,
    media_type_of,
    resolve_image,
)
from keelwatch.images.reference import parse_reference, parse_source
from keelwatch.images.source import LayerContents, OpenOptions, TarLayerContents
from keelwatch.model import ImageRef, Layer

ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")
DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"  # docker.io is the name; this is where its API answers

TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # read timeout is per chunk, so big layers are fine
ATTEMPTS = 4  # tries of one idempotent request on connection errors, 5xx and 429
BACKOFF = 0.25  # seconds before the first retry, doubled after each
MAX_RETRY_AFTER = 10.0  # a server may ask us to wait; not for longer than this
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 20
MAX_ERROR_BODY = 64 << 10


def registry_host(registry: str) -> str:
    """Where a registry's API answers: Docker Hub's name is not its API host."""
    return DOCKER_HUB_HOST if registry == DOCKER_HUB else registry


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    data: bytes
    doc: dict[str, Any]
    digest: str
    media_type: str


class RegistryClient:
    """One repository on one registry: transport choice, auth, retries and verified fetches."""

    def __init__(self, ref: ImageRef, options: OpenOptions, *, sleep: Any = time.sleep):
        self.ref = ref
        self.host = registry_host(ref.registry)
        self._insecure = options.insecure
        self._docker_config = options.docker_config
        self._sleep = sleep
        self._base: str | None = None  # "https://host" or "http://host", settled by the first request
        self._authorization: str | None = None
        self._lookup: CredentialLookup | None = None
        self._client = httpx.Client(
            timeout=TIMEOUT, verify=not options.insecure, follow_redirects=False,
            headers={"User-Agent": f"keelwatch/{__version__}"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _settle_base(self) -> str:
        """Pick https or http the way Docker does, with one ping of ``/v2/``."""
        if self._base is not None:
            return self._base
        schemes = ("https", "http") if self._insecure else ("https",)
        last: httpx.TransportError | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            try:
                response = self._with_retries(lambda b=base: self._client.get(f"{b}/v2/"), f"{base}/v2/",
                                              retry_tls=False)
            except httpx.TransportError as exc:
                last = exc
                continue
            response.close()
            if response.status_code == 404:
                raise RegistryError(f"{self.host} does not serve the registry API (GET /v2/ answered 404)")
            self._base = base
            return base
        assert last is not None
        if _is_tls_error(last) and not self._insecure:
            raise RegistryError(
                f"TLS with registry {self.host} failed ({_reason(last)})",
                hint="if it serves plain HTTP or has a certificate you cannot verify and you trust it, use --insecure",
            )
        raise RegistryError(f"cannot reach registry {self.host} ({_reason(last)})", retryable=True)

    def _with_retries(self, send: Any, what: str, *, retry_tls: bool = True) -> httpx.Response:
        """Send an idempotent request, again on connection errors and on 5xx/429, with backoff."""
        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = cast(httpx.Response, send())
            except httpx.TransportError as exc:
                # A TLS failure is deterministic (wrong protocol, bad certificate): retrying is waste.
                if attempt == ATTEMPTS or (_is_tls_error(exc) and not retry_tls):
                    raise
                self._sleep(delay)
                delay *= 2
                continue
            if response.status_code in RETRY_STATUS and attempt < ATTEMPTS:
                wait = _retry_after(response, delay)
                response.close()
                self._sleep(wait)
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                 stream: bool = False, follow_redirects: bool = False) -> httpx.Response:
        """A request to this repository, answering one auth challenge if the registry sends it."""
        base = self._settle_base()
        url = f"{base}/v2/{self.ref.repository}/{path}"
        challenged = False
        while True:
            request_headers = dict(headers or {})
            if self._authorization:
                request_headers["Authorization"] = self._authorization

            def send(h: dict[str, str] = request_headers) -> httpx.Response:
                req = self._client.build_request(method, url, headers=h)
                return self._client.send(req, stream=stream, follow_redirects=follow_redirects)

            try:
                response = self._with_retries(send, url)
            except httpx.TransportError as exc:
                raise RegistryError(f"{self.host}: {method} {path} failed ({_reason(exc)})", retryable=True) from exc
            if response.status_code == 401:
                challenges = parse_challenges(response.headers.get_list("www-authenticate"))
                response.close()
                if challenged:
                    raise self._refused()
                self._authenticate(challenges)
                challenged = True
                continue
            if response.status_code == 403:
                response.close()
                raise AuthError(f"{self.host} denies access to {self.ref.repository}", hint=self._auth_hint())
            return response

    # -- auth --------------------------------------------------------------------------------

    def _credentials(self) -> CredentialLookup:
        if self._lookup is None:
            self._lookup = find_credentials(self.ref.registry, self._docker_config)
        return self._lookup

    def _auth_hint(self) -> str:
        lookup = self._credentials()
        if lookup.unsupported:
            return lookup.unsupported
        if lookup.credentials is None:
            return f"run `docker login {self.ref.registry}` or pass --docker-config"
        return f"check the credentials for {self.ref.registry} in {lookup.config_path}"

    def _refused(self) -> AuthError:
        if self._credentials().credentials is None:
            return AuthError(f"{self.ref.registry}/{self.ref.repository} needs credentials", hint=self._auth_hint())
        return AuthError(f"{self.ref.registry} refused the credentials for {self.ref.repository}",
                         hint=self._auth_hint())

    def _authenticate(self, challenges: list[Challenge]) -> None:
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            self._authorization = "Bearer " + self._fetch_token(by_scheme["bearer"])
        elif "basic" in by_scheme:
            self._authorization = require(self._credentials(), self.ref.registry).basic_header()
        else:
            offered = ", ".join(c.scheme for c in challenges) or "none"
            raise AuthError(f"{self.host} asks for an authentication scheme keelwatch does not speak ({offered})")

    def _fetch_token(self, challenge: Challenge) -> str:
        """The token exchange of the distribution spec: GET realm?service=…&scope=… → {"token": …}."""
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self.host} sent a bearer challenge without a usable realm ({realm!r})")
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        # The challenge names the scope it wants; a bare /v2/ challenge does not, so ask for pull.
        scopes = challenge.params.get("scope") or f"repository:{self.ref.repository}:pull"
        params.extend(("scope", scope) for scope in scopes.split(" ") if scope)
        headers = {}
        creds = self._credentials().credentials
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        try:
            response = self._with_retries(
                lambda: self._client.get(realm, params=params, headers=headers, follow_redirects=True), realm)
        except httpx.TransportError as exc:
            raise AuthError(f"token server {realm} cannot be reached ({_reason(exc)})", retryable=True) from exc
        if response.status_code in (401, 403):
            raise self._refused()
        if response.status_code != 200:
            raise AuthError(f"token server {realm} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise AuthError(f"token server {realm} did not answer with JSON") from exc
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"token server {realm} answered without a token")
        return token

    # -- fetches -----------------------------------------------------------------------------

    def _fail(self, response: httpx.Response, what: str) -> RegistryError:
        """A one-line error from a failed response, with the registry's own error code if it sent one."""
        try:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            body = b""
        finally:
            response.close()
        detail = _registry_error(body)
        status = response.status_code
        if status == 404:
            return RegistryError(f"{what}: not found" + (f" ({detail})" if detail else ""))
        text = f"{what}: {self.host} answered {status} {response.reason_phrase}" + (f" ({detail})" if detail else "")
        return RegistryError(text, retryable=status in RETRY_STATUS)

    def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        parts, size = [], 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_JSON_BLOB:
                    raise ImageError(f"{what}: more than {MAX_JSON_BLOB} bytes, too large for a manifest or config")
                parts.append(chunk)
        except httpx.TransportError as exc:
            raise RegistryError(f"{what}: connection lost ({_reason(exc)})", retryable=True) from exc
        finally:
            response.close()
        return b"".join(parts)

    def get_manifest(self, reference: str, accept: str = ACCEPT_MANIFESTS) -> FetchedManifest:
        """A manifest or index by tag or digest, its bytes verified against every digest we know."""
        what = self._label(reference)
        response = self._request("GET", f"manifests/{reference}", headers={"Accept": accept}, stream=True)
        if response.status_code == 404:
            response.close()
            raise RegistryError(f"{what}: no such image or tag", hint=f"check the name and tag on {self.ref.registry}")
        if response.status_code != 200:
            raise self._fail(response, what)
        data = self._read_capped(response, what)
        digest = self._verify_manifest(data, reference, response.headers.get("docker-content-digest"), what)
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if content_type in SCHEMA1_TYPES:
            raise UnsupportedMediaType(f"{what}: Docker schema 1 manifests are not supported",
                                       hint="push the image again with a current client")
        doc = load_json(data, f"{what}: manifest")
        if not doc.get("mediaType") and content_type in INDEX_TYPES + MANIFEST_TYPES:
            doc["mediaType"] = content_type  # the bytes are verified; the header only fills a gap
        return FetchedManifest(data, doc, digest, media_type_of(doc))

    def _verify_manifest(self, data: bytes, reference: str, header: str | None, what: str) -> str:
        if header:
            algorithm = header.split(":", 1)[0]
            if algorithm not in ("sha256", "sha512"):
                raise RegistryError(f"{what}: unsupported Docker-Content-Digest {header!r}")
            actual = digest_of(data, algorithm)
            if actual != header:
                raise DigestMismatch(f"{what}: manifest content is {actual}, but the registry says it is {header}",
                                     hint="the registry or something between us altered it")
        if _is_digest(reference):
            actual = digest_of(data, reference.split(":", 1)[0])
            if actual != reference:
                raise DigestMismatch(f"{what}: manifest content is {actual}, not the digest asked for",
                                     hint="the registry or something between us altered it")
            return reference
        return header or digest_of(data)

    def get_blob(self, digest: str) -> bytes:
        """A small blob (a config), verified against its digest."""
        what = self._label(digest, blob=True)
        response = self._request("GET", f"blobs/{digest}", stream=True, follow_redirects=True)
        if response.status_code != 200:
            raise self._fail(response, what)
        data = self._read_capped(response, what)
        algorithm = digest.split(":", 1)[0]
        if algorithm not in ("sha256", "sha512"):
            raise ImageError(f"{what}: unsupported digest algorithm")
        actual = digest_of(data, algorithm)
        if actual != digest:
            raise DigestMismatch(f"{what}: content is {actual}, but it was referenced as {digest}",
                                 hint="the image was altered or corrupted")
        return data

    @contextmanager
    def open_blob(self, digest: str, size: int) -> Iterator[BinaryIO]:
        """A large blob (a layer) as a stream; the reader checks its size, the caller its digest."""
        what = self._label(digest, blob=True)
        response = self._request("GET", f"blobs/{digest}", stream=True, follow_redirects=True,
                                 headers={"Accept-Encoding": "identity"})
        if response.status_code != 200:
            raise self._fail(response, what)
        try:
            yield cast(BinaryIO, _BlobReader(response, size, what))
        finally:
            response.close()

    def head_manifest(self, reference: str) -> tuple[str, str]:
        """(digest, media type) of a tag or digest; HEAD when the registry says enough, else GET."""
        what = self._label(reference)
        response = self._request("HEAD", f"manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS})
        response.close()
        if response.status_code == 404:
            raise RegistryError(f"{what}: no such image or tag", hint=f"check the name and tag on {self.ref.registry}")
        header = response.headers.get("docker-content-digest")
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if response.status_code == 200 and header and content_type in INDEX_TYPES + MANIFEST_TYPES:
            if _is_digest(reference) and header != reference:
                raise DigestMismatch(f"{what}: the registry says the manifest is {header}")
            return header, content_type
        # Some registries answer HEAD with 405 or without the digest header: the GET verifies bytes.
        fetched = self.get_manifest(reference)
        return fetched.digest, fetched.media_type

    def _label(self, reference: str, *, blob: bool = False) -> str:
        name = f"{self.ref.registry}/{self.ref.repository}"
        if blob:
            return f"{name} blob {reference[:19]}"
        return f"{name}@{reference}" if _is_digest(reference) else f"{name}:{reference}"


class _BlobReader:
    """A file-like read() over a streaming response that refuses more bytes than the descriptor says."""

    def __init__(self, response: httpx.Response, size: int, what: str):
        self._chunks = response.iter_bytes(CHUNK)
        self._expected = size
        self._what = what
        self._pending = b""
        self._received = 0
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        parts = [self._pending]
        have = len(self._pending)
        while (n < 0 or have < n) and not self._eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                if self._expected and self._received < self._expected:
                    raise RegistryError(f"{self._what}: got {self._received} of {self._expected} bytes",
                                        retryable=True) from None
                break
            except httpx.TransportError as exc:
                raise RegistryError(f"{self._what}: connection lost ({_reason(exc)})", retryable=True) from exc
            self._received += len(chunk)
            # A size check bounds what a hostile registry can make us hash; the digest check is final.
            if self._expected and self._received > self._expected:
                raise DigestMismatch(f"{self._what}: more than the {self._expected} bytes its descriptor says",
                                     hint="the image was altered or corrupted")
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if n < 0:
            self._pending = b""
            return data
        self._pending = data[n:]
        return data[:n]


class RegistryImage:
    """An image pulled from a registry: manifests and config now, layers streamed when walked."""

    def __init__(self, client: RegistryClient, *, reference: str, options: OpenOptions):
        self._client = client
        self._options = options
        ref = client.ref
        top = client.get_manifest(ref.digest or ref.tag or "latest")
        self.image, self.config = resolve_image(
            top.doc, self._fetch, reference=reference, name=ref.name, source_kind="registry",
            want=options.platform, top_digest=top.digest,
        )

    def _fetch(self, desc: dict[str, Any]) -> bytes:
        digest = str(desc.get("digest", ""))
        if not _is_digest(digest):
            raise ImageError(f"{self._client.ref.name}: descriptor with an invalid digest {digest!r}")
        media_type = str(desc.get("mediaType") or "")
        if media_type in INDEX_TYPES + MANIFEST_TYPES or (not media_type and "platform" in desc):
            accept = ACCEPT_MANIFESTS if not media_type else f"{media_type}, {ACCEPT_MANIFESTS}"
            return self._client.get_manifest(digest, accept).data
        return self._client.get_blob(digest)

    def layer_contents(self) -> Iterator[AbstractContextManager[LayerContents]]:
        for layer in self.image.layers:
            yield self._layer(layer)

    @contextmanager
    def _layer(self, layer: Layer) -> Iterator[LayerContents]:
        with self._client.open_blob(layer.digest, layer.size) as raw:
            yield TarLayerContents(layer, raw, self._options.limits, verify_digest=layer.digest)

    def close(self) -> None:
        self._client.close()


class RegistrySource:
    scheme = "registry"

    def open(self, location: str, reference: str, options: OpenOptions) -> RegistryImage:
        client = RegistryClient(parse_reference(location), options)
        try:
            return RegistryImage(client, reference=reference, options=options)
        except BaseException:
            client.close()
            raise


def resolve_tag(reference: str | ImageRef, options: OpenOptions | None = None) -> tuple[str, str]:
    """The digest and media type a tag points to now (an index digest for a multi-arch image).

    Costs one HEAD request where the registry answers it fully; no layer is read.
    """
    if isinstance(reference, ImageRef):
        ref = reference
    else:
        spec = parse_source(reference)
        if spec.scheme != "registry":
            raise InvalidReference(f"{reference}: only registry references have tags to resolve")
        ref = parse_reference(spec.location)
    with RegistryClient(ref, options or OpenOptions()) as client:
        return client.head_manifest(ref.digest or ref.tag or "latest")


def _is_digest(reference: str) -> bool:
    return ":" in reference


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore wraps ssl; the chain is short
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return default


def _registry_error(body: bytes) -> str:
    """``{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "…"}]}`` → ``MANIFEST_UNKNOWN: …``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    return ": ".join(str(first[k]) for k in ("code", "message") if first.get(k))
