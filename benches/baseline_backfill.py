#!/usr/bin/env python3
"""What a user would write instead of `ctsguard backfill`: a straightforward script with gzip,
json and ipaddress (and boto3 for S3) implementing the same rule -- alarm on every `login` or
`logout` whose source IP is missing, unreadable or outside the allow-list -- one file at a time.

    baseline_backfill.py --dir DIR --allow 10.0.0.0/8,... --out alarms.jsonl
    baseline_backfill.py --s3 ENDPOINT --bucket B --allow ... --out alarms.jsonl

Prints {"files":..,"traces":..,"alarms":..} on stdout. A baseline for benches/run.py, not a tool.
"""
import argparse
import gzip
import ipaddress
import json
import os
import sys

WATCHED = {"login", "logout"}


def traces_of(doc):
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "trace_name" in doc or "trace_id" in doc:
            return [doc]
        if isinstance(doc.get("cts"), dict):
            return [doc["cts"]]
        out = []
        for v in doc.values():
            if isinstance(v, list):
                out.extend(t for t in v if isinstance(t, dict))
        return out
    return []


def allowed(ip, nets):
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in nets)


def check(data, key, nets, out, counts):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        traces = traces_of(json.loads(data))
    except ValueError:
        # newline-delimited traces
        traces = [json.loads(l) for l in data.splitlines() if l.strip()]
    counts["traces"] += len(traces)
    for i, t in enumerate(traces):
        if str(t.get("trace_name", "")).lower() not in WATCHED:
            continue
        raw = (t.get("source_ip") or "").strip()
        if not raw:
            reason = "missing_ip"
        else:
            try:
                ip = ipaddress.ip_address(raw)
            except ValueError:
                reason = "invalid_ip"
            else:
                if allowed(ip, nets):
                    continue
                reason = "unlisted_ip"
        counts["alarms"] += 1
        out.write(json.dumps({"reason": reason, "action": t.get("trace_name"),
                              "source_ip": t.get("source_ip"), "trace_id": t.get("trace_id"),
                              "object": key, "index": i}) + "\n")


def is_trace_file(key):
    # The name prefix before CloudTrace_ may be empty.
    return "CloudTrace_" in key and "/Digest/" not in key


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir")
    p.add_argument("--s3")
    p.add_argument("--bucket")
    p.add_argument("--allow", default="")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    nets = [ipaddress.ip_network(x.strip(), strict=False) for x in a.allow.split(",") if x.strip()]
    counts = {"files": 0, "traces": 0, "alarms": 0}
    with open(a.out, "w") as out:
        if a.dir:
            for root, dirs, files in os.walk(a.dir):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    key = os.path.relpath(path, a.dir)
                    if name.startswith(".") or not is_trace_file(key):
                        continue
                    with open(path, "rb") as f:
                        check(f.read(), key, nets, out, counts)
                    counts["files"] += 1
        else:
            import boto3
            s3 = boto3.client("s3", endpoint_url=a.s3, region_name="us-east-1",
                              aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
                              aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket,
                                                                     Prefix="CloudTraces/"):
                for o in page.get("Contents", []):
                    if not is_trace_file(o["Key"]):
                        continue
                    body = s3.get_object(Bucket=a.bucket, Key=o["Key"])["Body"].read()
                    check(body, o["Key"], nets, out, counts)
                    counts["files"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    sys.exit(main())
