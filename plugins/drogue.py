"""The Drogue Cloud device API dialect (discovered by L{gateway.dialect.install_dialects})."""

from gateway.dialects.drogue import DrogueDialect

drogue = DrogueDialect()
