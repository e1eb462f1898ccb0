#!/usr/bin/env python3
"""A sequential verification of CTS digests in the style of `aws cloudtrail validate-logs`:
one digest at a time (download, MD5, gunzip, parse, check the SHA256withRSA signature over
digest_end_time + digest_object + MD5 hex + previous_digest_signature), then each trace file it
lists, one at a time (download, MD5, compare). The baseline of `ctsguard verify` in
benches/run.py; it checks hashes and signatures, not chain gaps.

    baseline_verify.py --dir DIR --public-key PEM
    baseline_verify.py --s3 ENDPOINT --bucket B --public-key PEM

Prints {"digests":..,"digests_valid":..,"trace_files":..,"trace_files_valid":..}.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir")
    p.add_argument("--s3")
    p.add_argument("--bucket")
    p.add_argument("--public-key", required=True)
    a = p.parse_args()
    with open(a.public_key, "rb") as f:
        key = serialization.load_pem_public_key(f.read())

    if a.dir:
        def digest_keys():
            for root, dirs, files in os.walk(a.dir):
                dirs.sort()
                for name in sorted(files):
                    if "CloudTrace-Digest_" in name and not name.startswith("."):
                        yield os.path.relpath(os.path.join(root, name), a.dir)

        def fetch(k):
            with open(os.path.join(a.dir, k), "rb") as f:
                return f.read()

        def signature(k):
            d, n = os.path.split(os.path.join(a.dir, k))
            try:
                with open(os.path.join(d, "." + n + ".meta.json")) as f:
                    return json.load(f).get("meta-signature")
            except OSError:
                return None

        def get_digest(k):
            return fetch(k), signature(k)
    else:
        import boto3
        s3 = boto3.client("s3", endpoint_url=a.s3, region_name="us-east-1",
                          aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
                          aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"))

        def digest_keys():
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket,
                                                                     Prefix="CloudTraces/"):
                for o in page.get("Contents", []):
                    if "CloudTrace-Digest_" in o["Key"]:
                        yield o["Key"]

        def fetch(k):
            return s3.get_object(Bucket=a.bucket, Key=k)["Body"].read()

        def get_digest(k):
            r = s3.get_object(Bucket=a.bucket, Key=k)
            return r["Body"].read(), r.get("Metadata", {}).get("meta-signature")

    c = {"digests": 0, "digests_valid": 0, "trace_files": 0, "trace_files_valid": 0}
    for k in digest_keys():
        c["digests"] += 1
        raw, sig = get_digest(k)
        md5 = hashlib.md5(raw).hexdigest()
        d = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        msg = (d["digest_end_time"] + d["digest_object"] + md5
               + (d.get("previous_digest_signature") or "")).encode()
        try:
            key.verify(bytes.fromhex(sig or ""), msg, padding.PKCS1v15(), hashes.SHA256())
            c["digests_valid"] += 1
        except (InvalidSignature, ValueError):
            pass
        for lf in d.get("log_files") or []:
            c["trace_files"] += 1
            obj = lf["object"]
            obj = obj[obj.index("CloudTraces/"):] if "CloudTraces/" in obj else obj
            try:
                body = fetch(obj)
            except Exception:
                continue
            if hashlib.md5(body).hexdigest() == lf["log_hash_value"].lower():
                c["trace_files_valid"] += 1
    print(json.dumps(c))


if __name__ == "__main__":
    sys.exit(main())
