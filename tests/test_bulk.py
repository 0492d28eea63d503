"""svcctl.bulk's fast test (msgspec) agrees with its exact check (_conform, which words the
problems) on every endpoint list: random ones, near the schema and far from it."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from svcctl import bulk

VALUES: list[Any] = ["x", "", "10.0.0.1", True, False, 0, 1, 1.5, None, [], {}, ["x"], [None], {"a": "b"}, {"a": None}, {"name": "z"}]


def near(schema: Any, rng: random.Random) -> Any:
    """A value of ``schema``, now and then with something wrong or unusual in it."""
    if rng.random() < 0.04:
        return rng.choice(VALUES)
    if type(schema) is type:
        return "s" if schema is str else rng.random() < 0.5
    if type(schema) is list:
        return [near(schema[0], rng) for _ in range(rng.randrange(3))]
    if str in schema:
        return {f"k{i}": near(str, rng) for i in range(rng.randrange(3))}
    value = {name: near(sub, rng) if rng.random() < 0.9 else None for name, sub in schema.items() if rng.random() < 0.6}
    if rng.random() < 0.03:
        value["unknown"] = "x"
    return value


@pytest.mark.parametrize("schema", [bulk._ENDPOINT, bulk._ENDPOINT_ADDRESS], ids=["Endpoint", "EndpointAddress"])
def test_fast_check_agrees_with_conform(schema: Any):
    rng = random.Random(7)
    conforms = bulk._conforms(schema)
    agreed = 0
    for _ in range(20000):
        value = [near(schema, rng) for _ in range(rng.randrange(1, 4))] if rng.random() < 0.97 else rng.choice(VALUES)
        errors: list[Any] = []
        bulk._conform(value, [schema], (), errors)
        assert conforms(value) == (not errors), value
        agreed += not errors
    assert agreed > 2000


def test_endpoints_fast_and_exact_paths():
    good = [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "nodeName": "n", "targetRef": {"kind": "Pod", "name": "p"}}]
    assert bulk.endpoints(good) == (bulk.Endpoint(("10.0.0.1",), True, True, False, "n", "", ""),)
    with pytest.raises(PydanticCustomError) as err:
        bulk.endpoints([{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}, {"nodeName": "n"}])
    assert err.value.context["errors"] == [
        ((0, "conditions", "ready"), 'Invalid value: "yes": must be a boolean'),
    ]
    with pytest.raises(PydanticCustomError) as err:
        bulk.endpoints([{"nodeName": "n"}])
    assert err.value.context["errors"] == [((0, "addresses"), "Required value")]
