"""The Efento schema, compiled once for the Efento tests."""

from __future__ import annotations

import pytest

from gateway.dialects.efento.schema import EfentoSchema, load_schema


@pytest.fixture(scope="session")
def schema() -> EfentoSchema:
    return load_schema()
