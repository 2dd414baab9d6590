"""Every error sfmc-source raises on purpose, in one tree.

    SfmcError
    ├── ConfigError            bad usage or configuration (exit 2)
    ├── SyncBusy               another sync of the same warehouse and schema is running
    ├── Stopped                the run was asked to stop: no more requests are sent
    ├── AuthenticationError    wrong client id, secret, subdomain or account (exit 3)
    │   └── BusinessUnitRefused    the package cannot act in that business unit (MID)
    ├── PermissionDenied       the package lacks a permission: REST 403, SOAP "API Permission
    │                          Failed" (the collection fails; others go on)
    ├── TransientError         429, 5xx, timeouts, connection errors, SOAP throttling, still
    │                          failing after the retries
    ├── RequestRejected        SFMC refused the request: another 4xx, a SOAP error status
    │   │                      other than a permission error
    │   └── PropertyRefused    a Retrieve asked for properties this tenant will not return
    └── ResponseError          a response that is malformed or not in the documented shape

Messages are one line, name what to check, and never contain a secret.
"""

from __future__ import annotations


class SfmcError(Exception):
    """Base of every error sfmc-source raises on purpose."""

    exit_code = 1


class ConfigError(SfmcError):
    exit_code = 2


class SyncBusy(SfmcError):
    pass


class Stopped(SfmcError):
    pass


class AuthenticationError(SfmcError):
    exit_code = 3


class BusinessUnitRefused(AuthenticationError):
    pass


class PermissionDenied(SfmcError):
    pass


class TransientError(SfmcError):
    pass


class RequestRejected(SfmcError):
    pass


class PropertyRefused(RequestRejected):
    """A Retrieve named properties the tenant will not return: ``properties``."""

    def __init__(self, message: str, properties: tuple[str, ...]) -> None:
        super().__init__(message)
        self.properties = properties


class ResponseError(SfmcError):
    pass


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def root_cause(exc: BaseException) -> str:
    """The innermost cause of a failure (a dlt one, a driver's), in one line: its type and
    first line."""
    innermost = causes(exc)[-1]
    first = next((line.strip() for line in str(innermost).splitlines() if line.strip()), "")
    return f"{type(innermost).__name__}: {first}"
