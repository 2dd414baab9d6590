"""sfmc-source: Salesforce Marketing Cloud data into your warehouse, incrementally.

from sfmc_source import Credentials, SfmcClient, postgres_destination, sfmc_source
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Credentials", "SfmcClient", "__version__", "postgres_destination", "sfmc_source"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so the emulator and the CLI start without loading dlt.
    if name == "Credentials":
        from sfmc_source.auth import Credentials

        return Credentials
    if name == "SfmcClient":
        from sfmc_source.client import SfmcClient

        return SfmcClient
    if name == "sfmc_source":
        from sfmc_source.source import sfmc_source

        return sfmc_source
    if name == "postgres_destination":
        from sfmc_source.destination import postgres_destination

        return postgres_destination
    raise AttributeError(f"module 'sfmc_source' has no attribute {name!r}")
