//! criterion micro-benchmarks of the hot stages: decode (inflate, parse, the action screen), detect, MD5,
//! allow-list lookup and digest signature verification. `cargo bench --bench micro`;
//! the end-to-end benchmark is `benches/run.py` (see BENCHMARKS.md).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ctsguard::allowlist::AllowList;
use ctsguard::cts::digest::{self, md5_hex, signed_message, PrivateKey, PublicKey};
use ctsguard::cts::trace::{inflate, parse_traces, parse_traces_general};
use ctsguard::detect::Rule;
use ctsguard::gen::{build, GenSpec};
use ctsguard::screen::ActionScreen;
use rand::{Rng, SeedableRng};

const SIGNING_KEY: &str = include_str!("../fixtures/TEST-ONLY-digest-signing-key.pem");

/// One realistic gzip trace file of about 1 MB of JSON (850 traces, IAM: logins among them).
fn trace_file() -> Vec<u8> {
    trace_file_of("IAM")
}

/// The same of another service (no logins in it for ECS).
fn trace_file_of(service: &str) -> Vec<u8> {
    let spec = GenSpec {
        services: vec![service.into()],
        files_per_service_per_day: 1,
        traces_per_file: 850,
        ..GenSpec::default()
    };
    let (objects, _) = build(&spec).expect("generate");
    objects
        .into_iter()
        .find(|o| o.key.contains("_CloudTrace_"))
        .expect("a trace file")
        .body
        .to_vec()
}

fn decode(c: &mut Criterion) {
    let gz = trace_file();
    let json = inflate(&gz, u64::MAX).json.into_owned();
    // The same traces one per line: a shape the fast path leaves to the general reader.
    let values: Vec<serde_json::Value> = serde_json::from_slice(&json).expect("an array");
    let ndjson: Vec<u8> = values
        .iter()
        .flat_map(|v| {
            let mut l = serde_json::to_vec(v).expect("json");
            l.push(b'\n');
            l
        })
        .collect();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("inflate (1 MB JSON)", |b| {
        b.iter(|| inflate(black_box(&gz), u64::MAX).json.len())
    });
    g.bench_function("parse array (fast path)", |b| {
        b.iter(|| parse_traces(black_box(&json)).traces.len())
    });
    // What every file cost before the fast path.
    g.bench_function("parse array (general reader)", |b| {
        b.iter(|| parse_traces_general(black_box(&json)).traces.len())
    });
    g.throughput(Throughput::Bytes(ndjson.len() as u64));
    g.bench_function("parse ndjson (general reader)", |b| {
        b.iter(|| parse_traces(black_box(&ndjson)).traces.len())
    });
    // `--parse candidates`: the whole text of a file without a watched action is scanned.
    let ecs = inflate(&trace_file_of("ECS"), u64::MAX).json.into_owned();
    let screen = ActionScreen::new(&["login".into(), "logout".into()]).expect("screenable");
    assert!(!screen.may_match(&ecs), "the ECS file holds no login");
    g.throughput(Throughput::Bytes(ecs.len() as u64));
    g.bench_function("screen for login/logout (ECS file, no hit)", |b| {
        b.iter(|| screen.may_match(black_box(&ecs)))
    });
    g.finish();
}

fn detect(c: &mut Criterion) {
    let gz = trace_file();
    let json = inflate(&gz, u64::MAX).json.into_owned();
    let parsed = parse_traces(&json);
    let rule = Rule::new(
        &["login".into(), "logout".into()],
        AllowList::parse(&["10.0.0.0/8"]).expect("allow-list"),
    );
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(parsed.traces.len() as u64));
    g.bench_function("rule over 850 traces", |b| {
        b.iter(|| {
            parsed
                .traces
                .iter()
                .filter(|t| rule.check(black_box(t)).is_some())
                .count()
        })
    });
    g.finish();
}

fn md5(c: &mut Criterion) {
    let data = vec![0x5au8; 1 << 20];
    let mut g = c.benchmark_group("md5");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1 MiB", |b| b.iter(|| md5_hex(black_box(&data))));
    g.finish();
}

fn allowlist(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // 10,000 entries: a mix of /32 hosts, /24 and /16 ranges and IPv6 /64s.
    let entries: Vec<String> = (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("{}", Ipv4Addr::from(rng.random::<u32>())),
            1 => format!("{}/24", Ipv4Addr::from(rng.random::<u32>() & 0xffff_ff00)),
            2 => format!("{}/16", Ipv4Addr::from(rng.random::<u32>() & 0xffff_0000)),
            _ => format!(
                "{}/64",
                Ipv6Addr::from(rng.random::<u128>() & !0u128 >> 64 << 64)
            ),
        })
        .collect();
    let big = AllowList::parse(&entries).expect("10k entries");
    let small =
        AllowList::parse(&["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]).expect("3 entries");
    let probes: Vec<IpAddr> = (0..1_000_000)
        .map(|i| {
            if i % 4 == 3 {
                IpAddr::V6(Ipv6Addr::from(rng.random::<u128>()))
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))
            }
        })
        .collect();
    let mut g = c.benchmark_group("allowlist");
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.sample_size(20);
    for (name, list) in [
        ("1M lookups, 10k entries", &big),
        ("1M lookups, 3 entries", &small),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| probes.iter().filter(|ip| list.contains(**ip)).count())
        });
    }
    g.finish();
}

fn signature(c: &mut Criterion) {
    let key = PrivateKey::from_pem(SIGNING_KEY).expect("test key");
    let public: PublicKey = key.public_key();
    let message = signed_message(
        "2026-09-30T02-59-59Z",
        "CloudTraces/eu-de/2026/9/30/system/Digest/IAM/x_CloudTrace-Digest_eu-de_2026-09-30T02-59-59Z.json.gz",
        "072ffdc29cbddf8f20111843b7554f87",
        None,
    );
    let sig = key.sign_hex(message.as_bytes());
    let mut g = c.benchmark_group("signature");
    g.bench_function("SHA256withRSA-2048 verify", |b| {
        b.iter(|| public.verify(black_box(message.as_bytes()), black_box(&sig)))
    });
    g.bench_function("digest parse (gzip JSON)", |b| {
        b.iter_batched(
            || digest_file(&key),
            |raw| digest::parse(&raw, u64::MAX).map(|d| d.log_files.len()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A gzip digest listing 20 files.
fn digest_file(_key: &PrivateKey) -> Vec<u8> {
    use std::io::Write;
    let files: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            serde_json::json!({"bucket": "b", "object": format!("CloudTraces/eu-de/2026/9/30/system/IAM/x_CloudTrace_eu-de_2026-09-30T02-{i:02}-00Z_a.json.gz"),
                "log_hash_value": "072ffdc29cbddf8f20111843b7554f87", "log_hash_algorithm": "MD5"})
        })
        .collect();
    let doc = serde_json::json!({"digest_end_time": "2026-09-30T02-59-59Z",
        "digest_start_time": "2026-09-30T01-59-59Z", "digest_object": "o", "digest_bucket": "b",
        "digest_signature_algorithm": "SHA256withRSA", "log_files": files});
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&serde_json::to_vec(&doc).expect("json"))
        .expect("gzip");
    e.finish().expect("gzip")
}

criterion_group!(benches, decode, detect, md5, allowlist, signature);
criterion_main!(benches);
