#!/usr/bin/env python3
"""End-to-end benchmark of ctsguard against its floors and the tools a user would use instead.

    python3 benches/run.py                    # ~2 GB corpus, 3 interleaved repeats
    python3 benches/run.py --files 200 --repeats 2 --skip jq,python   # quick look

One invocation: builds the release binaries and the examples, builds the corpus once (ctsgen,
reused while its spec is unchanged) into a directory and into an in-process S3 server on
127.0.0.1 (examples/s3serve.rs), installs what the baselines need (a venv with boto3 and
cryptography under target/bench/venv; jq from Debian packages if missing), then runs every case
once per round, rounds repeated (interleaved, so drift and the neighbours' load hit every case
alike), and prints a table of the median and min-max wall time, MB/s of decompressed JSON,
traces/s, peak RSS and the ratios to the floors. The same table goes to
target/bench/results.json (or --json) for tracking. See BENCHMARKS.md.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "ctsguard-test-access-key"
SECRET_KEY = "ctsguard-test-secret-key-0123456789"
# The bucket the generator's digests name (`digest_bucket`): verify reports a digest read from
# any other bucket as `moved`.
BUCKET = "cts-traces"
ALLOW = "10.0.0.0/8,192.168.0.0/16,2001:db8::/32"
FROM, TO, MID = "2026-09-30", "2026-10-02", "2026-10-01"
REGIONS, SERVICES = "eu-de,eu-nl", "IAM,ECS,OBS,VPC,EVS"
KEY_PEM = ROOT / "fixtures/TEST-ONLY-digest-public-key.pem"
SIGNING_PEM = ROOT / "fixtures/TEST-ONLY-digest-signing-key.pem"

# The jq filter a user would write for the same rule: watched action, and a source IP that is
# missing or not under one of the allow-list's prefixes (jq has no CIDR arithmetic, so the
# octet-aligned ranges of ALLOW become string prefixes, after dropping an IPv4-mapped prefix).
JQ_FILTER = r'''
(if type == "array" then .[] else . end)
| select((.trace_name // "" | ascii_downcase) as $a | $a == "login" or $a == "logout")
| select((.source_ip // "" | ascii_downcase | ltrimstr("::ffff:")) as $ip
         | ($ip | startswith("10.") or startswith("192.168.") or startswith("2001:db8:")) | not)
| {reason: (if (.source_ip // "") == "" then "missing_ip" else "unlisted_ip" end),
   action: .trace_name, source_ip, trace_id}
'''


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("+", cmd if isinstance(cmd, str) else " ".join(map(str, cmd)))
    return subprocess.run(cmd, check=True, **kw)


def ensure_tools(work, need_jq, need_py):
    if need_jq and not shutil.which("jq"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq",
               shell=True)
        else:
            sys.exit("jq is missing: install it (Debian: apt-get install jq) or pass --skip jq")
    venv = work / "venv"
    py = venv / "bin/python"
    if need_py:
        try:
            subprocess.run([py, "-c", "import boto3, cryptography"], check=True,
                           capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            sh([sys.executable, "-m", "venv", venv])
            sh([py, "-m", "pip", "install", "-q", "boto3", "cryptography"])
    return py


def build(with_s3):
    sh(["cargo", "build", "--release", "--bins"], cwd=ROOT)
    sh(["cargo", "build", "--release", "--features", "bench-tools", "--bin", "ctsguard-floor"],
       cwd=ROOT)
    if with_s3:
        # An example: it needs the dev-dependencies (s3s, s3s-fs, hyper-util).
        sh(["cargo", "build", "--release", "--example", "s3serve"], cwd=ROOT)
    rel = ROOT / "target/release"
    return rel / "ctsguard", rel / "ctsgen", rel / "ctsguard-floor", rel / "examples/s3serve"


def corpus(work, ctsgen, files, traces):
    per = max(1, files // (2 * 2 * 5))
    spec = ["--days", "2", "--start", FROM, "--regions", REGIONS, "--trackers", "system",
            "--services", SERVICES, "--files-per-service-per-day", str(per),
            "--traces-per-file", str(traces), "--alarm-share", "0.02", "--allowed", ALLOW,
            "--digests", "--signing-key", str(SIGNING_PEM), "--seed", "6"]
    base = work / f"corpus-{per * 20}x{traces}"
    done = base / "spec.json"
    if done.exists() and json.loads(done.read_text()) == spec:
        return base
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    sh([ctsgen, "--out", base / "dir", "--manifest", base / "manifest.json", *spec])
    keys = sorted(p for p in (base / "dir").rglob("*CloudTrace_*.json.gz")
                  if "/Digest/" not in str(p))
    (base / "files.txt").write_text("".join(f"{p}\n" for p in keys))
    done.write_text(json.dumps(spec))
    return base


def big_allow_config(base):
    """A config file with the corpus's allow-list plus 10,000 single addresses that no trace
    uses (198.18.0.0/15, the benchmarking range): the alarms stay the same."""
    path = base / "allow-10k.toml"
    entries = ALLOW.split(",") + [f"198.{18 + i // 65536}.{(i // 256) % 256}.{i % 256}"
                                  for i in range(0, 20000, 2)]
    path.write_text("allow = [" + ",".join(f'"{e}"' for e in entries) + "]\n")
    return path


class S3Server:
    def __init__(self, s3serve, base):
        self.proc = subprocess.Popen(
            [s3serve, "--root", base / "s3root", "--bucket", BUCKET, "--import", base / "dir"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("endpoint="):
            sys.exit(f"s3serve did not start: {line!r}")
        self.endpoint = line.split("=", 1)[1]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# Linux keeps a process's peak RSS across exec, and a child forked from this script starts with
# this script's resident pages: measured directly, every case would weigh at least as much as
# the runner (about 21 MB here). GNU time is a small process in between that reports the peak of
# the command it runs (for a shell pipeline: of its largest process).
# Without it (Debian package `time`), the figures include the runner's own size; the table says so.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(cmd, env, shell=False):
    """Wall time, peak RSS (KiB; of the largest process of the tree) and exit code."""
    rss_file = None
    if GNU_TIME:
        rss_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"ctsguard-bench-rss-{os.getpid()}"
        argv = ["/bin/bash", "-c", cmd] if shell else [str(c) for c in cmd]
        cmd, shell = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv], False
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, shell=shell, executable="/bin/bash" if shell else None,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = p.stdout.read(), p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    rss = ru.ru_maxrss
    if rss_file:
        # GNU time writes "Command exited with non-zero status N" before the figure.
        rss = int(rss_file.read_text().split()[-1])
        rss_file.unlink()
    return wall, rss, p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=2000, help="trace files in the corpus (2000)")
    ap.add_argument("--traces-per-file", type=int, default=850,
                    help="traces per file (850: about 1 MB of JSON each)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every case (3)")
    ap.add_argument("--slow-repeats", type=int,
                    help="rounds of the Python and jq baselines, which take minutes each "
                         "(default: --repeats); they run in the first rounds")
    ap.add_argument("--skip", default="",
                    help="comma-separated groups to leave out: s3, python, jq, verify, scan, extra, decode")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--work", default=str(ROOT / "target/bench"), help="corpus, venv, outputs")
    ap.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    ap.add_argument("--json", help="where to write the results (WORK/results.json)")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)

    py = ensure_tools(work, "jq" not in skip, not {"python", "verify"} <= skip)
    ctsguard, ctsgen, floor, s3serve = build("s3" not in skip) if not a.no_build else (
        ROOT / "target/release/ctsguard", ROOT / "target/release/ctsgen",
        ROOT / "target/release/ctsguard-floor", ROOT / "target/release/examples/s3serve")
    base = corpus(work, ctsgen, a.files, a.traces_per_file)
    manifest = json.loads((base / "manifest.json").read_text())
    expected_alarms = len(manifest["expected_alarms"])
    d = base / "dir"
    flist = base / "files.txt"
    server = None if "s3" in skip else S3Server(s3serve, base)

    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_EC2_METADATA_DISABLED="true", CTSGUARD_LOG="warn")
    win = ["--from", FROM, "--to", TO]
    s3src = [] if server is None else ["--source", f"s3://{BUCKET}", "--endpoint", server.endpoint,
                                        "--path-style", "--s3-region", "us-east-1"]

    # (name, group, argv or shell string, alarm output file or None, measure)
    cases = []

    def add(name, group, cmd, alarms=None, summary=None, shell=False, ratio="inflate",
            expect=expected_alarms):
        if group in skip or (a.only and a.only not in name):
            return
        cases.append(dict(name=name, group=group, cmd=cmd, alarms=alarms, summary=summary,
                          shell=shell, ratio=ratio, expect=expect))

    def bf(tag, extra, src):
        out, summ = out_dir / f"{tag}.jsonl", out_dir / f"{tag}.summary.json"
        # The rule alone, as the baselines do; the integrity row below adds the digest checks.
        integrity = [] if "--integrity" in map(str, extra) else ["--integrity", "off"]
        return [ctsguard, "backfill", *src, *integrity, *extra, "--allow", ALLOW, "--alerts",
                out, "--summary-json", summ], out, summ

    cmd, out, summ = bf("backfill-dir", win, ["--source", d])
    add("ctsguard backfill (dir)", "core", cmd, out, summ)
    # Only the files whose text holds a watched action are parsed (the IAM fifth here).
    cmd, out, summ = bf("backfill-dir-candidates", win + ["--parse", "candidates"], ["--source", d])
    add("ctsguard backfill (dir), --parse candidates", "core", cmd, out, summ)
    if server:
        cmd, out, summ = bf("backfill-s3", win, s3src)
        add("ctsguard backfill (S3)", "s3", cmd, out, summ, ratio="download")
    add("zcat, 2 workers", "core", f"xargs -a {flist} -d '\\n' -P 2 -n 64 zcat > /dev/null",
        shell=True)
    add("inflate floor (flate2 zlib-rs, 2 threads)", "core",
        [floor, "inflate", "--threads", "2", "--list", flist])
    # The decode stage alone (inflate + parse, 2 threads), with ctsguard's decoder and with the
    # general reader that every file went through before the fast path: before/after figures.
    add("decode stage: inflate + parse (2 threads)", "decode",
        [floor, "decode", "--threads", "2", "--list", flist])
    add("decode stage, before: general reader (2 threads)", "decode",
        [floor, "decode", "--general", "--threads", "2", "--list", flist])
    if server:
        add("download floor (S3, 16 in flight)", "s3",
            [floor, "download", "--endpoint", server.endpoint, "--bucket", BUCKET,
             "--prefix", "CloudTraces/", "--concurrency", "16"], ratio="download")
    pyout = out_dir / "python-dir.jsonl"
    add("Python script (dir)", "python",
        [py, ROOT / "benches/baseline_backfill.py", "--dir", d, "--allow", ALLOW, "--out", pyout],
        pyout)
    if server:
        pyout = out_dir / "python-s3.jsonl"
        add("Python script + boto3 (S3)", "python",
            [py, ROOT / "benches/baseline_backfill.py", "--s3", server.endpoint, "--bucket",
             BUCKET, "--allow", ALLOW, "--out", pyout], pyout, ratio="download")
    jqout = out_dir / "jq.jsonl"
    (work / "filter.jq").write_text(JQ_FILTER)
    add("zcat | jq", "jq",
        f"set -o pipefail; xargs -a {flist} -d '\\n' -n 64 zcat | jq -c -f {work / 'filter.jq'} > {jqout}",
        jqout, shell=True)
    cmd, out, summ = bf("backfill-10k", win + ["--config", big_allow_config(base)], ["--source", d])
    add("ctsguard backfill (dir), 10k allow entries", "extra", cmd, out, summ)
    cmd, out, summ = bf("backfill-1day", ["--from", FROM, "--to", MID], ["--source", d])
    # The first day's alarms: their files' keys carry the day (…/2026/9/30/…).
    y, m, day = (int(p) for p in FROM.split("-"))
    first_day = sum(f"/{y}/{m}/{day}/" in al["key"] for al in manifest["expected_alarms"])
    add("ctsguard backfill (dir), half corpus (1 day)", "extra", cmd, out, summ,
        expect=first_day)
    cmd, out, summ = bf("backfill-integrity",
                        win + ["--integrity", "report", "--public-key", KEY_PEM], ["--source", d])
    add("ctsguard backfill (dir), --integrity report", "extra", cmd, out, summ)
    vkey = ["--public-key", KEY_PEM]
    add("ctsguard verify (dir)", "verify",
        [ctsguard, "verify", "--source", d, *win, *vkey, "--output", out_dir / "verify-dir.json"],
        ratio="none")
    add("validate-logs style, sequential (dir)", "verify",
        [py, ROOT / "benches/baseline_verify.py", "--dir", d, *vkey], ratio="none")
    if server:
        add("ctsguard verify (S3)", "verify",
            [ctsguard, "verify", *s3src, *win, *vkey, "--output", out_dir / "verify-s3.json"],
            ratio="none")
        add("validate-logs style, sequential (S3)", "verify",
            [py, ROOT / "benches/baseline_verify.py", "--s3", server.endpoint, "--bucket", BUCKET,
             *vkey], ratio="none")
        cp = out_dir / "scan-checkpoint.json"
        scan = [ctsguard, "scan", *s3src, "--allow", ALLOW, "--checkpoint", cp, "--since", FROM,
                "--now", TO + "T00:00:00Z", "--lateness", "48h", "--alerts", out_dir / "scan.jsonl"]
        if "scan" not in skip and (not a.only or a.only in "ctsguard scan, nothing new"):
            for f in out_dir.glob("scan-checkpoint.json*"):
                f.unlink()
            # The first scan processes the corpus; the timed ones find nothing new.
            subprocess.run(scan, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        add("ctsguard scan, nothing new (S3, 2-day window)", "scan", scan, ratio="none")

    json_bytes = traces = None
    runs = {c["name"]: [] for c in cases}
    if cases:
        # One untimed run first: in every run so far the first case's first round was 10-20 %
        # slower than its others (it follows the build), which widened the plain backfill's spread.
        first = cases[0]
        log(f"warm-up (untimed): {first['name']}")
        run_once(first["cmd"], env, shell=first["shell"])
    for r in range(a.repeats):
        for c in cases:
            slow = c["group"] in ("python", "jq") or "validate-logs" in c["name"]
            if slow and a.slow_repeats is not None and r >= a.slow_repeats:
                continue
            if c["alarms"]:
                # ctsguard appends to its alarm file: each run starts from none.
                Path(c["alarms"]).unlink(missing_ok=True)
            wall, rss, rc, out, err = run_once(c["cmd"], env, shell=c["shell"])
            log(f"round {r + 1}/{a.repeats}: {c['name']}: {wall:.3f} s, {rss / 1024:.0f} MB, exit {rc}")
            if rc not in (0,) and not (c["group"] == "verify" and rc == 1):
                log(err[-2000:])
            run = dict(wall=wall, rss_kib=rss, exit=rc)
            if c["summary"] and Path(c["summary"]).exists():
                s = json.loads(Path(c["summary"]).read_text())
                run.update(json_bytes=s["decompressed_bytes"], traces=s["traces"],
                           files=s["files"], files_screened=s.get("files_screened", 0))
                if c["name"] == "ctsguard backfill (dir)":
                    json_bytes, traces = s["decompressed_bytes"], s["traces"]
            if c["alarms"]:
                run["alarms"] = count_lines(c["alarms"])
            runs[c["name"]].append(run)
    if server:
        server.stop()

    if json_bytes is None:
        # Without the ctsguard row, measure the corpus with the inflate floor.
        json_bytes = json.loads(subprocess.run([floor, "inflate", "--list", flist], check=True,
                                               capture_output=True).stdout)["decompressed_bytes"]
        traces = manifest["traces"]

    def med(name):
        rs = runs.get(name)
        return statistics.median(x["wall"] for x in rs) if rs else None

    inflate_floor = med("inflate floor (flate2 zlib-rs, 2 threads)")
    zcat = med("zcat, 2 workers")
    download = med("download floor (S3, 16 in flight)")
    rows = []
    for c in cases:
        rs = runs[c["name"]]
        walls = [x["wall"] for x in rs]
        m = statistics.median(walls)
        jb = rs[-1].get("json_bytes", json_bytes)
        tr = rs[-1].get("traces", traces)
        row = dict(name=c["name"], group=c["group"], median_s=round(m, 3),
                   min_s=round(min(walls), 3), max_s=round(max(walls), 3),
                   mb_per_s=round(jb / 1e6 / m, 1), traces_per_s=round(tr / m),
                   peak_rss_mb=round(max(x["rss_kib"] for x in rs) / 1024, 1),
                   median_rss_mb=round(statistics.median(x["rss_kib"] for x in rs) / 1024, 1),
                   exit=sorted({x["exit"] for x in rs}),
                   vs_inflate_floor=round(m / inflate_floor, 2) if inflate_floor else None,
                   vs_zcat=round(m / zcat, 2) if zcat else None,
                   vs_download=(round(m / download, 2)
                                if download and c["ratio"] == "download" else None))
        if c["group"] in ("verify", "scan"):
            row["mb_per_s"] = row["traces_per_s"] = None
            row["vs_inflate_floor"] = row["vs_zcat"] = None
        if "alarms" in rs[-1]:
            row["alarms"] = rs[-1]["alarms"]
            row["expected_alarms"] = c["expect"]
        rows.append(row)

    def fmt(v, spec="{}"):
        return "–" if v is None else spec.format(v)

    lines = ["| case | wall median (min–max) s | MB/s | traces/s | peak RSS MB | × inflate floor | × zcat ×2 | × download | alarms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['median_s']:.3f} ({r['min_s']:.3f}–{r['max_s']:.3f}) | "
            f"{fmt(r['mb_per_s'])} | {fmt(r['traces_per_s'], '{:,}')} | {r['peak_rss_mb']} | "
            f"{fmt(r['vs_inflate_floor'])} | {fmt(r['vs_zcat'])} | {fmt(r['vs_download'])} | "
            f"{fmt(r.get('alarms'))} |")
    table = "\n".join(lines)

    by = {r["name"]: r for r in rows}
    targets = []

    def target(what, ok, detail):
        targets.append(dict(target=what, met=ok, detail=detail))

    bd = by.get("ctsguard backfill (dir)")
    if bd and inflate_floor:
        target("backfill dir ≤ 1.3× inflate floor", bd["vs_inflate_floor"] <= 1.3,
               f"{bd['vs_inflate_floor']}×")
    bc = by.get("ctsguard backfill (dir), --parse candidates")
    if bc and inflate_floor:
        target("backfill dir --parse candidates ≤ 1.3× inflate floor",
               bc["vs_inflate_floor"] <= 1.3, f"{bc['vs_inflate_floor']}×")
    if bd and zcat:
        target("backfill dir ≤ 0.6× zcat ×2", bd["vs_zcat"] <= 0.6, f"{bd['vs_zcat']}×")
    pyd = by.get("Python script (dir)")
    if bd and pyd:
        x = pyd["median_s"] / bd["median_s"]
        target("backfill ≥ 6× faster than Python", x >= 6, f"{x:.1f}×")
    jqr = by.get("zcat | jq")
    if bd and jqr:
        x = jqr["median_s"] / bd["median_s"]
        target("backfill faster than zcat | jq", x > 1, f"{x:.1f}×")
    bs = by.get("ctsguard backfill (S3)")
    if bs and download:
        target("backfill S3 ≤ 1.3× download floor", bs["vs_download"] <= 1.3,
               f"{bs['vs_download']}×")
    for src in ("dir", "S3"):
        v, b = by.get(f"ctsguard verify ({src})"), by.get(f"validate-logs style, sequential ({src})")
        if v and b:
            x = b["median_s"] / v["median_s"]
            target(f"verify ({src}) ≥ 10× faster than sequential", x >= 10, f"{x:.1f}×")
    ct = [r for r in rows if r["name"].startswith("ctsguard")]
    if ct:
        worst = max(ct, key=lambda r: r["peak_rss_mb"])
        target("peak RSS < 200 MB", worst["peak_rss_mb"] < 200,
               f"max {worst['peak_rss_mb']} MB ({worst['name']})")
    half = by.get("ctsguard backfill (dir), half corpus (1 day)")
    if bd and half:
        # Medians over the rounds: one run's peak moves by a few MB with thread timing alone.
        x = bd["median_rss_mb"] / half["median_rss_mb"] - 1
        target("doubling the corpus raises RSS < 10 %", x < 0.10,
               f"{half['median_rss_mb']} → {bd['median_rss_mb']} MB, medians ({x:+.0%})")
    big = by.get("ctsguard backfill (dir), 10k allow entries")
    if bd and big:
        spread = (bd["max_s"] - bd["min_s"]) / bd["median_s"]
        x = big["median_s"] / bd["median_s"] - 1
        target("10k allow entries: no measurable cost", abs(x) <= max(spread, 0.03),
               f"{x:+.1%} (run-to-run spread of the plain run {spread:.0%})")
    sc = by.get("ctsguard scan, nothing new (S3, 2-day window)")
    if sc:
        target("scan with nothing new < 1 s", sc["median_s"] < 1, f"{sc['median_s']} s")
    for r in rows:
        if "alarms" in r and r["alarms"] != r["expected_alarms"] and "jq" not in r["name"]:
            target(f"alarms of {r['name']} match the manifest", False,
                   f"{r['alarms']} vs {r['expected_alarms']}")

    meta = dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip(),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        corpus=dict(trace_files=len(manifest["trace_files"]),
                    digest_files=len(manifest["digest_files"]), traces=traces,
                    decompressed_bytes=json_bytes, stored_bytes=manifest["bytes"],
                    expected_alarms=expected_alarms),
        repeats=a.repeats, slow_repeats=a.slow_repeats or a.repeats)
    result = dict(meta=meta, rows=rows, targets=targets, runs=runs)
    out = Path(a.json) if a.json else work / "results.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    c = meta["corpus"]
    print(f"\nCorpus: {c['trace_files']} trace files, {c['digest_files']} digests, "
          f"{c['traces']:,} traces, {c['decompressed_bytes'] / 1e6:,.0f} MB of JSON "
          f"({c['stored_bytes'] / 1e6:,.0f} MB stored), {expected_alarms} expected alarms. "
          f"{a.repeats} interleaved rounds (Python, jq and the sequential verification: "
          f"{meta['slow_repeats']}); {meta['machine']}; commit {meta['commit']}.")
    if not GNU_TIME:
        print("No /usr/bin/time (Debian package `time`): peak RSS figures include the runner's "
              "own size, which Linux carries into every child.")
    print()
    print(table)
    print()
    for t in targets:
        print(f"- {'met ' if t['met'] else 'MISSED'}  {t['target']}: {t['detail']}")
    print(f"\nWritten to {out}")


if __name__ == "__main__":
    main()
