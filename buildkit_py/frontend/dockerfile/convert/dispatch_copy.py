"""COPY and ADD: context/stage/image sources, heredocs, URLs, git, --link, --parents."""

from __future__ import annotations

import posixpath
from typing import Any

from buildkit_py import llb
from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.lint_checks import copy_ignored
from buildkit_py.frontend.dockerfile.convert.names import uppercase_command
from buildkit_py.frontend.dockerfile.convert.sources import (
    is_http_source,
    parse_git_ref,
    url_filename,
)
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.instructions.model import Add, Copy
from buildkit_py.frontend.dockerfile.shell_lex import expand_heredoc_body
from buildkit_py.gostrings import go_quote
from buildkit_py.llb.chmod import compile_symbolic


def has_wildcard(path: str) -> bool:
    """Whether a path has a glob character outside a backslash escape (as BuildKit)."""
    escaped = False
    for ch in path:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "*?[":
            return True
    return False


def dest_path(cwd: str, dest: str) -> str:
    """Destination against WORKDIR; a trailing ``/`` (or ``.``) means a directory."""
    if dest in ("", "."):
        dest = "./"
    joined = posixpath.normpath(posixpath.join("/", cwd, dest))
    if dest.endswith("/") and joined != "/":
        joined += "/"
    return joined


def parse_chmod(value: str) -> int | str:
    """Octal (<= 07777) or symbolic (``u+x``, ``go=rX``, ``g=u``) file mode, with
    BuildKit's errors: numeric-looking values get the octal message, else "invalid syntax"."""
    if value[:1].isdigit():
        if set(value) <= set("01234567") and int(value, 8) <= 0o7777:
            return int(value, 8)
        raise DockerfileError(f"invalid chmod parameter: '{value}'. it should be octal "
                              "string and between 0 and 07777")
    if compile_symbolic(value) is None:
        raise DockerfileError("invalid syntax")
    return value


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
    excludes = list(c.excludes)  # BuildKit expands --chown/--chmod/--checksum, not these
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

    # Several sources need no trailing "/" on the destination: the newest BuildKit copies
    # each in turn (onto a new path: the last one wins; into an existing directory).
    mode = parse_chmod(chmod) if chmod else None
    owner = llb.Chown.parse(chown) if chown else None
    if checksum:
        if not is_add:
            raise DockerfileError("checksum can't be specified for COPY")
        if len(srcs) != 1:
            raise DockerfileError("checksum can't be specified for multiple sources")
        if not (is_http_source(srcs[0]) or parse_git_ref(srcs[0]) is not None):
            raise DockerfileError("checksum requires HTTP(S) or Git sources")

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
            f"cannot copy from stage {go_quote(getattr(c, 'from_', None) or '')}, it needs to "
            f"be defined before current stage {go_quote(d.display_name)}")
    src_state = source.state if source is not None else cx.main_context.state()

    action: llb.FileAction | None = None
    text = uppercase_command(cx.display_text(c, env))
    name = d.namer.name(text, d.platform, env, onbuild=cx.current_onbuild)

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
                description={llb.CUSTOM_NAME: name},  # as BuildKit: under the ADD step's name
            )
            add(st, "/")
        elif src.startswith(("http://", "https://")):
            if not is_add:
                raise DockerfileError("source can't be a URL for COPY")
            filename = url_filename(src)
            # as BuildKit: the download shows under the ADD step's name
            st = llb.http(src, filename=filename, checksum=checksum, chmod=0o600,
                          description={llb.CUSTOM_NAME: name})
            add(st, f"/{filename}", attempt_unpack=bool(unpack))
        else:
            if source is None:  # from the main context: is .dockerignore excluding it?
                copy_ignored("Add" if is_add else "Copy", [src], cx.opts.ignore_patterns,
                             c.location, cx.lint)
            include: list[str] = []
            required: list[str] = []
            path = src
            if parents:
                # As BuildKit: copy the contents of the pivot (the part before "/./", else
                # the root) filtered by the rest, so the rest's directories are kept.
                pivot, sep, pattern = src.partition("/./")
                if not sep:
                    pivot, pattern = "/", src
                pattern = posixpath.normpath(posixpath.join("/", pattern))
                include = [pattern.lstrip("/")]
                if not (has_wildcard(pivot) or has_wildcard(pattern)):
                    required = [posixpath.normpath(posixpath.join("/", pivot, pattern.lstrip("/")))]
                path = pivot
            path = posixpath.normpath(posixpath.join("/", path))
            if source is None:
                cx.main_context.use(src)
            add(src_state, path, follow_symlinks=True, dir_copy_contents=True,
                include_patterns=include, required_paths=required,
                attempt_unpack=is_add and unpack is not False,
                allow_wildcard=True, allow_empty_wildcard=True)
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
