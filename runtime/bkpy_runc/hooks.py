"""OCI lifecycle hooks: run each with the container state JSON on stdin."""

from __future__ import annotations

from .errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any


def preload() -> None:
    """Import what running hooks needs while the host's stdlib is still reachable.

    Container-side hooks run after pivot_root, where lazy imports would fail.
    """
    import subprocess  # noqa: F401


def run(kind: str, hooks: list[dict[str, Any]], state_json: str) -> None:
    if not hooks:
        return
    import subprocess

    for hook in hooks:
        path = hook.get("path", "")
        args = list(hook.get("args") or [path])
        env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
        what = f"{kind} hook {path}"
        try:
            res = subprocess.run(args, executable=path, input=state_json.encode(), env=env,
                                 capture_output=True, timeout=hook.get("timeout"), check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(what, f"timed out after {hook.get('timeout')}s") from None
        except OSError as e:
            raise RuntimeFailure(what, e) from None
        if res.returncode != 0:
            detail = (res.stderr or res.stdout).decode(errors="replace").strip().replace("\n", " ")
            raise RuntimeFailure(what, f"exit status {res.returncode}"
                                 + (f": {detail}" if detail else ""))
