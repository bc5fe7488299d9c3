"""One ``python -m bench run SCENARIO``: servers, population, runs, medians, JSON.

Side by side in the same run (issue 9): Carnet, the bare relay on the same
load, the database's raw insert rate, and (``--synapse``) Synapse on
``direct``. Each repetition measures all of them one after the other, so a
noisy moment of the machine hits the ratios of one repetition only; the
report gives the medians of the repetitions and the medians of the ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dbinsert, layout, synapse
from bench.pool import median_of
from bench.profiling import start_py_spy, top_costs
from bench.scenarios import Catchup, Direct, Fanout, Idle, Params
from bench.servers import ServerProcess, start_carnet, start_relay

RESULTS = Path(__file__).parent / "results"
SCENARIOS = ("direct", "class", "announcement", "idle", "reconnect", "offline")
RELAYED = ("direct", "class", "announcement", "idle")

KEY_FIGURES = (
    "messages_per_s",
    "deliveries_per_s",
    "latency_ms.p50",
    "latency_ms.p95",
    "latency_ms.p99",
    "half_rate.messages_per_s",
    "half_rate.latency_ms.p50",
    "half_rate.latency_ms.p99",
    "server_cpu_us_per_delivery",
    "database_cpu_us_per_delivery",
    "server_rss_mib",
    "rss_per_connection_kib",
    "logins_per_s",
    "catch_up_seconds",
    "queue_sends_per_s",
    "db_writes_per_message",
    "db_writes_per_delivery",
    "receipts_per_message",
)


def raise_nofile() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one (inherited by every child)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft, hard
    return hard, hard


def server_commit(tree: Path) -> str:
    """The tree's commit, ``+dirty`` if the server's packages differ from it (shared tree)."""
    git = ["git", "-C", str(tree)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "server", "storage", "moderation", "protocol"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if changed else "")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile": list(raise_nofile()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def build(scenario: str, server: ServerProcess, p: Params, made: layout.Layout) -> Any:
    if scenario == "direct":
        return Direct(server, made.pairs, p)
    if scenario == "class":
        return Fanout(server, made.senders[0], made.members, p, count=10_000, window=p.window)
    if scenario == "announcement":
        return Fanout(server, made.senders[0], made.members, p, count=p.messages, window=1)
    if scenario == "idle":
        return Idle(server, made.members, p)
    return Catchup(server, made.senders, made.members, p, pairwise=scenario == "offline")


def run(
    scenario: str,
    p: Params,
    runs: int,
    relay: bool,
    db: bool,
    with_synapse: bool,
    profile: Path | None,
    native: bool,
    source: Path | None = None,
    results: Path = RESULTS,
    profile_run: int = 1,
) -> dict[str, Any]:
    """Run ``scenario`` ``runs`` times side by side with the baselines; write the JSON."""
    info = machine()
    started = datetime.now(UTC)
    tmp = tempfile.TemporaryDirectory(prefix="carnet-bench-")
    servers: list[ServerProcess] = []
    subjects: dict[str, Any] = {}
    synapse_server: synapse.SynapseServer | None = None
    result: dict[str, Any] = {
        "scenario": scenario,
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "params": p.__dict__,
        "runs": [],
    }
    try:
        carnet = start_carnet(Path(tmp.name) / "carnet", source)
        result["server_source"] = str(source) if source else "installed"
        result["server_commit"] = server_commit(source or Path.cwd())
        servers.append(carnet)
        t0 = time.monotonic()
        made = asyncio.run(layout.make(carnet, scenario, p))
        n = len(made.members) + len(made.senders) + 2 * len(made.pairs)
        result["enrolment_seconds"] = round(time.monotonic() - t0, 1)
        print(
            f"[bench] {n} devices enrolled, conversations created in "
            f"{result['enrolment_seconds']} s",
            flush=True,
        )
        subjects["carnet"] = build(scenario, carnet, p, made)
        if relay and scenario in RELAYED:
            bare = start_relay(Path(tmp.name))
            servers.append(bare)
            subjects["relay"] = build(scenario, bare, p, made)
        pairs: list[Any] = []
        if with_synapse and scenario == "direct":
            synapse_server = synapse.SynapseServer()
            pairs = asyncio.run(synapse.make_pairs(synapse_server.url, p.pairs))
        for index in range(runs):
            one: dict[str, Any] = {}
            for name, subject in subjects.items():
                spies = []
                if profile is not None and index + 1 == profile_run and name == "carnet":
                    spies.append(start_py_spy(carnet.pid, profile, p.duration, native))
                    if carnet.database_pid is not None:  # the database child, apart
                        database_profile = profile.with_suffix(".database" + profile.suffix)
                        spies.append(
                            start_py_spy(carnet.database_pid, database_profile, p.duration, native)
                        )
                one[name] = subject.run()
                for spy in spies:
                    spy.wait(p.duration + 60)
                print(f"[bench] run {index + 1} {name}: {_brief(one[name])}", flush=True)
            if db:
                one["database_raw"] = asyncio.run(dbinsert.measure(p.size, min(p.duration, 5)))
                print(f"[bench] run {index + 1} database raw: {one['database_raw']}", flush=True)
            if synapse_server is not None:
                one["synapse"] = _synapse_direct(synapse_server, pairs, p)
                print(f"[bench] run {index + 1} synapse: {_brief(one['synapse'])}", flush=True)
            one["ratios"] = ratios(one)
            result["runs"].append(one)
    finally:
        for subject in subjects.values():
            subject.close()
        for server in servers:
            server.stop()
        if synapse_server is not None:
            synapse_server.stop()
        tmp.cleanup()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["medians"] = medians(result["runs"])
    if profile is not None and profile.exists():
        result["profile"] = {"file": str(profile), **top_costs(profile)}
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"{scenario}-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["medians"], indent=1))
    print(f"[bench] wrote {out}")
    return result


def _synapse_direct(server: synapse.SynapseServer, pairs: list[Any], p: Params) -> dict[str, Any]:
    base = {
        "duration": p.duration,
        "window": p.window,
        "size": p.size,
        "grace": p.grace,
        "hard_seconds": p.hard_seconds,
    }
    out: dict[str, Any] = {}
    for phase in ("saturated", "half"):
        interval = None
        if phase == "half":
            rate = out.get("messages_per_s") or 0
            interval = 2 * len(pairs) / (rate / 2) if rate else None
        measured = synapse.run_phase(server, pairs, p.workers, {**base, "interval": interval})
        totals, meter = measured["totals"], measured["meter"]
        seconds = max(totals.get("seconds", p.duration), 1e-6)
        figures = {
            "messages_per_s": round(totals["messages"] / seconds, 1),
            "deliveries_per_s": round(totals["deliveries"] / seconds, 1),
            "deliveries": totals["deliveries"],
            "sent": totals["sent"],
            "latency_ms": totals["latency_ms"],
            "errors": totals["errors"],
            "server_cpu_us_per_delivery": round(meter.cpu["server"] / totals["deliveries"] * 1e6, 1)
            if totals["deliveries"]
            else None,
            "server_rss_mib": round(meter.rss["server"] / 2**20, 1),
        }
        if phase == "saturated":
            out.update(figures)
        else:
            out["half_rate"] = figures
    return out


def ratios(one: dict[str, Any]) -> dict[str, float | None]:
    """The issue's comparisons, within one repetition."""
    carnet = one.get("carnet", {})

    def div(a: Any, b: Any) -> float | None:
        return round(a / b, 3) if isinstance(a, int | float) and b else None

    relay, raw, syn = one.get("relay", {}), one.get("database_raw", {}), one.get("synapse", {})
    return {
        "carnet_over_raw_batch_insert": div(
            carnet.get("deliveries_per_s"), raw.get("batch", {}).get("docs_per_s")
        ),
        "carnet_cpu_over_relay_cpu": div(
            carnet.get("server_cpu_us_per_delivery"), relay.get("server_cpu_us_per_delivery")
        ),
        "carnet_over_relay_throughput": div(
            carnet.get("messages_per_s"), relay.get("messages_per_s")
        ),
        "carnet_over_synapse_throughput": div(
            carnet.get("messages_per_s"), syn.get("messages_per_s")
        ),
        "carnet_p99_over_synapse_p99": div(
            carnet.get("latency_ms", {}).get("p99"), syn.get("latency_ms", {}).get("p99")
        ),
        "carnet_rss_per_connection_over_relay": div(
            carnet.get("rss_per_connection_kib"), relay.get("rss_per_connection_kib")
        ),
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    subjects = sorted({k for run in runs for k in run if k not in ("ratios", "database_raw")})
    for subject in subjects:
        values = {f: median_of([r.get(subject, {}) for r in runs], f) for f in KEY_FIGURES}
        out[subject] = {k: v for k, v in values.items() if v is not None}
    raws = [r["database_raw"] for r in runs if "database_raw" in r]
    if raws:
        out["database_raw"] = {
            mode: median_of([r[mode] for r in raws], "docs_per_s") for mode in raws[0]
        }
    keys = {k for r in runs for k in r.get("ratios", {})}
    ratio_medians: dict[str, float] = {}
    for key in sorted(keys):
        found = [float(r["ratios"][key]) for r in runs if r["ratios"].get(key) is not None]
        if found:
            ratio_medians[key] = round(statistics.median(found), 3)
    out["ratios"] = ratio_medians
    return out


def _brief(figures: dict[str, Any]) -> str:
    keys = (
        "messages_per_s",
        "deliveries_per_s",
        "server_cpu_us_per_delivery",
        "rss_per_connection_kib",
        "catch_up_seconds",
        "connected",
        "errors",
    )
    parts = [f"{k}={figures[k]}" for k in keys if k in figures]
    if "latency_ms" in figures:
        parts.append(f"p99={figures['latency_ms'].get('p99')}ms")
    if figures.get("half_rate"):
        half = figures["half_rate"]
        parts.append(f"half: {half.get('messages_per_s')}/s p99={half['latency_ms'].get('p99')}ms")
        if "slow_tenths" in half:
            episodes = half["slow_tenths"]
            slow = sum(int(tenth[2]) for tenth in episodes)
            parts.append(f"(over 50 ms: {slow} in {len(episodes)} tenths of a second)")
    return " ".join(parts)
