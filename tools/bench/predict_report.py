"""Output of ``tagloop bench predict``: the one-line JSON ``summary`` and the readable ``table``."""

from __future__ import annotations

from typing import Any


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The one-line JSON: headline ratios and targets first, then the details."""
    http, pipe, inproc, busy, acc = (report[k] for k in ("http", "pipeline", "inprocess", "busy", "accuracy"))

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
        return round(a["texts_per_s"] / b["texts_per_s"], 2)

    return {
        "ratio_vs_pipeline": ratio(http["b32"], pipe["b32"]),
        "p50_ms": busy["p50_ms"],
        "p99_ms": busy["p99_ms"],
        "rss_mb": report["rss_serving_mb"],
        "accuracy_delta_pp": round(100 * (acc["served"] - acc["torch_same_version"]), 2),
        "accuracy_delta_vs_torch_trained_pp": (
            round(100 * (acc["served"] - acc["torch_trained"]), 2) if acc["torch_trained"] is not None else None
        ),
        "ratios_vs_pipeline": {
            "http_b32": ratio(http["b32"], pipe["b32"]),
            "http_b1": ratio(http["b1"], pipe["b1"]),
            "http_b1_concurrent": ratio(http["b1_concurrent"], pipe["b1"]),
            "http_b32_cached": ratio(http["b32_cached"], pipe["b32"]),
            "inprocess_b32": ratio(inproc["b32"], pipe["b32"]),
            "inprocess_b1": ratio(inproc["b1"], pipe["b1"]),
        },
        "p50_feed_ms": busy["paced"]["p50_ms"],
        "p99_feed_ms": busy["paced"]["p99_ms"],
        "p50_idle_ms": http["b1"]["p50_ms"],
        "p99_idle_ms": http["b1"]["p99_ms"],
        "rss_training_mb": report["rss_training_mb"],
        "ack_p50_ms": busy["acks"]["p50_ms"],
        "ack_p99_ms": busy["acks"]["p99_ms"],
        "worker_rss_training_mb": report["worker_rss_training_mb"],
        "served_body": report["serving"].get("served"),
        **{k: report[k] for k in ("http", "inprocess", "pipeline", "busy", "accuracy", "version", "startup_s")},
        "load_start": report["load_start"],
        "load_end": report["load_end"],
    }


def table(report: dict[str, Any]) -> str:
    """A readable table of the throughput/latency rows, then latency under training, memory and accuracy."""
    lines = [f"{'':<34}{'batch':>6}{'texts/s':>10}{'p50 ms':>9}{'p99 ms':>9}"]
    rows = [
        ("tagloop /predict HTTP", report["http"]["b32"]),
        ("tagloop /predict HTTP", report["http"]["b1"]),
        (f"tagloop HTTP, {report['config']['clients']} concurrent clients", report["http"]["b1_concurrent"]),
        ("tagloop HTTP, cached embeddings", report["http"]["b32_cached"]),
        ("tagloop in-process", report["inprocess"]["b32"]),
        ("tagloop in-process", report["inprocess"]["b1"]),
        ("HF pipeline (torch)", report["pipeline"]["b32"]),
        ("HF pipeline (torch)", report["pipeline"]["b1"]),
    ]
    for name, row in rows:
        lines.append(f"{name:<34}{row['batch']:>6}{row['texts_per_s']:>10}{_ms(row['p50_ms'])}{_ms(row['p99_ms'])}")
    busy, acc = report["busy"], report["accuracy"]
    paced, acks = busy["paced"], busy["acks"]
    lines += [
        f"single text while SetFit trains ({_where(report['config'])}; {busy['training_step_s_alone']} s per "
        f"step with no request):",
        f"  at {paced['rate_per_s']:g} calls/s: p50 {paced['p50_ms']} ms, p99 {paced['p99_ms']} ms, max "
        f"{paced['max_ms']} ms ({paced['calls']} calls in {paced['seconds']} s; {paced['training_steps']} steps)",
        f"  webhook acks at {acks['rate_per_s']:g} labels/s: p50 {acks['p50_ms']} ms, p99 {acks['p99_ms']} ms, max "
        f"{acks['max_ms']} ms ({acks['labels']} labels, {acks['achieved_per_s']}/s achieved; "
        f"{acks['training_steps']} steps; training {' → '.join(acks['training_state'])}){_in_app(acks)}",
        f"  back to back: p50 {busy['p50_ms']} ms, p99 {busy['p99_ms']} ms, max {busy['max_ms']} ms "
        f"({busy['calls']} calls in {busy['seconds']} s; {busy['training_steps']} steps; "
        f"training {busy['training_state_at_end']} at the end){_in_app(busy)}",
        f"web process peak RSS: {report['rss_serving_mb']} MB serving, {report['rss_training_mb']} MB after the "
        + ("training in it" if report["config"]["setup"] == "inprocess" else _worker_rss(report)),
        f"served body: {report['serving'].get('served')} ({report['serving'].get('reason')})",
        f"accuracy on {acc['n_eval']} held-out rows: served {acc['served']:.4f}, same version on torch "
        f"{acc['torch_same_version']:.4f}, heads fitted on torch {acc['torch_trained']}",
        f"load average {report['load_start']['loadavg']} → {report['load_end']['loadavg']} "
        f"on {report['load_start']['cpus']} CPUs",
    ]
    return "\n".join(lines)


def _where(config: dict[str, Any]) -> str:
    place = {
        "inprocess": "in the web process",
        "default": "in the supervised worker process",
        "redis": "in a `tagloop worker` on Redis",
    }[config["setup"]]
    return f"{place}, priority {config.get('training_priority', 'normal')}"


def _in_app(row: dict[str, Any]) -> str:
    """The server's own part of a row's latencies (``Server-Timing``), when it sent one."""
    if row.get("app_p50_ms") is None:
        return ""
    return f"; in the app p50 {row['app_p50_ms']} ms, p99 {row['app_p99_ms']} ms"


def _worker_rss(report: dict[str, Any]) -> str:
    return (
        f"training in the worker; worker peak RSS {report['worker_rss_serving_mb']} MB before, "
        f"{report['worker_rss_training_mb']} MB after"
    )


def _ms(value: float | None) -> str:
    return f"{value:>9.2f}" if value is not None else f"{'-':>9}"
