"""COPY and ADD: context/stage/image sources, heredocs, URLs, git, --link, --parents."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from buildkit_py import llb
from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.names import uppercase_command
from buildkit_py.frontend.dockerfile.convert.sources import (
    is_http_source,
    parse_git_ref,
    url_filename,
)
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.instructions.model import Add, Copy
from buildkit_py.frontend.dockerfile.shell_lex import expand_heredoc_body

_SYMBOLIC_MODE = re.compile(r"^[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*$")


def dest_path(cwd: str, dest: str) -> str:
    """Destination against WORKDIR; a trailing ``/`` (or ``.``) means a directory."""
    if dest in ("", "."):
        dest = "./"
    joined = posixpath.normpath(posixpath.join("/", cwd, dest))
    if dest.endswith("/") and joined != "/":
        joined += "/"
    return joined


def parse_chmod(value: str) -> int | str:
    """Octal (<= 07777) or symbolic (``u+x``, ``go=rX``) file mode."""
    if value.isdigit() and set(value) <= set("01234567"):
        mode = int(value, 8)
        if mode <= 0o7777:
            return mode
    elif _SYMBOLIC_MODE.match(value):
        return value
    raise DockerfileError(
        f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777")


def dispatch_copy(d: StageState, source: StageState | None, c: Copy | Add,
                  cx: ConvertContext) -> None:
    assert d.image is not None and d.scope is not None
    env = d.scope.expand_env()
    is_add = isinstance(c, Add)
    word = "ADD" if is_add else "COPY"
    srcs = [cx.expand(s, env) for s in c.sources]
    heredocs = list(c.contents)
    dest_raw = cx.expand(c.dest, env)
    if dest_raw.startswith("<<"):
        raise DockerfileError(f"{word} destination can not be a heredoc")
    chown = cx.expand(c.chown, env) if c.chown else ""
    chmod = cx.expand(c.chmod, env) if c.chmod else ""
    excludes = [cx.expand(e, env) for e in c.excludes]
    checksum = ""
    parents = False
    unpack: bool | None = None
    keep_git_dir = False
    if isinstance(c, Add):
        checksum = cx.expand(c.checksum, env) if c.checksum else ""
        unpack = c.unpack
        keep_git_dir = bool(c.keep_git_dir)
    else:
        parents = c.parents

    if len(srcs) + len(heredocs) > 1 and not dest_raw.endswith("/"):
        raise DockerfileError(
            f"When using {word} with more than one source file, the destination must be a "
            "directory and end with a /")
    mode = parse_chmod(chmod) if chmod else None
    owner = llb.Chown.parse(chown) if chown else None
    if checksum:
        if not is_add:
            raise DockerfileError("checksum can't be specified for COPY")
        if len(srcs) != 1:
            raise DockerfileError("checksum can't be specified for multiple sources")
        if not (is_http_source(srcs[0]) or parse_git_ref(srcs[0]) is not None):
            raise DockerfileError("checksum can't be specified for non-HTTP(S) sources")

    dest = dest_path(d.state.get_dir(), dest_raw)
    msg = word
    if parents:
        msg += " --parents"
    if chown:
        msg += f" --chown={chown}"
    if chmod:
        msg += f" --chmod={chmod}"

    if source is not None and not source.dispatched:
        raise DockerfileError(
            f"cannot copy from stage {source.base_name!r}, it needs to be defined before current "
            f"stage {d.display_name!r}")
    src_state = source.state if source is not None else cx.main_context.state()

    action: llb.FileAction | None = None

    def add(st: llb.State, path: str, **opts: Any) -> None:
        nonlocal action
        if action is None:
            action = llb.copy(st, path, dest, owner=owner, mode=mode,
                              exclude_patterns=excludes, create_dest_path=True, **opts)
        else:
            action = action.copy(st, path, dest, owner=owner, mode=mode,
                                 exclude_patterns=excludes, create_dest_path=True, **opts)

    for src in srcs:
        msg += f" {src}"
        git = parse_git_ref(src)
        if git is not None:
            if not is_add:
                raise DockerfileError("source can't be a git ref for COPY")
            st = llb.git(
                git.remote, git.ref, subdir=git.subdir,
                keep_git_dir=keep_git_dir if git.keep_git_dir is None else git.keep_git_dir,
                checksum=checksum or git.checksum,
                skip_submodules=git.submodules is False,
            )
            add(st, "/")
        elif src.startswith(("http://", "https://")):
            if not is_add:
                raise DockerfileError("source can't be a URL for COPY")
            filename = url_filename(src)
            st = llb.http(src, filename=filename, checksum=checksum, chmod=0o600)
            add(st, f"/{filename}", attempt_unpack=bool(unpack))
        else:
            include: list[str] = []
            path = src
            if parents:
                pivot, sep, pattern = src.partition("/./")
                if not sep:
                    pivot, pattern = "/", src
                include = [posixpath.normpath(posixpath.join("/", pattern)).lstrip("/")]
                path = pivot
            path = posixpath.normpath(posixpath.join("/", path))
            if source is None:
                cx.main_context.use(src)
            add(src_state, path, follow_symlinks=True, dir_copy_contents=True,
                include_patterns=include, attempt_unpack=is_add and unpack is not False,
                allow_wildcard=True, allow_empty_wildcard=True, parents=parents)
    for doc in heredocs:
        msg += f" <<{doc.path}"
        data = doc.data
        if doc.expand:
            data = expand_heredoc_body(data, env)
        st = llb.scratch().file(
            llb.mkfile(f"/{doc.path}", 0o644, data, timestamp=cx.timestamp()),
            description="[internal] preparing inline document")
        add(st, f"/{doc.path}")
    msg += f" {dest_raw}"
    assert action is not None

    text = uppercase_command(cx.display_text(c, env))
    name = d.namer.name(text, d.platform, env, onbuild=cx.current_onbuild)
    location = cx.location(c)
    description = {llb.CUSTOM_NAME: name, llb.DOCKERFILE_COMMAND: c.original}
    if c.link and not chmod:
        link_name = d.namer.name("LINK " + text, d.platform, env, onbuild=cx.current_onbuild,
                                 advance=False)
        group_id = f"link:{d.display_name}:{d.namer.index}:{name}"
        layer = llb.scratch().file(
            action, description=description, ignore_cache=d.ignore_cache, location=location,
            progress_group=llb.ProgressGroup(group_id, name, weak=True))
        merged = llb.merge([d.state, layer], description=link_name, location=location,
                           progress_group=llb.ProgressGroup(group_id, name))
        d.state = d.state.with_output(merged.output)
    else:
        d.state = d.state.file(action, description=description, ignore_cache=d.ignore_cache,
                               location=location)
    d.image.commit(msg, layer=True, buildkit=True, epoch=cx.epoch)
