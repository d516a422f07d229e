"""`idp serve`: the provider under granian or gunicorn; its workers take turns at its loops (delivery, prune, checkpoints).

The app is loaded once, in this process, and every worker is forked from it: they share its pages
instead of each importing and building an app of its own. The loops are threads of one worker at a
time (idp.ops.serving)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
    help="The WSGI server (see bench/README.md for why granian is the default).",
)
@click.option(
    "--no-delivery",
    "--no-mail",
    "no_delivery",
    is_flag=True,
    help="Do not run the delivery loop beside the server: this instance then sends neither mail nor "
         "back-channel logouts (run `idp mail deliver --loop` elsewhere). --no-mail is its older name.",
)
@click.option(
    "--scheduling",
    type=click.Choice(["batch", "normal"]),
    default="batch",
    show_default=True,
    help="The kernel's scheduling policy for the server's processes and threads: batch lets a thread "
         "that woke another keep the CPU until it waits (fewer context switches, less CPU a request); "
         "normal is every process's default.",
)
@with_appcontext
def serve(host, port, workers, threads, server, no_delivery, scheduling):
    """Serve production-style (N worker processes), and deliver queued mail and back-channel logouts."""
    from ..extensions import db
    from ..ops import serving
    from ..services import keys

    serving.schedule(scheduling)
    keys.ensure()
    db.session.remove()
    db.engine.dispose()
    app = current_app._get_current_object()
    serving.warn_if_limits_count_per_worker(app, workers)
    serving.preload(app)
    # The metrics directory for the workers; the delivery loop and the hourly prune, which they take turns at.
    sidecars = serving.start(app, delivery=not no_delivery)
    try:
        click.echo(f"idp serving on http://{host}:{port} with {workers} {server} workers", err=True)
        (_serve_granian if server == "granian" else _serve_gunicorn)(app, sidecars, host, port, workers, threads)
    finally:
        sidecars.stop()


def _serve_granian(app, sidecars, host, port, workers, threads):
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces

    # Workers are forked from this process and take its app as it is (never pickled nor loaded again).
    multiprocessing.set_start_method("fork", force=True)

    def in_worker():  # granian calls it in each worker, once forked
        sidecars.in_worker(wake=True)  # its main thread sleeps until its SIGTERM handler runs
        return app

    server = Granian(
        "idp:create_app",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        websockets=False,
        workers=workers,
        blocking_threads=threads,
        respawn_failed_workers=True,
        log_access=False,
    )
    server.on_startup(sidecars.close_turn_on_signals)  # called once granian has set its signal handlers
    server.serve(target_loader=in_worker, wrap_loader=False)


def _serve_gunicorn(app, sidecars, host, port, workers, threads):
    from gunicorn.app.base import BaseApplication

    from ..ops.serving import ORPHAN_GRACE

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", int(ORPHAN_GRACE))
            self.cfg.set("proc_name", "idp")
            # Several servers on one machine must not share gunicorn's control socket.
            self.cfg.set("control_socket_disable", True)
            self.cfg.set("preload_app", True)  # the workers are forked with the app loaded here
            self.cfg.set("post_worker_init", lambda worker: sidecars.in_worker())
            self.cfg.set("when_ready", lambda arbiter: sidecars.close_turn_on_signals())

        def load(self):
            return app

    Server().run()


COMMANDS = (serve,)
