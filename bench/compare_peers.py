#!/usr/bin/env python3
# End-to-end comparison of `tern bench` with llama.cpp's llama-bench (and bitnet.cpp's, which has
# the same command line) on the same GGUF files, in one session: the engines run in interleaved
# rounds so that a machine's drift hits all of them alike, and the table reports medians over the
# rounds and tern's ratio to each peer. The peers are built by the user, outside this repository.
#
#   bench/compare_peers.py -m a.gguf [-m b.gguf] --peer llama.cpp=/path/to/llama-bench \
#       [--peer bitnet.cpp=/path/to/llama-bench] [-p 128] [-n 32] [-t 1,2] [-r 3] [--rounds 3]
#
# Every round also runs bench_read (next to tern, in build/release/bench; --bench-read PATH, or
# --bench-read none to skip) for the streaming-read bandwidth at each thread count, and the table
# adds the share of that roofline tern's tg reaches: bytes read per token x tokens per second over
# the median bandwidth of the rounds at the same thread count. The bytes read per token are every
# tensor's bytes (from `tern info`) except the token-embedding table, of which a token reads one
# row (unless the output head is tied to it).
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bench(binary, model, args, is_tern):
    cmd = [binary]
    if is_tern:
        cmd.append("bench")
    cmd += ["-m", model, "-p", str(args.p), "-n", str(args.n), "-t", args.t, "-r", str(args.r),
            "-o", "json"]
    rows = {}
    for rec in run_json(cmd):
        test = f"pp{rec['n_prompt']}" if rec["n_prompt"] else f"tg{rec['n_gen']}"
        rows[(test, int(rec["n_threads"]))] = float(rec["avg_ts"])
    return rows


def bytes_per_token(tern, model):
    out = subprocess.run([tern, "info", "-m", model], check=True, capture_output=True,
                         text=True).stdout
    sizes = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[-1].isdigit() and fields[0].endswith(".weight"):
            sizes[fields[0]] = int(fields[-1])
    total = sum(sizes.values())
    if "output.weight" in sizes:
        total -= sizes.get("token_embd.weight", 0)
    return total


def read_gbs(binary, threads):
    out = subprocess.run([binary, "-t", threads], check=True, capture_output=True,
                         text=True).stdout
    gbs = {}
    for line in out.splitlines():
        fields = line.replace(":", "").split()  # threads T: G GB/s
        if len(fields) == 4 and fields[0] == "threads":
            gbs[int(fields[1])] = float(fields[2])
    return gbs


def loadavg():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("-m", dest="models", action="append", required=True)
    ap.add_argument("--tern", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "release", "tern"))
    ap.add_argument("--peer", action="append", default=[], help="NAME=/path/to/llama-bench")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-t", default="1")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench-read", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                          "release", "bench", "bench_read"))
    args = ap.parse_args()
    roofline = args.bench_read != "none"
    if roofline and not os.access(args.bench_read, os.X_OK):
        ap.error(f"no bench_read at {args.bench_read} (build it, or pass --bench-read none)")

    peers = []
    for spec in args.peer:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            ap.error(f"--peer wants NAME=PATH, got '{spec}'")
        peers.append((name, path))
    engines = [("tern", args.tern, True)] + [(n, p, False) for n, p in peers]

    print(f"load average at start: {loadavg():.2f}", file=sys.stderr)
    for model in args.models:
        # samples[engine][(test, threads)] = [avg_ts per round]
        samples = {name: {} for name, _, _ in engines}
        read_bytes = bytes_per_token(args.tern, model) if roofline else 0
        bandwidth = {}  # threads -> [GB/s per round]
        for rnd in range(args.rounds):
            if roofline:
                for threads, gbs in read_gbs(args.bench_read, args.t).items():
                    bandwidth.setdefault(threads, []).append(gbs)
            for name, binary, is_tern in engines:
                try:
                    rows = bench(binary, model, args, is_tern)
                except (subprocess.CalledProcessError, json.JSONDecodeError) as e:
                    print(f"{name} failed on {model}: {e}", file=sys.stderr)
                    continue
                for key, ts in rows.items():
                    samples[name].setdefault(key, []).append(ts)
            print(f"round {rnd + 1}/{args.rounds} done, load {loadavg():.2f}", file=sys.stderr)

        print(f"\n### {os.path.basename(model)}\n")
        header = "| test | threads | tern t/s |"
        rule = "| --- | ---: | ---: |"
        for name, _ in peers:
            header += f" {name} t/s | tern / {name} |"
            rule += " ---: | ---: |"
        if roofline:
            header += " read GB/s | tern % roofline |"
            rule += " ---: | ---: |"
        print(header)
        print(rule)
        for key in sorted(samples["tern"], key=lambda k: (k[0][:2] != "pp", k)):
            test, threads = key
            t_vals = samples["tern"][key]
            t_med = statistics.median(t_vals)
            line = f"| {test} | {threads} | {t_med:.1f} ({min(t_vals):.1f}-{max(t_vals):.1f}) |"
            for name, _ in peers:
                vals = samples[name].get(key)
                if not vals:
                    line += " - | - |"
                    continue
                p_med = statistics.median(vals)
                line += f" {p_med:.1f} ({min(vals):.1f}-{max(vals):.1f}) | {t_med / p_med:.2f}x |"
            if roofline:
                bw = bandwidth.get(threads)
                if bw:
                    bw_med = statistics.median(bw)
                    line += f" {bw_med:.1f} ({min(bw):.1f}-{max(bw):.1f}) |"
                    share = ""
                    if test.startswith("tg"):
                        share = f"{100.0 * read_bytes * t_med / 1e9 / bw_med:.0f}%"
                    line += f" {share} |"
                else:
                    line += " - | - |"
            print(line)
        sys.stdout.flush()
    print(f"load average at end: {loadavg():.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
