"""What a Git source names: identifiers and attributes, ls-remote output, credentials, keys.

Expected texts are the newest BuildKit's (seen on the referee, see test_git_source.py).
"""

from __future__ import annotations

import base64

import pytest

from buildkit_py.errors import BuildError
from buildkit_py.source.gitcli import _retry_args, is_commit_sha
from buildkit_py.source.gitref import (
    GitIdentifier,
    auth_header,
    clean_subdir,
    parse_identifier,
    parse_ls_remote,
    redact,
    token_scope,
)

A = "a" * 40
B = "b" * 40
C = "c" * 40


@pytest.mark.parametrize(("identifier", "attrs", "remote", "ref", "subdir"), [
    ("git://github.com/moby/buildkit.git#v0.11:docs", {}, "https://github.com/moby/buildkit.git",
     "v0.11", "docs"),
    ("git://github.com/moby/buildkit.git", {"git.fullurl": "git@github.com:moby/buildkit.git"},
     "git@github.com:moby/buildkit.git", "", ""),
    ("git://127.0.0.1:9418/app.git#main", {"git.fullurl": "git://127.0.0.1:9418/app.git"},
     "git://127.0.0.1:9418/app.git", "main", ""),
    ("git://h/r.git#:/a/../b//c/", {}, "https://h/r.git", "", "b/c"),
    ("git://h/r.git#main", {"git.fullurl": "h/r.git"}, "https://h/r.git", "main", ""),
])
def test_identifier(identifier: str, attrs: dict[str, str], remote: str, ref: str,
                    subdir: str) -> None:
    ident = parse_identifier(identifier, attrs)
    assert (ident.remote, ident.ref, ident.subdir) == (remote, ref, subdir)


def test_identifier_defaults_are_what_buildkits_llb_writes() -> None:
    https = parse_identifier("git://h/r.git", {})
    assert (https.auth_token_secret, https.auth_header_secret) == ("GIT_AUTH_TOKEN",
                                                                   "GIT_AUTH_HEADER")
    assert https.mount_ssh_sock == ""
    ssh = parse_identifier("git://h/r.git", {"git.fullurl": "git@h:r.git"})
    assert ssh.scheme == "ssh" and ssh.mount_ssh_sock == "default"
    named = parse_identifier("git://h/r.git", {"git.fullurl": "ssh://git@h/r.git",
                                                "git.mountsshsock": "work",
                                                "git.knownsshhosts": "h ssh-ed25519 AAAA\n"})
    assert named.mount_ssh_sock == "work" and named.known_ssh_hosts.startswith("h ssh-ed25519")


def test_identifier_options() -> None:
    ident = parse_identifier("git://h/r.git#v1", {
        "git.keepgitdir": "true", "git.skipsubmodules": "true", "git.checksum": "abc",
        "git.mtime": "commit"})
    assert ident.keep_git_dir and ident.skip_submodules and ident.checksum == "abc"
    assert ident.mtime == "commit"


def test_invalid_ref_and_unsupported_attributes_are_refused() -> None:
    with pytest.raises(BuildError, match='invalid git ref "-upload-pack=x"'):
        parse_identifier("git://h/r.git#-upload-pack=x", {})
    with pytest.raises(BuildError, match="fetching from a git bundle is not supported"):
        parse_identifier("git://h/r.git", {"git.bundle": "docker-image+blob://x@sha256:0"})
    with pytest.raises(BuildError, match=r"invalid git\.mtime"):
        parse_identifier("git://h/r.git", {"git.mtime": "now"})


def test_clean_subdir() -> None:
    assert clean_subdir("") == ""
    assert clean_subdir("/") == ""
    assert clean_subdir("//a/./b/") == "a/b"
    assert clean_subdir("../../x") == "x"


def test_ls_remote_branch_tag_and_annotated_tag() -> None:
    out = (f"{A}\trefs/heads/main\n{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n")
    branch = parse_ls_remote(out, "main", "", False)
    assert (branch.ref, branch.sha, branch.commit) == ("refs/heads/main", A, "")
    tag = parse_ls_remote(out, "v1", "", False)
    assert (tag.ref, tag.sha, tag.commit) == ("refs/tags/v1", B, C)  # keyed on the commit
    kept = parse_ls_remote(out, "v1", "", True)
    assert kept.commit == ""  # .git kept: the tag object itself is in the result
    full = parse_ls_remote(out, "refs/tags/v1", "", False)
    assert (full.ref, full.sha, full.commit) == ("refs/tags/v1", B, C)


