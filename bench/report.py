"""Turn results.json into results.md (tables) and results.png (a matplotlib chart)."""

# ruff: noqa: E501  (the table rows read best on one line each)

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.chat_switch import section as chat_switch_section
from bench.render import section as render_section

MB = 1 << 20


def _s(x: dict[str, Any] | None, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    """`median (min–max)` of a summary dict."""
    if not x or x.get("median") is None:
        return "–"
    f = f"{{:.{digits}f}}"
    med, lo, hi = (f.format(x[k] * scale) for k in ("median", "min", "max"))
    return f"{med}{unit} ({lo}–{hi})"


def _v(x: Any, digits: int = 3) -> str:
    return "–" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


LABELS = {
    "engine": "engine alone: LlamaCppEngine, driven directly",
    "ours": "ours: /api/converse, SSE",
    "peer": "llama.cpp server: /v1/completions, stream",
    "lcp": "llama_cpp.server: /v1/completions, stream",
}


def checks(results: dict[str, Any]) -> dict[str, Any]:
    """Every target with its measured value and whether it passed, and the worst one: the
    smallest margin (value over target where more is better, target over value where less is)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, op: str, target: float, unit: str = "") -> None:
        passed = None if value is None else {">=": value >= target, "<=": value <= target, "<": value < target}[op]
        margin = None
        if value is not None:
            margin = value / target if op == ">=" else (target / value if value > 0 else float("inf"))
        rows.append({"name": name, "value": value, "op": op, "target": target, "unit": unit, "passed": passed,
                     "margin": None if margin is None else round(margin, 3)})

    d = results.get("decode")
    if d:
        add("decode: ours ÷ engine alone, tokens/s (paired median)", d["paired_ratios"]["ours_over_engine"]["median"],
            ">=", d.get("target_ours_over_engine", 0.98))
    f = results.get("first_token")
    if f:
        c = f["chat"]
        add("first token: turn 12 ÷ cold read of its history (ours)", c["ratios"]["ours_last_turn_over_cold_read"],
            "<=", c.get("target_last_turn_over_cold_read", 0.3))
    cc = results.get("concurrency")
    if cc:
        t = cc["targets"]
        add("concurrency: 8 chats ÷ 1 chat, aggregate tokens/s (ours)", cc["ratios"].get("ours_agg_8_over_1"),
            ">=", t["ours_agg_8_over_1"])
        add("concurrency: slowest first token with 8 chats (ours)", cc.get("ours_slowest_ttft_8_s"),
            "<=", t["ours_slowest_ttft_8_s"], " s")
        add("concurrency: /health latency under 16 chats, max (ours)", cc.get("ours_health_max_16_s"),
            "<", t["ours_health_max_16_s"], " s")
    pg = results.get("page")
    if pg and "skipped" not in pg and "ratios" in pg:
        t = pg["targets_ours_over_bare"]
        add("page: cold load to ready, ours ÷ bare Pyodide (medians)", pg["ratios"]["cold_ours_over_bare"], "<=", t["cold"])
        add("page: warm load to ready, ours ÷ bare Pyodide (medians)", pg["ratios"]["warm_ours_over_bare"], "<=", t["warm"])
    rd = results.get("render")
    if rd:
        add("render: ms per token at 4,000 ÷ at 500 tokens, streamed answer", rd["stream_end_over_start"],
            "<=", rd["target_end_over_start"])
    sp = results.get("speculative")
    if sp:
        t, r = sp["targets"], sp["ratios"]
        add("speculative: rewrite, ours ÷ llama.cpp server (plain decoding), tokens/s", r["rewrite_over_peer"],
            ">=", t["rewrite_over_peer"])
        add("speculative: ordinary chat, ours ÷ llama.cpp server, tokens/s", r["ordinary_over_peer"],
            ">=", t["ordinary_over_peer"])
        add("speculative: 8 chats at once, ours ÷ ours with SPECULATIVE=off, aggregate tokens/s",
            r["agg_8_over_off"], ">=", t["agg_8_over_off"])
    g = results.get("grammar")
    if g:
        for name, side in g["servers"].items():
            add(f"grammar: a chat beside the worst neighbour ÷ its fair share, decode tokens/s (SPECULATIVE={name})",
                side["worst_of_fair_share"], ">=", g["target"])
    sk = results.get("soak")
    if sk:
        add(f"soak: 5xx answers in {sk['minutes']:.0f} min of {sk['clients']} chats", sk["5xx"], "<=", 0)
        add("soak: /health latency, worst", sk["health_worst_s"], "<", 0.1, " s")
    lc = results.get("long_chat")
    if lc:
        add("long chat: first token past the context ÷ before it (medians, ours)", lc["past_over_before"],
            "<=", lc["target_past_over_before"])
    cs = results.get("chat_switch")
    if cs and "skipped" not in cs:
        add("chat switch: click to a 120-message chat on screen, median", cs["on_screen_ms"]["median"],
            "<=", cs["target_on_screen_ms"], " ms")
    measured = [r for r in rows if r["margin"] is not None]
    worst = min(measured, key=lambda r: r["margin"])["name"] if measured else None
    return {"rows": rows, "worst": worst, "all_passed": bool(rows) and all(r["passed"] for r in rows)}


def markdown(results: dict[str, Any], chart: str | None) -> str:
    meta = results["meta"]
    peers = "llama.cpp's own server" + (" and `python -m llama_cpp.server`" if meta.get("llama_cpp_python") else "")
    lines = [
        f"# Benchmarks: snake_llama vs its engine alone vs {peers}",
        "",
        f"Run {meta['started']} on {meta['cpus']} CPUs, model `{meta['model']}` ({meta['model_bytes'] / MB:.0f} MiB),"
        f" xllamacpp {meta.get('xllamacpp')}"
        + (f", llama-cpp-python {meta['llama_cpp_python']}" if meta.get("llama_cpp_python") else "")
        + f"; {meta.get('threads', '?')} llama.cpp thread(s), {meta.get('parallel', '?')} slots over a"
        f" {meta.get('kv_pool', '?')}-token KV pool and {meta.get('n_ctx', '?')} tokens per chat in every stack;"
        f" {'quick' if meta['quick'] else 'full'} run,"
        f" {meta['wall_s']:.0f} s. Load average before/after: {meta['noise_before']['loadavg_1_5_15']} /"
        f" {meta['noise_after']['loadavg_1_5_15']} (1/5/15 min): the machine is shared, so every figure is a"
        " ratio or a side-by-side from this same run, repeated with the stacks interleaved; cells read"
        " `median (min–max)`. Regenerate with `make bench` (`python -m bench --help`).",
        "",
    ]
    if chart:
        lines += [f"![benchmark chart]({chart})", ""]
    ck = results.get("checks")
    if ck and ck["rows"]:
        lines += ["## Targets", "", "| check | measured | target | passed |", "|---|---|---|---|"]
        for r in ck["rows"]:
            mark = "–" if r["passed"] is None else ("yes" if r["passed"] else "**no**")
            lines.append(f"| {r['name']} | {_v(r['value'])}{r['unit'] if r['value'] is not None else ''}"
                         f" | {r['op']} {r['target']}{r['unit']} | {mark} |")
        worst = next((r for r in ck["rows"] if r["name"] == ck["worst"]), None)
        if worst:
            lines += ["", f"Worst: **{worst['name']}**, {_v(worst['value'])}{worst['unit']} against {worst['op']}"
                      f" {worst['target']}{worst['unit']} (margin {worst['margin']}; below 1 is a miss)."
                      f" All passed: **{ck['all_passed']}**."]
        lines.append("")
    d = results.get("decode")
    if d:
        lines += [
            "## 1. Decode rate (tokens/s after the first token)",
            "",
            f"Same prompt, greedy, seed 1, {d['n_tokens_requested']} tokens requested from each;"
            f" equal token counts in every run: **{d['equal_token_counts']}**; identical text from every stack:"
            f" **{d['same_text']}**. {d['reps']} rounds, order rotated each round.",
            "",
            "| stack | tokens/s | first token | ratio to the engine alone (paired per round) |",
            "|---|---|---|---|",
        ]
        paired = d["paired_ratios"]
        for name in d["stacks"]:
            st = d["stacks"][name]
            r = "1" if name == "engine" else _s(paired[f"{name}_over_engine"], digits=3)
            lines.append(f"| {LABELS.get(name, name)} | {_s(st['decode_tps'])} | {_s(st['ttft_s'], ' ms', 1000, 0)} | {r} |")
        lines += ["", f"Ours over llama.cpp's server (paired): {_s(paired['ours_over_peer'], digits=3)}"
                  + (f"; over llama_cpp.server: {_s(paired['ours_over_lcp'], digits=3)}" if "ours_over_lcp" in paired else "")
                  + f". Target: ours ≥ {d.get('target_ours_over_engine', 0.98)} of the engine alone.", ""]
    f = results.get("first_token")
    if f:
        lines += ["## 2. First-token time", "", "| prompt | engine alone | ours | llama.cpp server | ours/engine | ours/peer |", "|---|---|---|---|---|---|"]
        for key, label in (("short_cold", "short, nothing cached"), ("short_head_cached", "short, preamble cached")):
            sec = f[key]
            lines.append(
                f"| {label} ({sec['prompt_tokens'][0] if sec['prompt_tokens'] else '?'} tokens) | "
                + " | ".join(_s(sec[w]["ttft_s"], " ms", 1000, 0) for w in ("engine", "ours", "peer"))
                + f" | {_v(sec['ratios']['ours_over_engine'])} | {_v(sec['ratios']['ours_over_peer'])} |"
            )
        c = f["chat"]
        lines += [
            "",
            f"**12-turn chat** ({c['reps']} chats each, turns interleaved ours/peer; first-token time per turn, median):",
            "",
            "| turn | prompt tokens | ours: tokens evaluated | ours | peer |",
            "|---|---|---|---|---|",
        ]
        for t in range(c["turns"]):
            o, p = c["ttft_per_turn_s"]["ours"][t], c["ttft_per_turn_s"]["peer"][t]
            lines.append(f"| {t + 1} | {c['prompt_tokens_per_turn'][t]} | {c['ours_prompt_tokens_evaluated_per_turn'][t]}"
                         f" | {_v(o and o * 1000, 0)} ms | {_v(p and p * 1000, 0)} ms |")
        lines += [
            "",
            f"Cold read of the turn-12 history: ours {_s(c['cold_read_ttft_s']['ours'], ' ms', 1000, 0)},"
            f" peer {_s(c['cold_read_ttft_s']['peer'], ' ms', 1000, 0)}. Turn 12 over cold read: ours"
            f" **{_v(c['ratios']['ours_last_turn_over_cold_read'])}**, peer {_v(c['ratios']['peer_last_turn_over_cold_read'])}"
            f" (target ≤ {c.get('target_last_turn_over_cold_read', 0.3)}). Ours over peer at turn 12: {_v(c['ratios']['ours_over_peer_last_turn'])}.",
            "",
        ]
    cc = results.get("concurrency")
    if cc:
        lines += [
            "## 3. Concurrency",
            "",
            f"Simultaneous chats, {cc['max_tokens']} tokens each, {cc['reps']} rounds. `/health` on our app is polled"
            " every 100 ms meanwhile.",
            "",
            "| stack | chats | aggregate tokens/s | first token p50 | first token p95 | first token max | total p95 | errors | short answers | /health max |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        labels = {"ours": "ours", "peer": "llama.cpp server", "lcp": "llama_cpp.server"}
        for name, by_level in cc["stacks"].items():
            for n, x in by_level.items():
                h = x["health_max_s"]
                lines.append(
                    f"| {labels.get(name, name)} | {n} | {_s(x['agg_tps'], digits=1)} | {_s(x['ttft_p50_s'], ' s')}"
                    f" | {_s(x['ttft_p95_s'], ' s')} | {_s(x.get('ttft_max_s'), ' s')} | {_s(x['total_p95_s'], ' s')}"
                    f" | {x['errors']}/{x['chats']}"
                    f" | {x['short_answers']}/{x['chats']} | {'–' if h is None else f'{h * 1000:.0f} ms'} |"
                )
        r, t = cc["ratios"], cc["targets"]
        lines += [
            "",
            f"8 chats ÷ 1 chat, aggregate: ours **{_v(r.get('ours_agg_8_over_1'))}** (target ≥ {t['ours_agg_8_over_1']}),"
            f" llama.cpp server {_v(r.get('peer_agg_8_over_1'))}"
            + (f", llama_cpp.server {_v(r.get('lcp_agg_8_over_1'))}" if "lcp_agg_8_over_1" in r else "")
            + f"; ours ÷ llama.cpp server at 8 chats: {_v(r.get('ours_over_peer_agg_8'))}. Slowest first token with 8"
            f" chats (ours, worst round): **{_v(cc.get('ours_slowest_ttft_8_s'))} s** (target ≤ {t['ours_slowest_ttft_8_s']} s)."
            f" /health under 16 chats, max: **{_v(cc.get('ours_health_max_16_s') and cc['ours_health_max_16_s'] * 1000, 0)} ms**"
            f" (target < {t['ours_health_max_16_s'] * 1000:.0f} ms).",
            "",
            cc["note"],
            "",
        ]
    pg = results.get("page")
    if pg and "skipped" not in pg and "ratios" in pg:
        lines += page_section(pg)
    elif pg:
        lines += ["## 4. Page", "", f"Skipped: {pg['skipped']}", ""]
    m = results.get("memory")
    if m:
        lines += [
            "## 5. Memory (resident set of the server process and its model process)",
            "",
            "| | RSS | of which anonymous | of which file-backed (the mapped model) |",
            "|---|---|---|---|",
        ]
        for key, label in (("ours_after_load", "ours, after load"), ("ours_after_chats", f"ours, after {m['chats']} chats"),
                           ("peer_after_load", "peer, after load")):
            x = m[key]
            lines.append(f"| {label} | {x['VmRSS'] / MB:.0f} MiB | {x['RssAnon'] / MB:.0f} MiB | {x['RssFile'] / MB:.0f} MiB |")
        before = m.get("before_mib")
        if before:
            lines.append(f"| before (llama-cpp-python engine): after load / after {before['chats']} chats |"
                         f" {before['after_load']} / {before['after_chats']} MiB | | |")
        lines += ["", f"Model file: {m['model_file_bytes'] / MB:.0f} MiB. Growth over {m['chats']} chats:"
                  f" {m['growth_bytes'] / MB:+.1f} MiB; chat errors: {m['chat_errors']}. Load to ready: ours"
                  f" {m['ours_load_s']} s, peer {m['peer_load_s']} s.", ""]
    b = results.get("bandwidth")
    if b:
        lines += [
            "## 6. The limit: memory bandwidth",
            "",
            f"numpy copy of {b['array_mib']} MiB (read + write): 1 thread {_s(b['copy_gbps_1_thread'], ' GB/s')},"
            f" all cores {_s(next(v for k, v in b.items() if k.startswith('copy_gbps_') and k != 'copy_gbps_1_thread'), ' GB/s')}."
            f" Bytes read per token ≈ the model's tensors, {b['bytes_per_token'] / MB:.0f} MiB, so the bandwidth"
            f" bound on decode is **{b['bound_tps']} tokens/s**; the engine alone's median {_v(b['engine_decode_tps'], 1)}"
            f" tokens/s is **{_v(b['engine_fraction_of_bound'])}** of it.",
            "",
        ]
    for name, section in (("render", render_section), ("speculative", speculative_section),
                          ("grammar", grammar_section), ("soak", soak_section), ("long_chat", long_chat_section),
                          ("chat_switch", chat_switch_section)):
        if results.get(name):
            lines += section(results[name])
    return "\n".join(lines)


def _ran_alone(section: dict[str, Any]) -> str:
    """A sentence for a section merged in from a run of its own (`python -m bench --merge`)."""
    return f" Run on its own ({section['run']}), after the sections above." if section.get("run") else ""


def grammar_section(g: dict[str, Any]) -> list[str]:
    from bench.grammar import __doc__ as doc

    servers = g["servers"]
    names = list(next(iter(servers.values()))["victim_tps"])
    lines = ["## 9. Grammar cost: a chat beside a chat bound by a heavy JSON schema", "",
             " ".join("\n\n".join((doc or "").split("\n\n")[1:]).split())
             + _ran_alone(g), "",
             "| the other chat | " + " | ".join(f"victim tokens/s (SPECULATIVE={k})" for k in servers)
             + " | " + " | ".join(f"÷ fair share ({k})" for k in servers) + " |",
             "|---" * (1 + 2 * len(servers)) + "|"]
    for name in names:
        cells = [_s(side["victim_tps"][name], digits=1) for side in servers.values()]
        cells += [_s(side["of_fair_share"][name], digits=3) if name in side["of_fair_share"] else "–"
                  for side in servers.values()]
        lines.append(f"| {'none: the victim alone' if name == 'alone' else name} | " + " | ".join(cells) + " |")
    ran = ", ".join(f"{k}: {sum(side['neighbour_ran_throughout'].values())} of"
                    f" {g['reps'] * len(side['neighbour_ran_throughout'])}" for k, side in servers.items())
    lines += ["", f"{g['reps']} reps. The other chat asks for {g['neighbour_tokens']} tokens; it was still"
              f" streaming when the victim ended in {ran} pairs (the others had ended their answer first).", ""]
    return lines


def long_chat_section(lc: dict[str, Any]) -> list[str]:
    from bench.long_chat import __doc__ as doc

    title, _, rest = (doc or "").partition("\n\n")
    lines = [f"## {' '.join(title.split()).rstrip('.')}", "",
             " ".join(rest.split()) + _ran_alone(lc), "",
             "| turns | first token | tokens read | turns |", "|---|---|---|---|",
             *(f"| {label} | {_s(lc[f'ttft_{k}_s'], ' ms', 1000, 0)} | {_s(lc[f'evaluated_{k}'], digits=0)}"
               f" | {lc[f'ttft_{k}_s']['n']} |"
               for k, label in (("before", "before the window is full"), ("past", "past it"),
                                ("drop_turns", "of those, the turns that dropped"))),
             "", f"Past ÷ before: **{_v(lc['past_over_before'])}** (target ≤ {lc['target_past_over_before']});"
             f" {lc['reps']} chat(s) of {lc['n_ctx']} tokens, answers of up to {lc['answer_tokens']} tokens."]
    first = lc["turns"][0] if lc["turns"] else []
    if first:
        lines += ["", "The first chat, turn by turn (prompt tokens / tokens read / messages dropped / first token):",
                  "", "; ".join(f"{t['prompt_tokens']}/{t['evaluated']}/{t['dropped_messages']}/"
                                f"{_v(t['ttft_s'] and t['ttft_s'] * 1000, 0)} ms" for t in first)]
    if lc["errors"]:
        lines += ["", f"Errors: {'; '.join(lc['errors'][:3])}"]
    return [*lines, ""]


def soak_section(sk: dict[str, Any]) -> list[str]:
    rss, fds = sk["rss_mib"] or {}, sk["fds"] or {}
    return [
        f"## 10. Soak: {sk['clients']} chats at once for {sk['minutes']:.0f} minutes", "",
        "Each client loops over a whole answer (our API or the OpenAI front door), a hang-up mid-answer, Stop"
        " mid-answer, a reload (the stream dropped after its id, then read again) and bad bodies, at random;"
        " `/health` is timed twice a second." + _ran_alone(sk), "",
        "| | |", "|---|---|",
        f"| actions | {', '.join(f'{k} {v}' for k, v in sk['actions'].items())} |",
        f"| HTTP statuses | {', '.join(f'{k}: {v}' for k, v in sk['statuses'].items())} |",
        f"| 5xx | **{sk['5xx']}** |",
        f"| failures (client side) | {len(sk['failures'])}{': ' + '; '.join(sk['failures'][:3]) if sk['failures'] else ''} |",
        f"| tracebacks in the server's log | {sk['tracebacks_in_log']} |",
        f"| /health worst / p99 ({sk['health_probes']} probes) | {_v(sk['health_worst_s'] and sk['health_worst_s'] * 1000, 0)} ms"
        f" / {_v(sk['health_p99_s'] and sk['health_p99_s'] * 1000, 0)} ms |",
        f"| RSS start / after 1 min / end / max | {rss.get('start', 0):.0f} / {rss.get('after_1_min', 0):.0f} /"
        f" {rss.get('end', 0):.0f} / {rss.get('max', 0):.0f} MiB (growth after the first minute:"
        f" {rss.get('end', 0) - rss.get('after_1_min', 0):+.0f} MiB) |",
        f"| open files start / max / end | {fds.get('start')} / {fds.get('max')} / {fds.get('end')} |",
        "",
    ]


def speculative_section(sp: dict[str, Any]) -> list[str]:
    """Ours (SPECULATIVE=auto) against llama.cpp's own server with its defaults, and against ours off."""
    rw, od, ei = sp["rewrite"], sp["ordinary"], sp["eight"]
    lines = [
        "## 8. Speculative decoding (SPECULATIVE=auto: n-gram drafting"
        + (f", SPECULATIVE_DRAFT={sp['draft']}" if "draft" in sp else "") + ")", "",
        "Tokens per second of the whole request, greedy; ours against llama.cpp's own server with its defaults"
        " (plain decoding), each rep back to back; ratios are medians of the paired ratios."
        + _ran_alone(sp), "",
        "| case | ours | llama.cpp server | ours ÷ server (paired) | same text |", "|---|---|---|---|---|",
    ]
    for label, x in (("rewrite, after a 100-number answer", rw), ("ordinary chat", od)):
        lines.append(f"| {label}: {x.get('asked', '')} | {_s(x['rate_tps']['ours'])} | {_s(x['rate_tps']['peer'])}"
                     f" | {_s(x['ours_over_peer'], digits=3)} | {'yes' if x['same_text'] else 'no'} |")
    lines += [
        "", f"8 ordinary chats at once, aggregate tokens/s: SPECULATIVE=auto {_s(ei['agg_tps']['auto'])},"
        f" SPECULATIVE=off {_s(ei['agg_tps']['off'])}; auto ÷ off (paired) {_s(ei['auto_over_off'], digits=3)}."
        + (f" Answers under auto for which llama.cpp drafted any token: {ei['answers_drafted']} of {ei['answers']}."
           if "answers" in ei else ""), "",
    ]
    return lines


def chart(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    colours = {"engine": "#888888", "ours": "#2563eb", "peer": "#f59e0b", "lcp": "#10b981"}

    def bars(ax: Any, names: list[str], sums: list[dict[str, Any]], title: str, ylabel: str) -> None:
        meds = [s["median"] or 0 for s in sums]
        errs = [[m - (s["min"] or m) for m, s in zip(meds, sums, strict=True)],
                [(s["max"] or m) - m for m, s in zip(meds, sums, strict=True)]]
        ax.bar(names, meds, yerr=errs, capsize=4, color=[colours.get(n, "#999") for n in names])
        ax.set_title(title)
        ax.set_ylabel(ylabel)

    d = results.get("decode")
    if d:
        names = list(d["stacks"])
        bars(axes[0][0], names, [d["stacks"][n]["decode_tps"] for n in names],
             f"Decode, {d['n_tokens_requested']} tokens (median, min–max)", "tokens/s after first token")
    f = results.get("first_token")
    if f:
        c = f["chat"]
        ax = axes[0][1]
        turns = list(range(1, c["turns"] + 1))
        for w in ("ours", "peer"):
            ys = [(y or 0) * 1000 for y in c["ttft_per_turn_s"][w]]
            ax.plot(turns, ys, marker="o", color=colours[w], label=f"{w}, per turn")
            cold = c["cold_read_ttft_s"][w]["median"]
            if cold:
                ax.axhline(cold * 1000, color=colours[w], linestyle="--", label=f"{w}, cold read of turn 12")
        ax.set_title("First token over a 12-turn chat")
        ax.set_xlabel("turn")
        ax.set_ylabel("ms")
        ax.legend(fontsize=8)
    cc = results.get("concurrency")
    if cc:
        ax = axes[1][0]
        levels = [str(n) for n in cc["levels"]]
        width = 0.8 / max(1, len(cc["stacks"]))
        for i, (name, by_level) in enumerate(cc["stacks"].items()):
            xs = [j + i * width for j in range(len(levels))]
            ax.bar(xs, [by_level[n]["agg_tps"]["median"] or 0 for n in levels], width, label=name,
                   color=colours.get(name, "#999"))
        ax.set_xticks([j + width * (len(cc["stacks"]) - 1) / 2 for j in range(len(levels))], levels)
        ax.set_title("Aggregate tokens/s by simultaneous chats")
        ax.set_xlabel("simultaneous chats")
        ax.legend(fontsize=8)
    pg = results.get("page")
    if pg and "skipped" not in pg:
        ax = axes[1][1]
        if "bare" in pg:
            names = ["ours cold", "bare cold", "ours warm", "bare warm"]
            sums = [pg["ours"]["cold_ready_s"], pg["bare"]["cold_ready_s"], pg["ours"]["warm_ready_s"],
                    pg["bare"]["warm_ready_s"]]
            bars(ax, names, sums, "Page: navigation to ready, ours vs bare Pyodide", "seconds")
            for patch, name in zip(ax.patches, names, strict=False):
                patch.set_color(colours["ours"] if name.startswith("ours") else colours["engine"])
            r = pg["ratios"]
            ax.set_xlabel(f"ours ÷ bare: cold {_v(r['cold_ours_over_bare'])}, warm {_v(r['warm_ours_over_bare'])}")
        else:
            bars(ax, ["cold", "warm"], [pg["cold_ready_s"], pg["warm_ready_s"]], "Page: navigation to Python-ready",
                 "seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def page_section(pg: dict[str, Any]) -> list[str]:
    """Section 4: ours against the bare-Pyodide floor, the phases of our boot, V8's code cache."""
    ours, bare, r, t = pg["ours"], pg["bare"], pg["ratios"], pg["targets_ours_over_bare"]
    lines = [
        "## 4. Page (headless Chromium, navigation to ready, ours against a bare Pyodide boot)",
        "",
        f"Ours: `/` until `body[data-ready=true]` (Send enabled). Bare: a page on the same server that only imports"
        f" our `/static/pyodide/pyodide.mjs` and awaits `loadPyodide()`. {pg['reps']} rep(s), each a fresh profile per"
        f" page, 1 cold + {pg['warm_per_cold']} warm load(s), the two pages' loads interleaved; every tab stays"
        f" open {pg['cache_pause_s']:g} s after ready so V8 can write its wasm code cache.",
        "",
        "| load | ours | bare Pyodide | ours ÷ bare (of medians) | ours ÷ bare (paired) | target |",
        "|---|---|---|---|---|---|",
    ]
    for which, label in (("cold", "cold (empty profile)"), ("warm", "warm (same profile)")):
        lines.append(f"| {label} | {_s(ours[f'{which}_ready_s'], ' s')} | {_s(bare[f'{which}_ready_s'], ' s')}"
                     f" | **{_v(r[f'{which}_ours_over_bare'])}** | {_s(r[f'{which}_paired'], digits=3)}"
                     f" | ≤ {t[which]} (aim {t['aim']}) |")
    lines += ["", "| load | bytes transferred (ours / bare) | requests (ours / bare) |", "|---|---|---|"]
    for which in ("cold", "warm"):
        lines.append(f"| {which} | {_s(ours[f'{which}_bytes'], ' MiB', 1 / MB)} / {_s(bare[f'{which}_bytes'], ' MiB', 1 / MB)}"
                     f" | {_s(ours[f'{which}_requests'], '', 1, 0)} / {_s(bare[f'{which}_requests'], '', 1, 0)} |")
    labels = pg.get("phase_labels", {})
    # the table: the named phases, then any other mark the page made (the rest is in results.json)
    extra = [k for x in (ours, bare) for w in ("cold", "warm") for k in x[f"{w}_phases_ms"]
             if k.startswith("mark:") and k not in labels and not k.startswith(("mark:bench:", "mark:bare:"))]
    keys = list(dict.fromkeys([*labels, *extra]))
    cols = [(ours, "cold"), (ours, "warm"), (bare, "cold"), (bare, "warm")]
    lines += ["", "Phases, ms since navigation start (medians; – where the page has no such step):", "",
              "| phase | ours cold | ours warm | bare cold | bare warm |", "|---|---|---|---|---|"]
    for k in keys:
        cells = [x[f"{w}_phases_ms"].get(k) for x, w in cols]
        if any(c is not None for c in cells):
            lines.append(f"| {labels.get(k, k)} | " + " | ".join(_v(c, 0) for c in cells) + " |")

    def cache(x: dict[str, Any]) -> str:
        c, w = x["cold_wasm_cache"], x["warm_wasm_cache"]
        size = c["written_bytes"] and c["written_bytes"] / MB
        return (f"cache written by {c['written']}/{c['loads']} cold loads ({_v(size, 2)} MiB, last at"
                f" {_v(c['written_after_ready_ms'], 0)} ms from ready, median; negative: before); warm loads that reused it: **{w['hits']}/{w['loads']}**,"
                f" compiled anew: {w['compiled']}/{w['loads']}")

    lines += ["", f"V8's wasm code cache for pyodide.asm.wasm (Chromium trace events): ours: {cache(ours)}. Bare: {cache(bare)}.",
              "", f"Marks on our page: {', '.join(f'`{m}`' for m in ours['marks']) or 'none'}. PyScript py:progress:"
              f" {', '.join(f'`{m}`' for m in ours['py_progress']) or 'none'}. Requests off 127.0.0.1: {len(pg['offsite_requests'])}.", ""]
    return lines


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path | None]:
    png = out_dir / "results.png"
    made = chart(results, png)
    md = out_dir / "results.md"
    md.write_text(markdown(results, png.name if made else None) + "\n")
    return md, png if made else None
