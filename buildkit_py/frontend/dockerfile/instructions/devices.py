"""``RUN --device=NAME[,required]``: CDI devices a step asks for (a labs feature in BuildKit).

The value is parsed (and bad values refused) while loading, as BuildKit's frontend does for
every channel; whether the feature may be used at all is decided when converting.
"""

from __future__ import annotations

from dataclasses import dataclass

from buildkit_py.frontend.dockerfile.instructions.mounts import GO_BOOLS, split_csv
from buildkit_py.frontend.dockerfile.suggest import suggest

_KEYS = ("name", "required")


class DeviceError(ValueError):
    pass


@dataclass(frozen=True)
class Device:
    """A CDI device by its qualified name (``vendor.com/class=name``, ``=*`` for all of a
    kind, a bare kind for its first device) or a class annotation's value."""

    name: str
    required: bool = False


def _bool(key: str, value: str) -> bool:
    parsed = GO_BOOLS.get(value)
    if parsed is None:
        raise DeviceError(f"invalid value for {key}: {value}")
    return parsed


def parse_device(value: str) -> Device:
    try:
        fields = split_csv(value)
    except ValueError as err:
        raise DeviceError(f"failed to parse csv devices: {err}") from None
    name, required = "", False
    for field in fields:
        key, sep, val = field.partition("=")
        key = key.lower()
        if key == "required":
            required = _bool(key, val) if sep else True
        elif key == "name" and sep:
            if name:
                raise DeviceError(f"device name already set to {name}")
            name = val
        elif not name:
            name = field  # the first bare value (a CDI name may itself contain "=")
        elif not sep:
            raise DeviceError(f"invalid field '{field}' must be a key=value pair")
        else:
            raise DeviceError(suggest(f"unexpected key '{key}' in '{field}'", key, _KEYS,
                                      case_sensitive=True))
    return Device(name, required)