def test_ls_remote_prefers_a_branch_over_a_tag() -> None:
    out = f"{A}\trefs/heads/x\n{B}\trefs/tags/x\n"
    assert parse_ls_remote(out, "x", "", False).sha == A


def test_ls_remote_errors_as_buildkit() -> None:
    with pytest.raises(BuildError) as e:
        parse_ls_remote("", "nope", "", False)
    assert e.value.message == 'repository does not contain ref nope, output: ""'
    with pytest.raises(BuildError) as e:
        parse_ls_remote(f"{A}\trefs/heads/main\n", "main", "d09e6d99", False)
    assert e.value.message == f"expected checksum to match d09e6d99, got {A}"
    with pytest.raises(BuildError) as e:
        parse_ls_remote(f"{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n", "v1", "dd", False)
    assert e.value.message == f"expected checksum to match dd, got {B} or {C}"
    # a prefix of the commit an annotated tag points to matches
    assert parse_ls_remote(f"{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n", "v1", "ccc",
                           False).sha == B


def test_redact() -> None:
    assert redact("https://u:p@h/r.git") == "https://xxxxx:xxxxx@h/r.git"
    assert redact("https://u@h/r.git") == "https://xxxxx@h/r.git"
    assert redact("https://h/r.git") == "https://h/r.git"
    assert redact("git@h:r.git") == "git@h:r.git"


def _secrets(values: dict[str, bytes]):  # type: ignore[no-untyped-def]
    return values.get


def test_auth_header_order_and_token_form() -> None:
    ident = GitIdentifier(remote="http://127.0.0.1:8080/r.git")
    assert ident.host == "127.0.0.1:8080"
    assert auth_header(ident, _secrets({})) is None
    token = auth_header(ident, _secrets({"GIT_AUTH_TOKEN": b"t0k"}))
    assert token == "basic " + base64.b64encode(b"x-access-token:t0k").decode()
    both = {"GIT_AUTH_TOKEN.127.0.0.1:8080": b"host", "GIT_AUTH_TOKEN": b"plain",
            "GIT_AUTH_HEADER": b"Bearer h"}
    assert auth_header(ident, _secrets(both)) == \
        "basic " + base64.b64encode(b"x-access-token:host").decode()
    both["GIT_AUTH_HEADER.127.0.0.1:8080"] = b"Bearer host"
    assert auth_header(ident, _secrets(both)) == "Bearer host"
    ssh = GitIdentifier(remote="git@h:r.git")
    assert auth_header(ssh, _secrets({"GIT_AUTH_TOKEN": b"x"})) is None


def test_token_scope() -> None:
    assert token_scope("https://github.com/o/r.git") == "https://github.com/"
    assert token_scope("https://example.com/o/r.git") == "https://example.com/o/r.git"


def test_cache_key_text() -> None:
    ident = GitIdentifier(remote="https://h/r.git", subdir="docs", keep_git_dir=True,
                          skip_submodules=True, mtime="commit")
    assert ident.cache_key(A, "refs/heads/main") == \
        f"{A}.git#refs/heads/main:docs(skip-submodules)(mtime=commit)"
    assert GitIdentifier(remote="https://h/r.git").cache_key(A, "refs/heads/main") == A


def test_commit_sha_and_retries() -> None:
    assert is_commit_sha(A) and is_commit_sha("0" * 64)
    assert not is_commit_sha("A" * 40) and not is_commit_sha(A[:12])
    assert _retry_args(["fetch", "--depth=1", "origin", "x"], "fatal: dumb http transport "
                       "does not support shallow capabilities") == ["fetch", "origin", "x"]
    assert _retry_args(["fetch", "--tags", "origin", A], "error: Server does not allow "
                       "request for unadvertised object") == ["fetch", "--tags", "origin"]
    assert _retry_args(["fetch", "origin", "x"], "fatal: boom") is None
