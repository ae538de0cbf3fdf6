"""The Efento NB-IoT dialect (discovered by L{gateway.dialect.install_dialects})."""

from gateway.dialects.efento import EfentoDialect

efento = EfentoDialect()
