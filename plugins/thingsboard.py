"""The ThingsBoard device API dialect (discovered by L{gateway.dialect.install_dialects})."""

from gateway.dialects.thingsboard import ThingsBoardDialect

thingsboard = ThingsBoardDialect()
