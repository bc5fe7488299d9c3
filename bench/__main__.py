"""``python -m bench``: run a scenario, set up Synapse, or render the report.

Examples::

    python -m bench run direct --runs 3 --synapse --profile /tmp/carnet.txt
    python -m bench run idle --connections 10000 --runs 3
    python -m bench synapse-setup
    python -m bench report
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bench.scenarios import Params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario side by side with the baselines")
    run.add_argument(
        "scenario", choices=("direct", "class", "announcement", "idle", "reconnect", "offline")
    )
    defaults = Params()
    run.add_argument("--runs", type=int, default=3)
    run.add_argument(
        "--duration",
        type=float,
        default=defaults.duration,
        help="seconds of sending per measured phase",
    )
    run.add_argument(
        "--window",
        type=int,
        default=defaults.window,
        help="sends in flight per device (awaiting `sent`)",
    )
    run.add_argument("--size", type=int, default=defaults.size, help="ciphertext bytes")
    run.add_argument(
        "--workers", type=int, default=defaults.workers, help="load-generator processes"
    )
    run.add_argument("--pairs", type=int, default=defaults.pairs, help="direct: device pairs")
    run.add_argument("--members", type=int, default=defaults.members, help="class: members")
    run.add_argument(
        "--families", type=int, default=defaults.families, help="announcement: recipients"
    )
    run.add_argument(
        "--connections",
        type=int,
        default=defaults.connections,
        help="idle, reconnect, offline: devices",
    )
    run.add_argument(
        "--messages",
        type=int,
        default=defaults.messages,
        help="announcement: messages; reconnect/offline: messages per device",
    )
    run.add_argument(
        "--with-crypto",
        action="store_true",
        help="direct: real Double Ratchet encryption in the load generator",
    )
    run.add_argument(
        "--no-receipts",
        action="store_true",
        help="the bench schools turn delivered and read receipts off",
    )
    run.add_argument(
        "--catch-up-timeout",
        type=float,
        default=defaults.catch_up_timeout,
        help="reconnect/offline: seconds to wait for every device to catch up",
    )
    run.add_argument("--no-relay", action="store_true", help="skip the bare relay baseline")
    run.add_argument("--no-database", action="store_true", help="skip the raw insert baseline")
    run.add_argument("--synapse", action="store_true", help="direct: also run Synapse")
    run.add_argument("--profile", type=Path, help="py-spy collapsed stacks of Carnet")
    run.add_argument(
        "--profile-run", type=int, default=1, help="which run --profile records (1 = the first)"
    )
    run.add_argument("--native", action="store_true", help="py-spy --native")
    run.add_argument(
        "--server-source",
        type=Path,
        help="run Carnet from this source tree (e.g. an exported commit)",
    )
    run.add_argument(
        "--results", type=Path, default=Path(__file__).parent / "results", help="JSON goes here"
    )
    setup = commands.add_parser("synapse-setup", help="install Synapse in bench/.synapse-venv")
    setup.add_argument("--reinstall", action="store_true")
    report = commands.add_parser("report", help="render bench/results into docs/performance.md")
    report.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    report.add_argument("--doc", type=Path, default=Path("docs/performance.md"))
    args = parser.parse_args(argv)
    # SIGTERM unwinds like SIGINT, so that every server this run started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    from bench.wire import BenchError

    try:
        if args.command == "run":
            from bench import runner

            params = Params(
                duration=args.duration,
                window=args.window,
                size=args.size,
                workers=args.workers,
                pairs=args.pairs,
                members=args.members,
                families=args.families,
                connections=args.connections,
                messages=args.messages,
                with_crypto=args.with_crypto,
                receipts=not args.no_receipts,
                catch_up_timeout=args.catch_up_timeout,
            )
            runner.run(
                args.scenario,
                params,
                args.runs,
                relay=not args.no_relay,
                db=not args.no_database,
                with_synapse=args.synapse,
                profile=args.profile,
                profile_run=args.profile_run,
                native=args.native,
                source=args.server_source,
                results=args.results,
            )
        elif args.command == "synapse-setup":
            from bench import synapse

            print(f"matrix-synapse {synapse.setup(args.reinstall)} in {synapse.VENV}")
        else:
            from bench.report import render

            render(args.results, args.doc)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
