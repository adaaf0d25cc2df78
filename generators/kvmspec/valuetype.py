"""The decorator of kvmspec's value types (the model, expressions, layouts).

They are values: compared and hashed by content, and never changed once
built. They are not `frozen=True` dataclasses, because frozen ones make every
construction slower (each field is set through object.__setattr__) and take a
third of kvmspec's start-up to create. With KVMSPEC_FROZEN_MODEL=1 in the
environment they are frozen, so that a run proves that nothing assigns to
them (tests/test_generate.py does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FROZEN = os.environ.get("KVMSPEC_FROZEN_MODEL") == "1"


def value_type(cls=None, /, **options):
    if FROZEN:
        return dataclass(cls, frozen=True, **options)
    return dataclass(cls, unsafe_hash=True, **options)
