"""Pure helpers of the runtime: signal names, JSON without `json`, mount options, paths."""

from __future__ import annotations

import json
import os

import pytest
from bkpy_runc import jsonio, mounts, paths, signals
from bkpy_runc import syscalls as sc
from bkpy_runc.errors import RuntimeFailure
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(("text", "num"), [("TERM", 15), ("SIGKILL", 9), ("9", 9), ("hup", 1),
                                           ("RTMIN+2", 36), ("SIGRTMAX-1", 63)])
def test_signal_names_and_numbers(text: str, num: int) -> None:
    assert signals.parse(text) == num


@pytest.mark.parametrize("text", ["NOPE", "0", "65", "SIG_DFL", ""])
def test_invalid_signals_are_refused(text: str) -> None:
    with pytest.raises(RuntimeFailure):
        signals.parse(text)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text() |
    st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(_json_values)
def test_jsonio_round_trips_like_json(value: object) -> None:
    assert jsonio.loads(jsonio.dumps(value)) == value
    assert json.loads(jsonio.dumps(value, indent="  ")) == value
    assert jsonio.loads(json.dumps(value, indent=3)) == value


def test_jsonio_reports_invalid_documents() -> None:
    with pytest.raises(ValueError):
        jsonio.loads('{"a": 1} trailing')
    with pytest.raises(ValueError):
        jsonio.loads("{bad")


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    flags, prop, data = mounts.parse_options(
        ["rbind", "ro", "nosuid", "rslave", "mode=755", "size=1m", "tmpcopyup", "rw", "exec"])
    assert flags == sc.MS_BIND | sc.MS_REC | sc.MS_NOSUID
    assert prop == [sc.MS_SLAVE | sc.MS_REC] and data == "mode=755,size=1m"
    with pytest.raises(RuntimeFailure):
        mounts.parse_options(["idmap"])


def test_paths_resolve_symlinks_inside_the_root(tmp_path: object) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "real", "dir"))
    os.symlink("/real", os.path.join(root, "abs"))
    os.symlink("../../../../..", os.path.join(root, "real", "up"))
    os.symlink("loop", os.path.join(root, "loop"))
    assert paths.resolve(root, "/abs/dir/x") == f"{root}/real/dir/x"
    assert paths.resolve(root, "/real/up/etc/passwd") == f"{root}/etc/passwd"
    assert paths.resolve(root, "/../../etc") == f"{root}/etc"
    assert paths.resolve(root, "/") == root
    with pytest.raises(RuntimeFailure):
        paths.resolve(root, "/loop/x")
