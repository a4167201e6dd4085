"""``bkpyd``: the builder daemon (gRPC on unix sockets and TCP, optionally mutual TLS)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import click

from buildkit_py import __version__
from buildkit_py.api.tls import TLSFiles
from buildkit_py.config import check_entitlement, load_config
from buildkit_py.errors import UsageError, UserError

DEFAULT_ADDRESS = "unix:///run/bkpy/bkpyd.sock"
SHUTDOWN_GRACE = 10.0

_log = logging.getLogger("bkpyd")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _unix_path(addr: str) -> Path:
    return Path(addr.removeprefix("unix://"))


def _prepare_unix(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a stale socket of a dead daemon
        else:
            raise UsageError(f"another daemon listens on {path}")
        finally:
            probe.close()


def _bind(server: Any, addresses: list[str], tls: TLSFiles, insecure_tcp: bool) -> list[Path]:
    sockets: list[Path] = []
    for addr in addresses:
        if addr.startswith("unix://"):
            path = _unix_path(addr)
            _prepare_unix(path)
            server.add_insecure_port(f"unix:{path}")
            sockets.append(path)
        elif addr.startswith("tcp://"):
            hostport = addr.removeprefix("tcp://")
            host, _, port = hostport.rpartition(":")
            if not host or not port.isdigit():
                raise UsageError(f"--addr {addr}: expected tcp://HOST:PORT")
            if tls.enabled:
                bound = server.add_secure_port(hostport, tls.server_credentials())
            elif _is_loopback(host) or insecure_tcp:
                # Said loudly at every start: anyone who can connect may run builds.
                _log.warning("%s: plain TCP, no TLS: every local user (or host, off "
                             "loopback) that can connect can run builds on this daemon; "
                             "give --tlscert/--tlskey/--tlscacert for mutual TLS", addr)
                bound = server.add_insecure_port(hostport)
            else:
                raise UsageError(f"--addr {addr}: plain TCP on a non-loopback address",
                                 hint="give --tlscert/--tlskey (and --tlscacert for mutual "
                                      "TLS), or --insecure-tcp if you really mean it")
            if bound == 0:
                raise UsageError(f"cannot listen on {addr}")
        else:
            raise UsageError(f"--addr {addr}: unknown scheme",
                             hint="use unix:///PATH or tcp://HOST:PORT")
    return sockets


def serve(root: Path | None, config_path: Path | None, addresses: list[str], tls: TLSFiles,
          insecure_tcp: bool, ready: threading.Event | None = None,
          insecure_entitlements: tuple[str, ...] = ()) -> None:
    # reason: the builder core and grpc load only when serving, not for --help/--version
    from buildkit_py.builder.ownership import open_owned_builder
    from buildkit_py.builder.worker_info import worker_platforms
    from buildkit_py.control.server import make_server

    config = load_config(config_path)
    worker_platforms(config)  # a bad [worker.oci] platform stops bkpyd, as buildkitd
    if config.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    for line in config.ignored:
        _log.warning("config: %s", line)
    # buildkitd.toml's [grpc]: used when the command line does not say
    if not addresses:
        addresses = config.grpc.addresses or [DEFAULT_ADDRESS]
    if not (tls.cert or tls.key or tls.cacert):
        tls = TLSFiles(cacert=config.grpc.tls_ca, cert=config.grpc.tls_cert,
                       key=config.grpc.tls_key)
    config.insecure_entitlements = list(dict.fromkeys(
        [*config.insecure_entitlements,
         *(check_entitlement(e, "--allow-insecure-entitlement") for e in insecure_entitlements)]))
    if root is not None:
        config.root = root
    config.root = config.root.absolute()
    if (config.root / "buildkitd.lock").exists():
        # a buildkitd.toml copied as it is names buildkitd's own state directory
        raise UsageError(f"state directory {config.root} belongs to buildkitd (it holds "
                         "buildkitd.lock)",
                         hint="give bkpyd a root of its own: --root DIR, or root = in the "
                              "config")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # the root is this daemon's alone (bkpy commands on it wait); see ownership.py
        with open_owned_builder(config, "bkpyd", wait=False) as builder:
            server, service = make_server(builder)
            sockets = _bind(server, addresses, tls, insecure_tcp)
            server.start()
            for path in sockets:
                path.chmod(0o660)
                if config.grpc.uid is not None or config.grpc.gid is not None:
                    try:
                        os.chown(path, -1 if config.grpc.uid is None else config.grpc.uid,
                                 -1 if config.grpc.gid is None else config.grpc.gid)
                    except OSError as err:
                        raise UsageError(f"cannot give {path} to uid/gid of [grpc]: "
                                         f"{err.strerror}") from None
            _log.info("bkpyd %s listening on %s (root %s)", __version__,
                      ", ".join(addresses), config.root)
            service.start_gc()  # as buildkitd, a GC run right after start
            if ready is not None:
                ready.set()
            stop.wait()
            _log.info("shutting down")
            done = server.stop(SHUTDOWN_GRACE)
            service.sessions.close_all()
            done.wait()
            service.stop_gc()  # builds are over; a GC still running ends before the builder
            for path in sockets:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("bkpyd", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bkpyd")
@click.option("--root", type=click.Path(file_okay=False), envvar="BKPY_ROOT",
              help="State directory (default: /var/lib/bkpy).")
@click.option("--config", "config", type=click.Path(dir_okay=False),
              help="TOML configuration (default: /etc/bkpy/bkpyd.toml).")
@click.option("--addr", "addresses", multiple=True,
              help="unix:///PATH or tcp://HOST:PORT (repeatable; default: the config's [grpc] "
                   f"address, else {DEFAULT_ADDRESS}).")
@click.option("--tlscacert", help="CA certificate: clients must present a cert it signed.")
@click.option("--tlscert", help="Server certificate (TCP listeners).")
@click.option("--tlskey", help="Server private key.")
@click.option("--insecure-tcp", is_flag=True,
              help="Allow plain TCP on a non-loopback address.")
@click.option("--allow-insecure-entitlement", "insecure_entitlements", multiple=True,
              help="Let builds be granted network.host or security.insecure (repeatable).")
@click.option("--debug", is_flag=True, envvar="BKPY_DEBUG", help="Debug logging.")
def cli(root: str | None, config: str | None, addresses: tuple[str, ...],
        tlscacert: str | None, tlscert: str | None, tlskey: str | None,
        insecure_tcp: bool, insecure_entitlements: tuple[str, ...], debug: bool) -> None:
    """Run the builder daemon."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    tls = TLSFiles(cacert=tlscacert, cert=tlscert, key=tlskey)
    serve(Path(root) if root else None, Path(config) if config else None,
          list(addresses), tls, insecure_tcp,
          insecure_entitlements=insecure_entitlements)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="bkpyd", standalone_mode=False)
    except UserError as err:
        if os.environ.get("BKPY_DEBUG", "") not in ("", "0", "false"):
            traceback.print_exc()
        click.echo(err.render(), err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
