"""task.yaml's `notify:` key: spans and factors as people write them, mistakes named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasse.tasks.notify_spec import Limit, NotifySpec


def test_spans_and_factors_read_as_people_write_them() -> None:
    spec = NotifySpec.model_validate(
        {"no_success_for": "26h", "longer_than": "2x", "shorter_than": "90s"}
    )
    assert spec.no_success_for == 26 * 3600
    assert spec.longer_than == Limit(factor=2.0)
    assert spec.shorter_than == Limit(seconds=90.0)
    assert spec.needs_history


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("no_success_for", "a day", "is not a time span"),
        ("no_success_for", 0, "greater than 0"),
        ("when", ["exploded"], "failed"),
        ("after_failures", 0, "greater than or equal to 1"),
        ("tags", ["two words"], "should match pattern"),
    ],
)
def test_a_bad_value_is_refused_saying_why(key: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        NotifySpec.model_validate({key: value})
