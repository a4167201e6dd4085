"""Image timestamps follow BuildKit: layers keep the time they were made, so a fully
cached rebuild gives the same config digest (image ID)."""

from __future__ import annotations

from typing import Any

from buildkit_py.exporter.image import rfc3339, stamp_history

T1, T2, T3 = 1_700_000_000.0, 1_700_000_100.0, 1_700_000_200.0


def _entries(*spec: str) -> list[dict[str, Any]]:
    """'L' a layer entry, 'E' an empty one, 'B' a dated base-image layer."""
    out: list[dict[str, Any]] = []
    for kind in spec:
        if kind == "B":
            out.append({"created": "2020-01-01T00:00:00Z", "created_by": "base"})
        elif kind == "L":
            out.append({"created_by": "layer"})
        else:
            out.append({"created_by": "meta", "empty_layer": True})
    return out


def test_layers_get_their_own_times_and_metadata_the_neighbouring_layer_time() -> None:
    history = _entries("B", "E", "L", "E", "L", "E")
    created = stamp_history(history, [T1 - 999, T2, T3])
    assert [h["created"] for h in history] == [
        "2020-01-01T00:00:00Z",  # base entries keep their own time
        rfc3339(T2),  # before the first new layer: that layer's time
        rfc3339(T2),
        rfc3339(T2),  # after a layer: the previous layer's time
        rfc3339(T3),
        rfc3339(T3),
    ]
    assert created == rfc3339(T3)


def test_same_layer_times_give_the_same_history() -> None:
    one, two = _entries("B", "L", "E"), _entries("B", "L", "E")
    assert stamp_history(one, [T1, T2]) == stamp_history(two, [T1, T2])
    assert one == two


def test_nothing_dated_leaves_the_choice_to_the_caller() -> None:
    history = _entries("E", "E")
    assert stamp_history(history, []) is None
