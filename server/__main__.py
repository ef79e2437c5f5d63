"""`python -m server`: load the model once, then serve the app."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import NoReturn

import uvicorn

from server import connections
from server.engines.base import ModelLoadError
from server.security import is_loopback
from server.settings import BY_NAME, SETTINGS, Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """A flag per setting (secrets excepted), taken as text and checked by `Settings.load`, so a
    bad value is one `bad setting` line naming the setting, like a bad environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="snake_llama: a private chat with a local model, served to your browser.",
        epilog="Settings also come from the environment and .env (see .env.example); flags win."
        " API_KEY and OPENAI_API_KEY are read from the environment only.",
        allow_abbrev=False,
    )
    for declared in SETTINGS:
        if not declared.flags:
            continue
        about = declared.help
        if declared.shown_default:
            about += f" Default: {declared.shown_default}."
        if declared.kind in ("int", "float") and declared.values:
            about += f" Range: {declared.values}."
        about = about.replace("%", "%%")
        if declared.kind == "bool":  # `--dev` alone means yes
            parser.add_argument(*declared.flags, dest=declared.name, nargs="?", const="yes", metavar="yes|no",
                                help=about)
        else:
            metavar = "{" + ",".join(declared.choices) + "}" if declared.choices else declared.env
            parser.add_argument(*declared.flags, dest=declared.name, metavar=metavar, help=about)
    parser.add_argument("--reload", action="store_true", help="restart the server when server/ changes")
    return parser.parse_args(argv)


def fail(message: str) -> NoReturn:
    print(f"snake_llama: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def fail_loading(exc: ModelLoadError) -> NoReturn:
    """The model failed to load after the server started: one line, exit code 2, now."""
    print(f"snake_llama: error: {exc}", file=sys.stderr, flush=True)
    os._exit(2)  # sys.exit would only end the loader's task; the server must not stay up


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides: dict[str, str] = {k: v for k, v in vars(args).items() if k != "reload" and v is not None}
    try:
        settings = Settings.load(**overrides)
    except ValueError as exc:
        fail(f"bad setting: {exc}")
    if not is_loopback(settings.host) and not settings.keys and not settings.allow_insecure:
        fail(
            f"refusing to serve on {settings.host} without API_KEY: anyone who can reach it could use"
            " the model; set API_KEY, or pass --allow-insecure if that is what you want"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    # httpx would log every call to llama.cpp's private listener and to a remote engine
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.reload:
        # uvicorn's reloader imports the app in a fresh process, which sees flags only as env
        for name, value in overrides.items():
            os.environ[BY_NAME[name].env] = value
        uvicorn.run("server.asgi:app", host=settings.host, port=settings.port, reload=True,
                    reload_dirs=["server"], factory=False)
        return
    from server.app import create_app
    from server.engines.loader import plan_engine, resolve_model_path

    try:
        load_engine = plan_engine(settings)
    except ModelLoadError as exc:
        fail(str(exc))
    from server.mcp_servers import ConfigError

    try:
        app = create_app(settings, load_engine, fail_loading)
    except ConfigError as exc:
        fail(str(exc))
    where = settings.openai_base_url if settings.engine == "openai" else resolve_model_path(settings)
    print(f"snake_llama: loading {where};"
          f" serving on http://{settings.host}:{settings.port}", file=sys.stderr)
    limits = connections.Limits(settings.header_timeout_s, settings.max_connections,
                                settings.max_connections_per_client, settings.send_timeout_s)
    http = connections.protocol(connections.fitted(limits, connections.raise_fd_limit()))
    # our AccessLog middleware writes one richer line per request instead of uvicorn's
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            http=http, timeout_keep_alive=settings.idle_timeout_s)
    try:
        sockets = [listen(settings.host, port) for port in (settings.port, settings.ollama_port) if port]
    except OSError as exc:
        fail(f"cannot listen on {settings.host}: {exc.strerror} ({exc.filename or exc})")
    if settings.ollama_port:
        print(f"snake_llama: also serving on http://{settings.host}:{settings.ollama_port} for Ollama's clients",
              file=sys.stderr)
    uvicorn.Server(config).run(sockets=sockets)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket as uvicorn binds one; ours so that one server can take two ports."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, exc.strerror, f"port {port}") from exc
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
