"""What a Git source names: its remote, ref and options as the LLB gives them, which
commit the remote says the ref is, and the credentials it is fetched with.

Parsing follows BuildKit's ``source/git`` identifier: ``git://HOST/PATH#REF:SUBDIR`` plus
``git.*`` attributes (``git.fullurl`` the real URL; a remote without a transport is
``https://``); ``ls-remote`` output is read as BuildKit reads it (an exact ``refs/...``
match, else a branch, else a tag, an annotated tag peeled to its commit).

Credentials are the build's: an HTTP remote gets an ``Authorization`` header from the
first secret found of ``GIT_AUTH_HEADER.<host>``, ``GIT_AUTH_TOKEN.<host>``,
``GIT_AUTH_HEADER``, ``GIT_AUTH_TOKEN`` (``<host>`` with its port when the URL has one; a
token is sent as Basic ``x-access-token:<token>``); an ssh remote uses the build's ``--ssh``
agent (``default`` unless the LLB names another) and the known hosts the LLB carries. The
LLB bkpy's frontend writes leaves the secret names and the agent out: they default here to
what BuildKit's LLB builder always writes.

Errors keep BuildKit's wording (what scripts compare) and add advice picked from what git
said (one table).
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from buildkit_py.errors import BuildError
from buildkit_py.gostrings import go_quote
from buildkit_py.source.gitcli import GitCLI, GitCommandError, is_commit_sha

_TRANSPORTS = ("http", "https", "ssh", "git")
_PROTO = re.compile(r"^[a-zA-Z0-9]+://")
_SCP = re.compile(r"^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$")
_DEFAULT_BRANCH = re.compile(r"refs/heads/(\S+)")
_HEX = re.compile(r"^[a-fA-F0-9]+$")
_TOKEN_SECRET, _HEADER_SECRET = "GIT_AUTH_TOKEN", "GIT_AUTH_HEADER"
# attributes this builder does not implement: refused, never silently ignored
_UNSUPPORTED = {
    "git.bundle": "fetching from a git bundle",
    "git.checkoutbundle": "checking out as a git bundle",
    "git.fetchbycommit": "fetching by commit",
    "git.sig.pubkey": "verifying git signatures",
}
# what git said -> the advice bkpy adds to BuildKit's message
_HINTS = (
    ("could not read Username", "the remote wants credentials: pass a token with --secret "
                                "id=GIT_AUTH_TOKEN.<host>,src=FILE (or GIT_AUTH_HEADER.<host>)"),
    ("Authentication failed", "the remote refused the credentials: check the "
                              "GIT_AUTH_TOKEN/GIT_AUTH_HEADER secret"),
    ("Could not resolve host", "the remote's host name does not resolve (DNS)"),
    ("Could not resolve hostname", "the remote's host name does not resolve (DNS)"),
    ("Couldn't connect to server", "the remote is unreachable"),
    ("Connection refused", "the remote is unreachable"),
    ("Connection timed out", "the remote is unreachable"),
    ("Permission denied (publickey", "the ssh server refused the key: forward an agent "
                                     "holding it with --ssh default"),
    ("Host key verification failed", "the remote's ssh host key is not the known one"),
    ("not found", "check the repository URL"),
    ("not exported", "check the repository URL"),
    ("does not appear to be a git repository", "check the repository URL"),
    ("SSL certificate problem", "the remote's TLS certificate is not trusted"),
)


def redact(url: str) -> str:
    """``url`` with its user name and password masked (as BuildKit's RedactCredentials)."""
    if not _PROTO.match(url):
        return url
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, password = userinfo.partition(":")
    masked = ("xxxxx" if user else "") + (":xxxxx" if colon and password else
                                          ":" if colon else "")
    return parts._replace(netloc=f"{masked}@{hostport}").geturl()


def hint_for(stderr: str) -> str | None:
    return next((hint for needle, hint in _HINTS if needle in stderr), None)


def fail(what: str, err: GitCommandError) -> BuildError:
    """BuildKit's ``<what>: git stderr: ...: exit status N``, with bkpy's advice."""
    return BuildError(f"{what}: {err.text}", hint=hint_for(err.stderr))


def is_git_transport(remote: str) -> bool:
    proto = _PROTO.match(remote)
    if proto:
        return proto.group(0)[:-3].lower() in _TRANSPORTS
    return bool(_SCP.match(remote))


def _scheme(remote: str) -> str:
    proto = _PROTO.match(remote)
    return proto.group(0)[:-3].lower() if proto else "ssh" if _SCP.match(remote) else ""


def clean_subdir(subdir: str) -> str:
    """``path.Join("/", subdir)`` without its leading slash (``""`` for the root)."""
    return posixpath.normpath("/" + subdir.lstrip("/")).lstrip("/")


@dataclass(frozen=True)
class GitIdentifier:
    """A Git source op: the remote and the ref as the LLB names them, and its options."""

    remote: str
    ref: str = ""
    subdir: str = ""
    checksum: str = ""
    keep_git_dir: bool = False
    skip_submodules: bool = False
    mtime: str = ""  # "checkout" (the default) or "commit"
    auth_token_secret: str = _TOKEN_SECRET
    auth_header_secret: str = _HEADER_SECRET
    mount_ssh_sock: str = ""
    known_ssh_hosts: str = ""

    @property
    def scheme(self) -> str:
        return _scheme(self.remote)

    @property
    def host(self) -> str:
        """The remote's host as BuildKit names secrets after it (with its port, if any)."""
        if not _PROTO.match(self.remote):
            return ""
        return urlsplit(self.remote).netloc.rpartition("@")[2]

    def cache_key(self, sha: str, ref: str) -> str:
        """The key text of a checkout of ``sha`` (``ref``: the ref it was found under)."""
        key = sha
        if self.keep_git_dir:
            key += ".git"
            if ref:
                key += "#" + ref
        if self.subdir:
            key += ":" + self.subdir
        if self.skip_submodules:
            key += "(skip-submodules)"
        if self.mtime not in ("", "checkout"):
            key += f"(mtime={self.mtime})"
        return key


def parse_identifier(identifier: str, attrs: Mapping[str, str]) -> GitIdentifier:
    """The op's ``git://HOST/PATH#REF:SUBDIR`` identifier and ``git.*`` attributes."""
    text = identifier.removeprefix("git://")
    base, _, fragment = text.partition("#")
    ref, _, subdir = fragment.partition(":")
    remote = base if is_git_transport(base) else "https://" + base
    if _PROTO.match(remote):
        remote = urlsplit(remote)._replace(query="", fragment="").geturl()
    for attr, what in _UNSUPPORTED.items():
        if attr in attrs:
            raise BuildError(f"git source {redact(remote)}: {what} is not supported by this "
                             "builder", hint=f"remove the {attr} attribute from the LLB")
    full = attrs.get("git.fullurl")
    if full:
        remote = full if is_git_transport(full) else "https://" + full
    mtime = attrs.get("git.mtime", "")
    if mtime not in ("", "checkout", "commit"):
        raise BuildError(f"invalid git.mtime {go_quote(mtime)}: expected \"checkout\" or "
                         "\"commit\"")
    ident = GitIdentifier(
        remote=remote, ref=ref, subdir=clean_subdir(subdir),
        checksum=attrs.get("git.checksum", ""),
        keep_git_dir=attrs.get("git.keepgitdir") == "true",
        skip_submodules=attrs.get("git.skipsubmodules") == "true",
        mtime=mtime,
        auth_token_secret=attrs.get("git.authtokensecret", _TOKEN_SECRET),
        auth_header_secret=attrs.get("git.authheadersecret", _HEADER_SECRET),
        known_ssh_hosts=attrs.get("git.knownsshhosts", ""),
    )
    sock = attrs.get("git.mountsshsock", "default" if ident.scheme == "ssh" else "")
    if ref.startswith("-"):
        raise BuildError(f"invalid git ref {go_quote(ref)}")
    return replace(ident, mount_ssh_sock=sock)


@dataclass(frozen=True)
class Resolved:
    """What a ref names: the full ref it was found under, its object, and for an annotated
    tag the commit it points to (``commit``; empty otherwise)."""

    ref: str
    sha: str
    commit: str = ""


def parse_ls_remote(output: str, ref: str, checksum: str, keep_git_dir: bool) -> Resolved:
    """Pick ``ref``'s line from ``git ls-remote -- URL REF REF^{}`` as BuildKit does: an exact
    ``refs/...`` match, else the branch (git checkout prefers branches), else the tag."""
    partial = "refs/" + ref.removeprefix("refs/")
    head = "refs/heads/" + ref.removeprefix("refs/heads/")
    tag = "refs/tags/" + ref.removeprefix("refs/tags/")
    sha = head_sha = tag_sha = peeled = used = ""
    for line in output.split("\n"):
        line_sha, _, name = line.partition("\t")
        if name == head:
            head_sha = line_sha
        elif name == tag:
            tag_sha = line_sha
        elif name == tag + "^{}":
            peeled = line_sha
        elif name == partial:
            sha, used = line_sha, name
    if not sha:
        sha, used = head_sha, head
    if sha:
        peeled = ""  # a branch or an exact ref matched: not the tag
    else:
        sha, used = tag_sha, tag
    if not sha:
        raise BuildError(f"repository does not contain ref {ref}, output: {go_quote(output)}",
                         hint="check the branch, tag or commit after '#' (a commit must be "
                              "its full SHA)")
    if not is_commit_sha(sha):
        raise BuildError(f"invalid commit sha {go_quote(sha)}")
    if checksum and not sha.startswith(checksum) and not peeled.startswith(checksum):
        got = f"{sha} or {peeled}" if peeled else sha  # BuildKit drops the first of the two
        raise BuildError(f"expected checksum to match {checksum}, got {got}",
                         hint="the ref now names another commit than --checksum pins")
    return Resolved(used, sha, peeled if peeled and not keep_git_dir else "")


def auth_header(ident: GitIdentifier, secret: Callable[[str], bytes | None]) -> str | None:
    """The ``Authorization`` header value from the first secret found, in BuildKit's
    order (header for the host, token for the host, header, token); None without one."""
    if ident.scheme not in ("http", "https"):
        return None
    names: list[tuple[str, bool]] = []
    for suffix in (f".{ident.host}", ""):
        if ident.auth_header_secret:
            names.append((ident.auth_header_secret + suffix, False))
        if ident.auth_token_secret:
            names.append((ident.auth_token_secret + suffix, True))
    for name, is_token in names:
        value = secret(name)
        if value is None:
            continue
        if is_token:
            raw = b"x-access-token:" + value
            return "basic " + base64.b64encode(raw).decode()
        return value.decode(errors="replace")
    return None


def token_scope(remote: str) -> str:
    """Which URLs the header is sent to: the remote, or any github.com repository (as
    BuildKit, after actions/checkout)."""
    for prefix in ("https://github.com/", "https://www.github.com/"):
        if remote.startswith(prefix):
            return prefix
    return remote


def default_branch(git: GitCLI, remote: str) -> str:
    """The branch the remote's ``HEAD`` points to."""
    try:
        out = git.run("ls-remote", "--symref", remote, "HEAD")
    except GitCommandError as err:
        raise fail(f"error fetching default branch for repository {redact(remote)}",
                   err) from None
    m = _DEFAULT_BRANCH.search(out)
    if m is None:
        raise BuildError(f"could not find default branch for repository: {redact(remote)}",
                         hint="name a branch, tag or commit after '#'")
    if m.group(1).startswith("-"):
        raise BuildError(f"invalid git ref {go_quote(m.group(1))}")
    return m.group(1)


def check_checksum(ident: GitIdentifier) -> None:
    """``--checksum`` of a Git source is a commit SHA or a prefix of one."""
    if ident.checksum and not _HEX.match(ident.checksum):
        raise BuildError(f"invalid checksum {ident.checksum} for Git URL, expected hex "
                         "commit hash",
                         hint="--checksum of a Git source is the commit's SHA (or a prefix)")
