"""Typed errors: one base, one class per area, each with a one-line hint and a retry flag.

An expected outcome (``--fail-on`` breached, nothing found) is not an error. Errors live in the
library, never in ``cli/``: the CLI only prints ``str(error)`` and picks the exit code.
"""

from __future__ import annotations


class KeelwatchError(Exception):
    """Base of every error keelwatch raises on purpose."""

    #: Whether trying the same thing again could succeed (network, lock, busy server).
    retryable: bool = False
    #: Exit code the CLI uses for this class of failure.
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KeelwatchError):
    """The configuration file or an environment override is invalid."""

    exit_code = 2


class InvalidReference(KeelwatchError):
    """An image reference cannot be parsed."""

    exit_code = 2


class ImageError(KeelwatchError):
    """An image cannot be read: missing, malformed, hostile, or lying about its digests."""


class DigestMismatch(ImageError):
    """A blob's content does not hash to the digest its manifest promised."""


class UnsupportedMediaType(ImageError):
    """A manifest or layer has a media type keelwatch does not read."""


class RegistryError(ImageError):
    """A registry refused or failed a request."""


class AuthError(RegistryError):
    """The registry wants credentials we do not have, or refused the ones we sent."""


class CatalogError(KeelwatchError):
    """A cataloger failed on a file in a way that is not just a skipped entry."""


class SbomError(KeelwatchError):
    """An SBOM cannot be read or written."""


class StoreError(KeelwatchError):
    """The database cannot be opened, migrated or written."""


class FeedError(KeelwatchError):
    """A feed cannot be fetched or parsed; the previous knowledge stays intact."""


class VersionError(KeelwatchError):
    """A version string cannot be parsed in its ecosystem: never a silent "not affected"."""


class DeliveryError(KeelwatchError):
    """An alert could not be delivered to a channel (it stays in the outbox)."""

    retryable = True
