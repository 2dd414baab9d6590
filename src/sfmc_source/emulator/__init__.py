"""A faithful local Salesforce Marketing Cloud: token endpoint, REST and SOAP, with knobs.

from sfmc_source.emulator import Emulator, EmulatorConfig

with Emulator(EmulatorConfig(seed=7)) as emulator:
    emulator.environment()           # SFMC_AUTH_URL, SFMC_CLIENT_ID, ...
    emulator.app.mutate.update("campaigns", "1000", name="Renamed")
    emulator.app.faults.rate_limit_every = 5
    emulator.app.log.count("GET /hub/v1/campaigns")
"""

from sfmc_source.emulator.app import EmulatorApp, EmulatorConfig, Faults
from sfmc_source.emulator.generate import SCALES, Sizes, sizes_for
from sfmc_source.emulator.log import RequestLog
from sfmc_source.emulator.rest import RestOptions
from sfmc_source.emulator.server import Emulator, EmulatorTransport

__all__ = [
    "SCALES",
    "Emulator",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorTransport",
    "Faults",
    "RequestLog",
    "RestOptions",
    "Sizes",
    "sizes_for",
]
