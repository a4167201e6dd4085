"""runc-compatible command line: global flags, then a command with its own flags."""

from __future__ import annotations

import os
import sys

from . import OCI_VERSION, __version__, jsonio
from . import state as state_mod
from .errors import RuntimeFailure

USAGE = """usage: bkpy-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND

commands:
  run [--bundle DIR] [--pid-file FILE] [--detach] [--no-pivot] ID
  create [--bundle DIR] [--pid-file FILE] [--no-pivot] ID
  start ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  list [--quiet] [--format table|json]
  exec [--tty --console-socket PATH] [--detach] [--pid-file PATH] [--cwd DIR] ID COMMAND...
"""

# flag -> (option key, takes a value)
_GLOBAL = {
    "--root": ("root", True), "--log": ("log", True), "--log-format": ("log_format", True),
    "--debug": ("debug", False), "--systemd-cgroup": ("systemd_cgroup", False),
    "--rootless": ("rootless", True), "--criu": ("criu", True),
}
_CREATE = {
    "--bundle": ("bundle", True), "-b": ("bundle", True), "--pid-file": ("pid_file", True),
    "--no-pivot": ("no_pivot", False), "--console-socket": ("console_socket", True),
    "--preserve-fds": ("preserve_fds", True), "--no-new-keyring": ("no_new_keyring", False),
}
_COMMANDS: dict[str, dict[str, tuple[str, bool]]] = {
    "run": {**_CREATE, "--detach": ("detach", False), "-d": ("detach", False),
            "--keep": ("keep", False)},
    "create": _CREATE,
    "start": {},
    "state": {},
    "kill": {"--all": ("all", False), "-a": ("all", False)},
    "delete": {"--force": ("force", False), "-f": ("force", False)},
    "list": {"--quiet": ("quiet", False), "-q": ("quiet", False),
             "--format": ("format", True), "-f": ("format", True)},
    "exec": {"--tty": ("tty", False), "-t": ("tty", False),
             "--console-socket": ("console_socket", True), "--detach": ("detach", False),
             "-d": ("detach", False), "--pid-file": ("pid_file", True),
             "--cwd": ("cwd", True)},
}


class _Usage(Exception):
    pass


def _parse(args: list[str], table: dict[str, tuple[str, bool]],
           stop_at_positional: bool) -> tuple[dict[str, str | bool], list[str]]:
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-" and not (rest and stop_at_positional):
            name, eq, value = arg.partition("=")
            key_takes = table.get(name)
            if key_takes is None and not name.startswith("--") and len(name) > 2:
                key_takes = table.get("-" + name)  # Go flags accept -flag as well as --flag
            if key_takes is None:
                raise _Usage(f"unknown flag {arg}")
            key, takes = key_takes
            if takes:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise _Usage(f"flag {name} needs a value")
                    value = args[i]
                opts[key] = value
            else:
                opts[key] = value.lower() not in ("false", "0") if eq else True
        else:
            if stop_at_positional:
                rest.extend(args[i:])
                break
            rest.append(arg)
        i += 1
    return opts, rest


def _log(opts: dict[str, str | bool], msg: str) -> None:
    path = opts.get("log")
    if not isinstance(path, str) or not path:
        return
    when = state_mod.timestamp()
    if opts.get("log_format") == "json":
        line = jsonio.dumps({"level": "error", "msg": msg, "time": when})
    else:
        line = f'time="{when}" level=error msg={jsonio.dumps(msg)}'
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    gopts: dict[str, str | bool] = {}
    try:
        if args and args[0] in ("--version", "-v", "version"):
            sys.stdout.write(f"bkpy-runc version {__version__}\nspec: {OCI_VERSION}\n")
            return 0
        if not args or args[0] in ("--help", "-h", "help"):
            sys.stdout.write(USAGE)
            return 0 if args else 2
        gopts, rest = _parse(args, _GLOBAL, stop_at_positional=True)
        if not rest:
            raise _Usage("missing command")
        cmd, cargs = rest[0], rest[1:]
        if cmd not in _COMMANDS:
            raise _Usage(f"unknown command {cmd!r}")
        # exec: the command after the id keeps its own flags
        copts, pos = _parse(cargs, _COMMANDS[cmd], stop_at_positional=cmd == "exec")
        root = str(gopts.get("root") or state_mod.DEFAULT_ROOT)
        return _dispatch(cmd, root, copts, pos)
    except _Usage as e:
        sys.stderr.write(f"bkpy-runc: {e}\n{USAGE}")
        return 2
    except RuntimeFailure as e:
        sys.stderr.write(f"bkpy-runc: {e}\n")
        _log(gopts, str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug must still end as one line, not a traceback
        from .report import describe

        msg = describe(e)
        sys.stderr.write(f"bkpy-runc: {msg}\n")
        _log(gopts, msg)
        return 1


def _one_id(cmd: str, pos: list[str], extra: int = 0) -> str:
    if not 1 <= len(pos) <= 1 + extra:
        raise _Usage(f"{cmd}: expected a container id")
    return pos[0]


def _dispatch(cmd: str, root: str, opts: dict[str, str | bool], pos: list[str]) -> int:
    from . import container

    if cmd in ("run", "create"):
        cid = _one_id(cmd, pos)
        try:
            preserve = int(opts.get("preserve_fds") or 0)
        except ValueError:
            raise _Usage("--preserve-fds needs a number") from None
        return container.create(container.Options(
            root, cid, str(opts.get("bundle") or os.getcwd()), run=cmd == "run",
            detach=bool(opts.get("detach")), pid_file=str(opts.get("pid_file") or ""),
            no_pivot=bool(opts.get("no_pivot")), preserve_fds=preserve,
            console_socket=str(opts.get("console_socket") or "")))
    if cmd == "exec":
        from . import exec_process

        if not pos:
            raise _Usage("exec: expected a container id and a command")
        return exec_process.exec_process(exec_process.Options(
            root, pos[0], pos[1:], tty=bool(opts.get("tty")),
            console_socket=str(opts.get("console_socket") or ""),
            detach=bool(opts.get("detach")), pid_file=str(opts.get("pid_file") or ""),
            cwd=str(opts.get("cwd") or "")))
    if cmd == "start":
        container.start(root, _one_id(cmd, pos))
    elif cmd == "state":
        st = state_mod.load(root, _one_id(cmd, pos))
        sys.stdout.write(jsonio.dumps(st.public(), indent="  ") + "\n")
    elif cmd == "kill":
        from . import signals

        cid = _one_id(cmd, pos, extra=1)
        container.kill(root, cid, signals.parse(pos[1]) if len(pos) > 1 else 15)
    elif cmd == "delete":
        container.delete(root, _one_id(cmd, pos), bool(opts.get("force")))
    elif cmd == "list":
        _list(root, opts)
    return 0


def _list(root: str, opts: dict[str, str | bool]) -> None:
    states = []
    for cid in state_mod.list_ids(root):
        try:
            states.append(state_mod.load(root, cid).public())
        except RuntimeFailure:
            continue
    if opts.get("quiet"):
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return
    if opts.get("format") == "json":
        sys.stdout.write(jsonio.dumps(states) + "\n")
        return
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"] or "root"]
             for s in states]
    widths = [max(12, *(len(r[i]) + 3 for r in rows)) for i in range(len(rows[0]) - 1)]
    for r in rows:
        cells = (c.ljust(w) for c, w in zip(r, widths, strict=False))
        sys.stdout.write("".join(cells) + r[-1] + "\n")
