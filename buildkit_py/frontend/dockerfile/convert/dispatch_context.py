"""What every instruction handler needs from the conversion as a whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buildkit_py import llb
from buildkit_py.frontend.dockerfile.buildargs import BuildArgs, MetaArgs
from buildkit_py.frontend.dockerfile.convert.context import MainContext
from buildkit_py.frontend.dockerfile.convert.options import ConvertOptions, ConvertWarning
from buildkit_py.frontend.dockerfile.lint import Linter
from buildkit_py.frontend.dockerfile.shell_lex import ExpansionError, ShellLex
from buildkit_py.platforms import Platform


@dataclass
class ConvertContext:
    opts: ConvertOptions
    lex: ShellLex
    source: llb.SourceFile | None
    target_platform: Platform
    build_platform: Platform
    build_args: BuildArgs
    meta: MetaArgs
    main_context: MainContext
    epoch: int | None = None
    proxy_env: dict[str, str] = field(default_factory=dict)  # llb keys: http_proxy, ...
    cache_ns: str = ""
    hostname: str = ""
    warnings: list[ConvertWarning] = field(default_factory=list)
    current_onbuild: bool = False  # the instruction being dispatched is an ONBUILD trigger
    labs: bool = False  # `# syntax=` names a labs frontend: RUN --device is available
    lint: Linter = field(default_factory=Linter)  # the instruction's (its # check= comment)

    def __post_init__(self) -> None:
        # Vertex names expand variables but keep quotes and unknown references.
        self.name_lex = ShellLex(self.lex.escape, raw_quotes=True, skip_unset_env=True)

    def expand(self, word: str, env: Mapping[str, str]) -> str:
        return self.lex.process_word(word, env)

    def display_text(self, instr: Any, env: Mapping[str, str], *, raw: bool = False) -> str:
        """The instruction's source text with variables expanded, for vertex names."""
        text = str(instr.original)
        try:
            return (self.name_lex if raw else self.lex).process_word(text, env)
        except ExpansionError:
            return text

    def location(self, instr: Any) -> llb.Location | None:
        loc = getattr(instr, "location", None)
        if loc is None or self.source is None:
            return None
        return self.source.location(loc.start_line, loc.end_line)

    def timestamp(self) -> int | None:
        """SOURCE_DATE_EPOCH in nanoseconds for files the build creates, else None."""
        return None if self.epoch is None else self.epoch * 1_000_000_000
