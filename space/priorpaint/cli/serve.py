"""``priorpaint serve`` (the web app and its API) and ``priorpaint space-export``."""

from __future__ import annotations


def cmd_serve(args) -> int:
    from ..app.server import cmd_serve as serve
    return serve(args)


def cmd_space_export(args) -> int:
    from ..app.server import cmd_space_export as export
    return export(args)


def add_parser(sub) -> None:
    from ..app.limits import add_flags
    from ..app.server import DEFAULT_HOST, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT

    p = sub.add_parser("serve", help="run the web app and its API (Gradio) on 127.0.0.1:7860",
                       description="Run the web app and its API. Every request is bounded (the flags below); a "
                                   "request over a bound is refused with one line before any work. Without a "
                                   "token the server answers only loopback Host names and its own origin.")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to bind (default 127.0.0.1; ::1 works; any non-loopback address needs --token)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument("--model", default=None, help="default model id (default: dcgan-digiface-64)")
    p.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' on every request; at least 16 characters "
                        "(default: $PRIORPAINT_TOKEN)")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest uploaded file accepted, in MB; larger ones get HTTP 413 (default 50)")
    p.add_argument("--max-sessions", type=int, default=32, help="sessions kept in memory, all clients (LRU, default 32)")
    p.add_argument("--max-session-mb", type=float, default=512.0,
                   help="memory for sessions in MB, all clients (LRU by bytes, default 512; one client may "
                        "hold a quarter)")
    p.add_argument("--session-ttl", type=float, default=3600.0, help="seconds an unused session is kept (default 3600)")
    p.add_argument("--slots", type=int, default=2, help="engine jobs run at once; others wait (default 2)")
    p.add_argument("--steps", type=int, default=200, help="default projection steps of the app (default 200)")
    p.add_argument("--forwarded-allow-ips", default=None,
                   help="proxies (comma-separated addresses or networks) whose X-Forwarded-For and "
                        "X-Forwarded-Proto are believed; default none ($PRIORPAINT_FORWARDED_ALLOW_IPS; in a "
                        "Hugging Face Space: the private networks its proxy comes from)")
    p.add_argument("--verbose-server", action="store_true", help="print the HTTP server's messages")
    add_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("space-export",
                       help="write the Space's files, the priorpaint package and its manifests into DIR, a folder deployable as a Hugging Face Space")
    p.add_argument("dir", help="the folder to write (created; must be empty unless --force)")
    p.add_argument("--force", action="store_true", help="replace the contents of a non-empty DIR")
    p.set_defaults(func=cmd_space_export)
