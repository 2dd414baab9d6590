"""Every error sfmc-source raises on purpose, in one tree.

    SfmcError
    ├── ConfigError            bad usage or configuration (exit 2)
    ├── SyncBusy               another sync of the same warehouse and schema is running
    ├── AuthenticationError    wrong client id, secret, subdomain or account (exit 3)
    │   └── BusinessUnitRefused    the package cannot act in that business unit (MID)
    ├── PermissionDenied       the package lacks a permission: REST 403, SOAP "API Permission
    │                          Failed" (the collection fails; others go on)
    ├── TransientError         429, 5xx, timeouts, connection errors, SOAP throttling, still
    │                          failing after the retries
    ├── RequestRejected        SFMC refused the request: another 4xx, a SOAP error status
    │                          other than a permission error
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


class ResponseError(SfmcError):
    pass
