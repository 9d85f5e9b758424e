"""``fieldkit-server init`` and ``serve``: make a town (keys, database, TLS) and run it."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from fieldkit.i18n import t

from .cli_base import CliError
from .cli_base import open_town as _open
from .repository import open_repository
from .town import ServerSettings, TownKeys

DEFAULT_PORT = 8470


LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")  # plain HTTP there never leaves this machine


def _print_town_cert(cert: Path, fingerprint: str, names: list[str] | None = None) -> None:
    from fieldkit.i18n import t

    print(t("server_security.serve.town_cert", path=cert, fingerprint=fingerprint))
    if names:
        print(t("server_security.serve.tls_host", names=", ".join(names)))


def cmd_init(args: argparse.Namespace) -> int:
    from .tls import cert_paths, make_self_signed

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "town-keys.json").exists():
        if args.tls_self_signed and not cert_paths(data_dir)[0].exists():
            # An existing town gains its own certificate; its keys stay as they are.
            _print_town_cert(*make_self_signed(data_dir, args.tls_host or []))
            return 0
        raise CliError(t("server.err.keys_exist", path=str(data_dir)))
    settings = ServerSettings(database_url=args.database_url or "", db_schema=args.db_schema or "")
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    try:
        repo.create_schema()
    finally:
        repo.close()
    keys = TownKeys.generate()
    keys.save(data_dir)
    settings.save(data_dir)
    print(t("server.init.done", path=str(data_dir)))
    storage = repo.backend + (f" ({args.database_url})" if args.database_url else "")
    print(t("server.init.storage", storage=storage))
    print(t("server.init.fingerprint", fingerprint=keys.fingerprint))
    if args.tls_self_signed:
        _print_town_cert(*make_self_signed(data_dir, args.tls_host or []))
    print(t("server.init.keep_secret", path=str(data_dir / "town-keys.json")))
    print(t("server.init.next", path=str(data_dir)))
    return 0


def _tls_files(args: argparse.Namespace, data_dir: Path) -> tuple[str | None, str | None]:
    """The certificate and key to serve with: given ones, else the town's own, else none."""
    from fieldkit.i18n import t

    from .tls import cert_paths

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError(t("server_security.serve.tls_pair"))
    if not args.tls_cert:
        cert, key = cert_paths(data_dir)
        if not (cert.exists() and key.exists()):
            return None, None
        args.tls_cert, args.tls_key = str(cert), str(key)
    for path in (args.tls_cert, args.tls_key):
        try:
            Path(path).read_bytes()
        except OSError as err:
            raise CliError(
                t("server_security.serve.tls_missing", path=path, reason=err.strerror or err)
            ) from None
    return args.tls_cert, args.tls_key


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fieldkit.i18n import t

    from .app import create_app
    from .device_scope import DeviceScopes

    data_dir, settings, keys, repo = _open(args)
    tls_cert, tls_key = _tls_files(args, data_dir)
    insecure = not tls_cert and args.host not in LOCAL_HOSTS
    if insecure and not args.insecure_http:
        repo.close()
        raise CliError(t("server_security.serve.plain_http_refused", host=args.host))
    repo.create_schema()  # idempotent; upgrades a database made by an older version
    handlers: list[logging.Handler] = [
        logging.StreamHandler(),
        logging.FileHandler(data_dir / "server.log"),
    ]
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if insecure:
        logging.getLogger("fieldkit.server").warning(
            t("server_security.serve.insecure_warning", host=args.host)
        )
    app = create_app(keys, repo, settings, scopes=DeviceScopes(data_dir), insecure_http=insecure)
    scheme = "https" if tls_cert else "http"
    print(
        t(
            "server.serve.listening",
            url=f"{scheme}://{args.host}:{args.port}",
            backend=repo.backend,
            fingerprint=keys.fingerprint,
        ),
        flush=True,
    )
    options = {
        "host": args.host,
        "port": args.port,
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
        "log_level": "warning",
        "access_log": False,
        "timeout_keep_alive": 30,
    }
    try:
        if args.workers > 1:
            # Each worker process builds its own app (and storage connections).
            os.environ["FIELDKIT_SERVER_DIR"] = str(data_dir)
            os.environ["FIELDKIT_INSECURE_HTTP"] = "1" if insecure else "0"
            uvicorn.run(
                "sync.server.app:create_app_from_env", factory=True, workers=args.workers, **options
            )
        else:
            uvicorn.run(app, **options)
    finally:
        repo.close()
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``init`` and ``serve`` to the ``fieldkit-server`` parser."""
    p = sub.add_parser("init", parents=[common], help="create the town's keys and database")
    p.add_argument("--database-url", help="postgresql://… (default: SQLite in the data dir)")
    p.add_argument("--db-schema", help="PostgreSQL schema for the tables (default public)")
    p.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="also make the town's own TLS certificate (serve uses it; device tokens pin it); "
        "on an existing town: add one",
    )
    p.add_argument(
        "--tls-host",
        action="append",
        help="name or address devices reach the server by (repeatable; localhost, "
        "127.0.0.1 and this host's name are always in)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs TLS or --insecure-http)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of the certificate")
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP on a non-local address (warned at start and every enrollment)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (PostgreSQL; SQLite gains little)"
    )
    p.set_defaults(func=cmd_serve)
