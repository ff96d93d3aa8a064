#!/usr/bin/env python3
"""Runs bench/report.sh on the synthetic inputs of make_fake.py, into a temporary folder, with
every input, with each one alone, with a minimal run and with bad input; checks the PNGs, the
sections of evaluation.md and the one-line notes of skipped sections. Exits non-zero on failure.

    python3 bench/tests_report/test_report.py
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "..", "report.sh")
sys.path.insert(0, HERE)
import make_fake  # noqa: E402

SECTIONS = ["## Machine and configuration", "## Commands", "## Speed-up over the dense 16-bit baseline vs M",
            "## Distance to the roofline vs M", "## Main numbers", "## Whole-model decode",
            "## Split-K vs data-parallel", "## Bottleneck breakdown", "## The study next to the paper", "## Peers"]
PLOTS = {"speedup_vs_m.png": "## Speed-up", "roofline_vs_m.png": "## Distance to the roofline",
         "splitk_heatmap.png": "## Split-K", "breakdown.png": "## Bottleneck", "peers.png": "## Peers"}
MAX_WIDTH_PX = 1700  # small multiples, not one long strip (peers.png was 7800 px wide)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def sections(md):
    """heading -> body text up to the next heading."""
    out, name = {}, None
    for line in md.splitlines():
        if line.startswith("## "):
            name = next((s for s in SECTIONS if line.startswith(s)), line)
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def run(case, args, out, expect_plots, expect_skipped):
    proc = subprocess.run([REPORT, *args, "--out", out], capture_output=True, text=True)
    check(proc.returncode == 0, f"{case}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    if proc.returncode:
        return
    md = open(os.path.join(out, "evaluation.md")).read()
    body = sections(md)
    check(list(body) == SECTIONS, f"{case}: sections {list(body)}")
    for png, heading in PLOTS.items():
        path = os.path.join(out, "img", png)
        if png in expect_plots:
            ok = os.path.exists(path) and os.path.getsize(path) > 5000 and open(path, "rb").read(8) == PNG_MAGIC
            check(ok, f"{case}: {png} missing or not a PNG")
            if ok:
                width = int.from_bytes(open(path, "rb").read(24)[16:20], "big")  # IHDR width
                check(width <= MAX_WIDTH_PX, f"{case}: {png} is {width} px wide (> {MAX_WIDTH_PX})")
            text = next((t for h, t in body.items() if h.startswith(heading)), "")
            check(f"](img/{png})" in text, f"{case}: {png} not linked under {heading}")
        else:
            check(not os.path.exists(path), f"{case}: {png} written without data")
    for heading, text in body.items():
        lines = [line for line in text.splitlines() if line.strip()]
        is_skipped = any(line.startswith("_Skipped:") for line in lines)
        want = any(heading.startswith(s) for s in expect_skipped)
        check(is_skipped == want, f"{case}: {heading}: skipped={is_skipped}, expected {want}")
        if is_skipped:
            check(len(lines) == 1, f"{case}: {heading}: the note is not a single line: {lines}")
    return md


def main():
    with tempfile.TemporaryDirectory() as tmp:
        f = make_fake.write_all(os.path.join(tmp, "in"))
        bench, study, peers = f["bench.json"], f["study.json"], f["peers.json"]

        md = run("all", ["--bench", bench, "--study", study, "--peers", peers], os.path.join(tmp, "all"),
                 PLOTS, [])
        if md:
            for text in ("w4a16 bench --suite llama3-8b --json bench.json", "w4a16 bench --suite paper --study",
                         "bench/report.sh --bench", "1.01–1.74x", "1.48x", "AMD EPYC (fake data)", "62.9 GB/s (2T)",
                         "| Llama-3-8B | q_proj | 1×4096×4096 |", "ideal 3.88x", "llama.cpp Q4_0", "(S=2)",
                         "vdpbf16ps zmm 562 / 1149, vfmadd231ps zmm 278 / 575 (1T / 2T)", "1.3x target"):
                check(text in md, f"all: '{text}' not in evaluation.md")

        run("bench only", ["--bench", bench], os.path.join(tmp, "bench"),
            ["speedup_vs_m.png", "roofline_vs_m.png", "splitk_heatmap.png"],
            ["## Bottleneck", "## The study", "## Peers"])
        run("study only", ["--study", study], os.path.join(tmp, "study"),
            ["speedup_vs_m.png", "roofline_vs_m.png", "splitk_heatmap.png", "breakdown.png"],
            ["## Whole-model", "## Peers"])

        # A version-1 file (no roofline fields) is still read; only the roofline section is skipped.
        doc = json.load(open(bench))
        doc["schema"] = "w4a16-bench/1"
        for key in ("peak_gflops", "peak_instruction", "roofline_gflops"):
            doc["machine"].pop(key)
        for r in doc["results"]:
            for v in r["variants"].values():
                v.pop("roofline_ms"), v.pop("vs_roofline")
        v1 = os.path.join(tmp, "in", "v1.json")
        json.dump(doc, open(v1, "w"))
        run("schema 1", ["--bench", v1], os.path.join(tmp, "v1"), ["speedup_vs_m.png", "splitk_heatmap.png"],
            ["## Distance to the roofline", "## Bottleneck", "## The study", "## Peers"])
        run("peers only", ["--peers", peers], os.path.join(tmp, "peers"), ["peers.png"],
            [s for s in SECTIONS if s not in ("## Commands", "## Peers")])

        # One M, no split-K variants, no totals: only the table is left.
        doc = json.load(open(bench))
        doc["results"] = [r for r in doc["results"] if r["m"] == 1]
        for r in doc["results"]:
            r["variants"] = {k: v for k, v in r["variants"].items() if k in ("dense", "fused")}
        doc["totals"] = []
        minimal = os.path.join(tmp, "in", "minimal.json")
        json.dump(doc, open(minimal, "w"))
        run("minimal", ["--bench", minimal], os.path.join(tmp, "minimal"), [],
            ["## Speed-up", "## Distance to the roofline", "## Whole-model", "## Split-K", "## Bottleneck",
             "## The study", "## Peers"])

        for case, args in (("no input", []), ("wrong schema", ["--bench", peers]),
                           ("missing file", ["--bench", os.path.join(tmp, "nope.json")])):
            proc = subprocess.run([REPORT, *args, "--out", os.path.join(tmp, "bad")], capture_output=True, text=True)
            check(proc.returncode != 0 and proc.stderr.strip(), f"{case}: exit {proc.returncode} without an error")

    print(f"test_report: {'FAILED' if failures else 'passed'} ({len(failures)} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
