"""`stable_id` is uuid5 over the joined parts, exactly as the standard library computes it."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas.event import NAMESPACE, stable_id


@given(st.lists(st.one_of(st.text(), st.integers()), min_size=1, max_size=4))
def test_stable_id_equals_the_standard_librarys_uuid5(parts: list[str | int]) -> None:
    expected = uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts))
    found = stable_id(*parts)
    assert found == str(expected)
    assert uuid.UUID(found).version == 5


def test_stable_id_of_a_hit_and_its_index_is_fixed() -> None:
    """Ids already stored in ClickHouse must not change (the value uuid.uuid5 gave before)."""
    assert stable_id("hit-1", 0) == "b4739023-9904-51ff-a8dc-8c718b668947"
    assert stable_id("hit-1", 0) != stable_id("hit-1", 1)
