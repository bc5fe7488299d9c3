"""``python -m bench report``: the latest results as Markdown and a PNG (docs/performance.md).

The generated table replaces what lies between ``<!-- bench:begin -->`` and
``<!-- bench:end -->`` in the document (the prose around it is kept); the
plot goes to ``performance.png`` beside it. For each scenario (and each
connection count of ``idle``) the newest result file is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def latest(results: Path) -> dict[str, dict[str, Any]]:
    """Newest result per scenario key (``idle`` keyed by its connection count)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("*.json")):  # names sort by time
        data = json.loads(path.read_text())
        key = data["scenario"]
        if key in ("idle", "reconnect", "offline"):
            key = f"{key} {data['params']['connections']}"
        data["file"] = path.name
        found[key] = data
    return found


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def table(found: dict[str, dict[str, Any]]) -> str:
    cols = [
        ("messages_per_s", "msgs/s"),
        ("deliveries_per_s", "deliveries/s"),
        ("latency_ms.p50", "p50 ms"),
        ("latency_ms.p99", "p99 ms"),
        ("half_rate.latency_ms.p99", "p99 ms at ½ max"),
        ("server_cpu_us_per_delivery", "server CPU µs/delivery"),
        ("database_cpu_us_per_delivery", "DB CPU µs/delivery"),
        ("db_writes_per_message", "DB writes/msg"),
        ("server_rss_mib", "server RSS MiB"),
        ("rss_per_connection_kib", "KiB/conn"),
        ("catch_up_seconds", "catch-up s"),
    ]
    lines = [
        "| scenario | system | " + " | ".join(c[1] for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for key, data in sorted(found.items()):
        for subject, figures in data["medians"].items():
            if subject in ("ratios", "database_raw"):
                continue
            row = [_fmt(figures.get(c[0])) for c in cols]
            lines.append(f"| {key} | {subject} | " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Medians of the runs of each file. Ratios (medians of per-run ratios):")
    lines.append("")
    for key, data in sorted(found.items()):
        ratios = data["medians"].get("ratios", {})
        raw = data["medians"].get("database_raw")
        shown = ", ".join(f"{k} = {v}" for k, v in ratios.items() if v is not None)
        if raw:
            shown += "; raw inserts/s " + ", ".join(f"{k} {_fmt(v)}" for k, v in raw.items())
        if shown:
            lines.append(f"- **{key}** ({data['file']}, {len(data['runs'])} runs): {shown}")
    return "\n".join(lines)


def plot(found: dict[str, dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    direct = found.get("direct", {}).get("medians", {})
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    names = [n for n in ("carnet", "relay", "synapse") if n in direct]
    rates = [direct[n].get("messages_per_s", 0) for n in names]
    raw = direct.get("database_raw", {})
    if raw.get("batch"):
        names.append("DB batch\ninserts/s")
        rates.append(raw["batch"])
    axes[0].bar(names, rates, color="tab:blue")
    axes[0].set_yscale("log")
    axes[0].set_title("direct: delivered messages/s (log)")
    cpu_names = [n for n in ("carnet", "relay", "synapse") if n in direct]
    axes[1].bar(
        cpu_names,
        [direct[n].get("server_cpu_us_per_delivery", 0) for n in cpu_names],
        color="tab:orange",
    )
    axes[1].set_yscale("log")
    axes[1].set_title("direct: server CPU µs per delivery (log)")
    p99 = [direct[n].get("latency_ms.p99", 0) for n in cpu_names]
    half = [direct[n].get("half_rate.latency_ms.p99", 0) for n in cpu_names]
    x = range(len(cpu_names))
    axes[2].bar([i - 0.2 for i in x], p99, width=0.4, label="at max")
    axes[2].bar([i + 0.2 for i in x], half, width=0.4, label="at ½ max")
    axes[2].set_xticks(list(x), cpu_names)
    axes[2].set_yscale("log")
    axes[2].set_title("direct: p99 send→deliver ms (log)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def render(results: Path, doc: Path) -> None:
    """Write the table into ``doc`` and the plot beside it."""
    found = latest(results)
    if not found:
        print(f"no results in {results}")
        return
    block = f"{BEGIN}\n{table(found)}\n\n![benchmark plot](performance.png)\n{END}"
    text = doc.read_text() if doc.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
    plot(found, doc.with_name("performance.png"))
    print(f"wrote {doc} and {doc.with_name('performance.png')}")
