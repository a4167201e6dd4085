"""``[http] ca`` in the builder config: read, checked, and used for TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit_py.config import load_config
from buildkit_py.errors import UsageError
from buildkit_py.source.http import HttpSources


def test_http_ca_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "bkpyd.toml"
    cfg.write_text('[http]\nca = ["/etc/ssl/a.pem", "b.pem"]\n')
    assert load_config(cfg).http.ca == ["/etc/ssl/a.pem", "b.pem"]


@pytest.mark.parametrize(("text", "message"), [
    ('[http]\nca = "/a.pem"\n', "[http] ca must be a list of file paths"),
    ("[http]\ninsecure = true\n", "unknown keys in [http]: ['insecure']"),
])
def test_bad_http_section(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "bkpyd.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(cfg)
    assert message in err.value.message


def test_unreadable_ca_is_a_usage_error(tmp_path: Path) -> None:
    sources = HttpSources(tmp_path / "http.db", [str(tmp_path / "nope.pem")])
    try:
        with pytest.raises(UsageError) as err:
            sources.client()
    finally:
        sources.close()
    assert f"cannot load HTTP CA certificate {tmp_path / 'nope.pem'}" in err.value.message
    assert err.value.hint == "fix [http] ca in the builder config"
