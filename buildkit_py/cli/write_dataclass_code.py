"""``python -m buildkit_py.cli.write_dataclass_code``: store the compiled methods of every
dataclass the package defines (:mod:`dataclass_code`) now, as ``compileall`` writes
bytecode, also under ``PYTHONDONTWRITEBYTECODE``. ``scripts/setup.sh`` runs it."""

from __future__ import annotations

from buildkit_py.cli import dataclass_code


def main() -> None:
    dataclass_code.install()
    # reason: loaded only once the table serves dataclasses; what the command server
    # imports when it warms up is everything a command may load
    from buildkit_py.cli.cmdserver import warm_up

    warm_up()
    dataclass_code.save(always=True)


if __name__ == "__main__":
    main()
