"""The HTTP source's pure parts: file names, dates, numbers, keys, errors (BuildKit's rules)."""

from __future__ import annotations

import pytest

from buildkit_py.errors import UserError
from buildkit_py.frontend.dockerfile.convert.sources import url_filename
from buildkit_py.source.http import (
    HttpSpec,
    digest_mismatch,
    etag_value,
    file_name,
    format_http_time,
    go_base,
    parse_go_int,
    parse_http_time,
    safe_file_name,
)


@pytest.mark.parametrize(("path", "base"), [
    ("", "."), ("/", "/"), ("///", "/"), ("a/b/", "b"), ("/x.tgz", "x.tgz"), ("a", "a"),
])
def test_go_base(path: str, base: str) -> None:
    assert go_base(path) == base


@pytest.mark.parametrize(("name", "safe"), [  # BuildKit's pathutil.SafeFileName cases
    ("foo", "foo"), ("foo.txt", "foo.txt"), ("資料.txt", "資料.txt"),
    ("name with spaces.txt", "name with spaces.txt"), ("  foo.txt  ", "foo.txt"),
    ("a/b/c.txt", "c.txt"), ("", "download"), (".", "download"), ("..", "download"),
    ("../", "download"), ("a\x00b", "download"), ("a\nb", "download"), ("/", "download"),
])
def test_safe_file_name(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe


@pytest.mark.parametrize(("url", "manual", "disposition", "name"), [
    ("https://h/d/tool.tgz", "", None, "tool.tgz"),
    ("https://h/d/tool.tgz", "given.bin", 'attachment; filename="cd.txt"', "given.bin"),
    ("https://h/d/tool.tgz", "", 'attachment; filename="cd.txt"', "cd.txt"),
    ("https://h/d/tool.tgz", "", "attachment; filename=../../etc/passwd", "passwd"),
    ("https://h/d/tool.tgz", "", 'attachment; filename="dir/"', "tool.tgz"),
    ("https://h/d/tool.tgz", "", "attachment; filename*=UTF-8''na%C3%AFve.txt", "naïve.txt"),
    ("https://h/d/tool.tgz", "", "inline", "tool.tgz"),
    ("https://h/plain/", "", None, "plain"),
    ("https://h/a%20b.txt?x=1", "", None, "a b.txt"),
    ("https://h", "", None, "download"),
    ("https://h/", "", None, "download"),
])
def test_file_name(url: str, manual: str, disposition: str | None, name: str) -> None:
    assert file_name(url, manual, disposition) == name


@pytest.mark.parametrize(("url", "name"), [  # what the referee's ADD names the file
    ("http://h/plain/", "plain"), ("http://h/plain?q=1", "plain"),
    ("http://h/plain/a%20b.txt?x=1", "a b.txt"), ("http://h", "__unnamed__"),
])
def test_add_names_the_file_from_the_url(url: str, name: str) -> None:
    assert url_filename(url) == name


def test_http_times() -> None:
    assert parse_http_time("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480
    assert parse_http_time("Wednesday, 21-Oct-15 07:28:00 GMT") == 1445412480  # RFC 850
    assert parse_http_time("Wed Oct 21 07:28:00 2015") == 1445412480  # asctime
    assert parse_http_time("yesterday") is None
    assert parse_http_time("") is None
    assert format_http_time(1445412480) == "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(("text", "value"), [
    ("0600", 0o600), ("0755", 0o755), ("420", 420), ("0o644", 0o644), ("0x1ff", 0o777),
    ("0", 0), ("1000", 1000), ("-1", -1),
])
def test_parse_go_int(text: str, value: int) -> None:
    assert parse_go_int(text) == value


def test_bad_number_attr_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"invalid http\.perm 'rw'"):
        HttpSpec.from_op("https://h/f", {"http.perm": "rw"})


def test_spec_from_attrs() -> None:
    spec = HttpSpec.from_op("https://h:8443/f", {
        "http.checksum": "sha256:" + "a" * 64, "http.filename": "f.bin", "http.perm": "0755",
        "http.uid": "12", "http.gid": "34", "http.header.user-agent": "me",
        "http.header.accept": "*/*", "http.header.x-secret": "dropped"})
    assert (spec.mode, spec.uid, spec.gid, spec.filename, spec.host) == (
        0o755, 12, 34, "f.bin", "h")
    assert spec.headers == (("Accept", "*/*"), ("User-Agent", "me"))
    assert HttpSpec.from_op("https://h/f", {}).mode == 0o600


def test_cache_key_is_the_file_not_the_url() -> None:
    a = HttpSpec("https://a/x")
    b = HttpSpec("https://mirror/x")
    d = "sha256:" + "1" * 64
    assert a.cache_key("x", d, 1.0) == b.cache_key("x", d, 1.0)
    assert a.url_key() != b.url_key()
    assert a.cache_key("x", d, 1.0) != a.cache_key("x", d, 2.0)  # Last-Modified counts
    assert a.cache_key("x", d, None) != a.cache_key("y", d, None)
    assert HttpSpec("https://a/x", perm=0o755).cache_key("x", d, None) != \
        a.cache_key("x", d, None)


def test_weak_etags_compare_equal() -> None:
    assert etag_value('W/"v1"') == '"v1"' == etag_value('"v1"')


def test_digest_mismatch_wording() -> None:
    err = digest_mismatch("https://h/f", "sha256:aa", "sha256:bb")
    assert err.message == "digest mismatch for https://h/f: sha256:aa (expected: sha256:bb)"
    assert err.hint
