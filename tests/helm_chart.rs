//! The Helm chart (helm/ctsguard) rendered by a real `helm template`, and what its manifests
//! must say: the scan CronJob never overlaps (Forbid), shards are Indexed Jobs, credentials
//! only come from the Secret, every pod is hardened, config changes change the pod template,
//! and the ConfigMap's TOML is accepted by this build of ctsguard.
//!
//! helm is taken from `CTSGUARD_HELM`, else `.ci/bin/helm` (installed by `bash .ci/helm.sh`),
//! else `PATH`. Without one the tests print a note and pass, except when `CI` is set: CI must
//! check the chart, so a missing helm fails there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const KUBE_VERSION: &str = "1.30.0";
/// Where the Dockerfile installs the binary; the chart runs it by this path.
const IMAGE_BINARY: &str = "/usr/local/bin/ctsguard";
/// The distroless nonroot user the Dockerfile runs as and the chart's default runAsUser.
const IMAGE_USER: u64 = 65532;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("helm/ctsguard")
}

fn ci_values(name: &str) -> String {
    chart()
        .join("ci")
        .join(name)
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The helm binary to use, or `None` (after a note) when there is none outside CI.
fn helm() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(p) = std::env::var_os("CTSGUARD_HELM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(works(&p), "CTSGUARD_HELM={} does not run", p.display());
        return Some(p);
    }
    let local = root().join(".ci/bin/helm");
    if works(&local) {
        return Some(local);
    }
    if works(Path::new("helm")) {
        return Some(PathBuf::from("helm"));
    }
    if in_ci() {
        panic!(
            "no helm binary but CI is set: CI must check the chart (`bash .ci/run` installs helm \
             into .ci/bin through .ci/helm.sh)"
        );
    }
    eprintln!(
        "note: skipping the Helm chart test: no helm (set CTSGUARD_HELM, put helm on PATH, or run \
         `bash .ci/helm.sh`, which installs .ci/bin/helm)"
    );
    None
}

/// `helm template` with the given extra arguments: the manifests, or helm's error output.
fn template(helm: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let out = Command::new(helm)
        .args(["template", "ctsguard"])
        .arg(chart())
        .args(["--namespace", "security", "--kube-version", KUBE_VERSION])
        .args(args)
        .output()
        .expect("run helm template");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).expect("helm template prints valid YAML");
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn render(helm: &Path, args: &[&str]) -> Vec<Value> {
    template(helm, args).unwrap_or_else(|e| panic!("helm template {args:?} failed:\n{e}"))
}

fn defaults(helm: &Path, extra: &[&str]) -> Vec<Value> {
    let values = ci_values("default-values.yaml");
    let mut args = vec!["--values", values.as_str()];
    args.extend_from_slice(extra);
    render(helm, &args)
}

fn all_on(helm: &Path) -> Vec<Value> {
    render(helm, &["--values", &ci_values("all-on-values.yaml")])
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} named *{suffix} in {}", names(docs)))
}

fn names(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Job spec of a CronJob or Job.
fn job_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"],
        Some("Job") => &doc["spec"],
        k => panic!("not a job: {k:?}"),
    }
}

/// The pod template (metadata and spec) of a workload, or the Pod itself.
fn pod(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("Pod") => doc,
        _ => &job_spec(doc)["template"],
    }
}

fn container(doc: &Value) -> &Value {
    let cs = pod(doc)["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(cs.len(), 1, "one container");
    &cs[0]
}

fn env<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    container(doc)["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
}

fn args(doc: &Value) -> Vec<&str> {
    container(doc)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect()
}

fn workloads(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("CronJob" | "Job" | "Pod")))
        .collect()
}

fn config_toml(docs: &[Value]) -> String {
    let cms = kind(docs, "ConfigMap");
    assert_eq!(cms.len(), 1, "one ConfigMap");
    cms[0]["data"]["config.toml"]
        .as_str()
        .expect("config.toml in the ConfigMap")
        .to_owned()
}

/// What every pod of the chart must be: non-root, read-only, no capabilities, no privilege
/// escalation, seccomp RuntimeDefault, no service-account token, bounded resources, and
/// writable storage only from emptyDir (or the volumes a feature asks for).
fn assert_hardened(doc: &Value) {
    let what = format!("{}/{}", doc["kind"], doc["metadata"]["name"]);
    let spec = &pod(doc)["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false, "{what}");
    assert_eq!(spec["restartPolicy"], "Never", "{what}");
    let psc = &spec["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{what}");
    assert!(
        psc["runAsUser"].as_u64().is_some_and(|u| u > 0),
        "{what}: runAsUser"
    );
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{what}");

    let c = container(doc);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(sc["privileged"], false, "{what}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{what}"
    );
    for side in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(
                !c["resources"][side][res].is_null(),
                "{what}: resources.{side}.{res} missing: {}",
                c["resources"]
            );
        }
    }
    assert_eq!(c["command"], serde_json::json!([IMAGE_BINARY]), "{what}");
    assert_eq!(
        c["image"]
            .as_str()
            .map(|i| i.starts_with("registry.example.com/security/ctsguard")),
        Some(true),
        "{what}"
    );
    // /tmp is the one writable scratch space, an emptyDir with a size limit.
    let volumes = spec["volumes"].as_array().expect("volumes");
    let tmp = volumes
        .iter()
        .find(|v| v["name"] == "tmp")
        .expect("tmp volume");
    assert!(tmp["emptyDir"]["sizeLimit"].is_string(), "{what}: {tmp}");
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    let config = mounts
        .iter()
        .find(|m| m["name"] == "config")
        .expect("config mount");
    assert_eq!(config["readOnly"], true, "{what}");
    assert_eq!(
        env(doc, "CTSGUARD_CONFIG").map(|e| &e["value"]),
        Some(&Value::from(format!(
            "{}/config.toml",
            config["mountPath"].as_str().unwrap()
        ))),
        "{what}"
    );
    assert_eq!(
        env(doc, "CTSGUARD_LOG_FORMAT").map(|e| &e["value"]),
        Some(&Value::from("json")),
        "{what}"
    );
}

#[test]
fn default_scan_cronjob_never_overlaps_and_is_hardened() {
    let Some(helm) = helm() else { return };
    let docs = defaults(&helm, &[]);
    // No verify, no backfill, no Secret, no PVC by default.
    assert_eq!(kind(&docs, "CronJob").len(), 1, "{}", names(&docs));
    assert!(kind(&docs, "Job").is_empty(), "{}", names(&docs));
    assert!(kind(&docs, "Secret").is_empty(), "{}", names(&docs));
    assert!(
        kind(&docs, "PersistentVolumeClaim").is_empty(),
        "{}",
        names(&docs)
    );

    let scan = named(&docs, "CronJob", "-scan");
    let spec = &scan["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    assert_eq!(spec["schedule"], "*/15 * * * *");
    for k in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        assert!(spec[k].as_u64().is_some(), "{k}: {spec}");
    }
    let job = job_spec(scan);
    assert!(job["backoffLimit"].as_u64().is_some());
    assert!(job["activeDeadlineSeconds"].as_u64().is_some_and(|s| s > 0));
    assert!(
        job["completionMode"].is_null(),
        "one shard is a plain Job: {job}"
    );
    // Exit 1 and 3 fail the Job at once; evictions do not count.
    let rules = job["podFailurePolicy"]["rules"]
        .as_array()
        .expect("podFailurePolicy");
    assert_eq!(rules[0]["action"], "FailJob");
    assert_eq!(rules[0]["onExitCodes"]["values"], serde_json::json!([1, 3]));
    assert_eq!(rules[1]["action"], "Ignore");

    assert_eq!(args(scan), ["scan"]);
    assert!(env(scan, "CTSGUARD_SHARDS").is_none());
    assert_hardened(scan);
    // Writable storage is emptyDir only: config (read-only ConfigMap) and /tmp.
    let volumes = pod(scan)["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    assert!(volumes
        .iter()
        .all(|v| v["emptyDir"].is_object() || v["configMap"].is_object()));

    let toml = config_toml(&docs);
    assert!(
        toml.contains("source = \"s3://example-cts-bucket/org-a\""),
        "{toml}"
    );
    assert!(
        toml.contains("checkpoint = \"s3://example-state-bucket/ctsguard/checkpoint.json\""),
        "{toml}"
    );
    // The `helm test` pod runs `ctsguard check` with the same hardening.
    let check = named(&docs, "Pod", "-check");
    assert_eq!(check["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(args(check), ["check"]);
    assert_hardened(check);
}

#[test]
fn image_and_chart_agree() {
    // Needs no helm: the Dockerfile against the chart's defaults.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("COPY --from=build /out/ctsguard {IMAGE_BINARY}\n")),
        "the Dockerfile installs the binary at {IMAGE_BINARY}"
    );
    assert!(dockerfile.contains(&format!("USER {IMAGE_USER}:{IMAGE_USER}\n")));
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"{IMAGE_BINARY}\"]")));
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        values["podSecurityContext"]["runAsUser"].as_u64(),
        Some(IMAGE_USER)
    );
    assert_eq!(
        values["podSecurityContext"]["runAsGroup"].as_u64(),
        Some(IMAGE_USER)
    );
    // The chart's appVersion (the default image tag) is this crate's version.
    let chart_yaml: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(chart_yaml["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn shards_render_indexed_jobs() {
    let Some(helm) = helm() else { return };
    for n in [2u64, 4] {
        let docs = defaults(&helm, &["--set", &format!("scan.shards={n}")]);
        let scan = named(&docs, "CronJob", "-scan");
        let job = job_spec(scan);
        assert_eq!(job["completionMode"], "Indexed", "{job}");
        assert_eq!(job["completions"].as_u64(), Some(n));
        assert_eq!(job["parallelism"].as_u64(), Some(n));
        assert_eq!(scan["spec"]["concurrencyPolicy"], "Forbid");
        // The index comes from JOB_COMPLETION_INDEX, which the Job controller sets: the chart
        // must not set it (nor a fixed --shard).
        assert_eq!(
            env(scan, "CTSGUARD_SHARDS").map(|e| &e["value"]),
            Some(&Value::from(n.to_string()))
        );
        assert!(env(scan, "JOB_COMPLETION_INDEX").is_none());
        assert!(env(scan, "CTSGUARD_SHARD").is_none());
        assert!(!args(scan).iter().any(|a| a.starts_with("--shard")));
    }
}

#[test]
fn secrets_only_in_the_secret() {
    let Some(helm) = helm() else { return };
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(ci_values("all-on-values.yaml")).unwrap())
            .unwrap();
    let creds = &values["credentials"];
    let secrets: Vec<(&str, &str)> = [
        "accessKeyId",
        "secretAccessKey",
        "smnToken",
        "smnAccessKey",
        "smnSecretKey",
        "smtpPassword",
        "webhookSecret",
    ]
    .iter()
    .map(|f| {
        (
            *f,
            creds[*f].as_str().expect("secret value in all-on values"),
        )
    })
    .collect();

    let docs = all_on(&helm);
    let secret = named(&docs, "Secret", "ctsguard-all-on");
    for (field, value) in &secrets {
        let key = creds["keys"][*field].as_str().unwrap();
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in the Secret"));
        assert_eq!(b64, base64(value), "{field}");
        for doc in docs.iter().filter(|d| d["kind"] != "Secret") {
            let text = doc.to_string();
            assert!(
                !text.contains(value) && !text.contains(&base64(value)),
                "{field} leaks into {}/{}",
                doc["kind"],
                doc["metadata"]["name"]
            );
        }
    }
    assert!(
        !config_toml(&docs).contains("access_key"),
        "no credentials in the TOML"
    );

    for w in workloads(&docs) {
        for (var, key, optional) in [
            ("AWS_ACCESS_KEY_ID", "obs-access-key", false),
            ("AWS_SECRET_ACCESS_KEY", "obs-secret-key", false),
            ("CTSGUARD_SMN_TOKEN", "smn-token", true),
            ("CTSGUARD_SMN_ACCESS_KEY", "smn-access-key", true),
            ("CTSGUARD_SMN_SECRET_KEY", "smn-secret-key", true),
            ("CTSGUARD_SMTP_PASSWORD", "smtp-password", true),
            ("CTSGUARD_WEBHOOK_SECRET", "webhook-secret", true),
        ] {
            let e = env(w, var).unwrap_or_else(|| panic!("{var} in {}", w["metadata"]["name"]));
            assert!(e["value"].is_null(), "{var} must not carry a literal value");
            let r = &e["valueFrom"]["secretKeyRef"];
            assert_eq!(r["name"], "ctsguard-all-on", "{var}");
            assert_eq!(r["key"], key, "{var}");
            assert_eq!(r["optional"].as_bool().unwrap_or(false), optional, "{var}");
        }
    }

    // An existing Secret: referenced by name, none created.
    let docs = defaults(
        &helm,
        &["--set", "credentials.existingSecret=obs-credentials"],
    );
    assert!(kind(&docs, "Secret").is_empty());
    let scan = named(&docs, "CronJob", "-scan");
    assert_eq!(
        env(scan, "AWS_SECRET_ACCESS_KEY").unwrap()["valueFrom"]["secretKeyRef"]["name"],
        "obs-credentials"
    );
}

#[test]
fn every_option_on_renders_verify_backfill_and_hardened_pods() {
    let Some(helm) = helm() else { return };
    let docs = all_on(&helm);
    let all = workloads(&docs);
    assert_eq!(
        all.len(),
        4,
        "scan, verify, backfill, test pod: {}",
        names(&docs)
    );
    for w in &all {
        assert_hardened(w);
        let annotations = &pod(w)["metadata"]["annotations"];
        assert!(annotations["checksum/config"]
            .as_str()
            .is_some_and(|c| c.len() == 64));
        assert!(annotations["checksum/secret"]
            .as_str()
            .is_some_and(|c| c.len() == 64));
    }

    let scan = named(&docs, "CronJob", "-scan");
    assert_eq!(scan["spec"]["timeZone"], "Europe/Berlin");
    assert_eq!(job_spec(scan)["completions"].as_u64(), Some(3));
    let metrics = env(scan, "CTSGUARD_METRICS_FILE").unwrap()["value"]
        .as_str()
        .unwrap();
    assert!(
        metrics.contains("$(POD_COMPLETION_INDEX)"),
        "one metrics file per shard: {metrics}"
    );
    assert_eq!(
        env(scan, "CTSGUARD_METRICS_PUSH").unwrap()["value"],
        "http://prometheus-pushgateway.monitoring:9091"
    );
    let state = pod(scan)["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "state")
        .expect("state volume");
    assert_eq!(
        state["persistentVolumeClaim"]["claimName"],
        "ctsguard-all-on-state"
    );
    let pvc = named(&docs, "PersistentVolumeClaim", "-state");
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    let verify = named(&docs, "CronJob", "-verify");
    assert_eq!(verify["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(
        args(verify),
        [
            "verify",
            "--from",
            "yesterday",
            "--to",
            "today",
            "--format",
            "markdown",
            "--output",
            "/reports/verify-{from}.md",
            "--log",
            "info"
        ]
    );
    assert_eq!(
        job_spec(verify)["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"],
        serde_json::json!([1])
    );

    // The backfill: its window, and nothing of the scan's state.
    let backfill = named(&docs, "Job", "");
    assert!(backfill["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("ctsguard-all-on-backfill-"));
    assert_eq!(
        args(backfill),
        [
            "backfill",
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-30T12:00:00Z",
            "--concurrency",
            "64"
        ]
    );
    assert_eq!(
        job_spec(backfill)["ttlSecondsAfterFinished"].as_u64(),
        Some(86400)
    );
    let vols = pod(backfill)["spec"]["volumes"].as_array().unwrap();
    assert!(
        vols.iter().all(|v| v["persistentVolumeClaim"].is_null()),
        "{vols:?}"
    );
    assert!(env(backfill, "CTSGUARD_CHECKPOINT").is_none());
    assert!(env(backfill, "CTSGUARD_SHARDS").is_none());
}

#[test]
fn a_config_change_changes_the_pod_template() {
    let Some(helm) = helm() else { return };
    let checksum = |extra: &[&str]| {
        let docs = defaults(&helm, extra);
        pod(named(&docs, "CronJob", "-scan"))["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .expect("checksum/config")
            .to_owned()
    };
    let base = checksum(&[]);
    assert_eq!(base.len(), 64);
    assert_eq!(
        base,
        checksum(&["--set", "scan.schedule=0 * * * *"]),
        "not config"
    );
    assert_ne!(base, checksum(&["--set", "config.allow={10.0.0.0/8}"]));
    assert_ne!(base, checksum(&["--set", "scan.lateness=48h"]));
}

#[test]
fn rendered_config_is_accepted_by_ctsguard() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    for values in ["default-values.yaml", "all-on-values.yaml"] {
        let docs = render(&helm, &["--values", &ci_values(values)]);
        let file = dir.path().join(format!("{values}.toml"));
        let mut toml = config_toml(&docs);
        // The public key is a file of the ConfigMap, mounted next to config.toml: here, the
        // same PEM written where this test can read it.
        let cms = kind(&docs, "ConfigMap");
        if let Some(pem) = cms[0]["data"]["public-key.pem"].as_str() {
            let key = dir.path().join("public-key.pem");
            std::fs::write(&key, pem).unwrap();
            assert!(
                toml.contains("public_key = \"/etc/ctsguard/public-key.pem\""),
                "{toml}"
            );
            toml = toml.replace("/etc/ctsguard/public-key.pem", key.to_str().unwrap());
        }
        std::fs::write(&file, toml).unwrap();
        // The sample bucket instead of the configured one: `check` then reads every key of
        // the file (unknown keys are errors) and reaches a source without credentials.
        let out = Command::new(env!("CARGO_BIN_EXE_ctsguard"))
            .arg("check")
            .arg("--config")
            .arg(&file)
            .arg("--source")
            .arg(root().join("fixtures/bucket"))
            .env_remove("CTSGUARD_CONFIG")
            // The Secret's SMN token, for the all-on values' SMN sink.
            .env("CTSGUARD_SMN_TOKEN", "test-token")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctsguard rejects the chart's config.toml from {values}:\n{}\n{}",
            std::fs::read_to_string(&file).unwrap(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn missing_or_wrong_settings_fail_with_a_message() {
    let Some(helm) = helm() else { return };
    let err = |args: &[&str]| match template(&helm, args) {
        Ok(docs) => panic!("helm template {args:?} rendered: {}", names(&docs)),
        Err(e) => e,
    };
    let e = err(&["--set", "image.repository=r"]);
    assert!(e.contains("config.source is required"), "{e}");
    let e = err(&["--set", "image.repository=r,config.source=s3://b"]);
    assert!(e.contains("scan.checkpoint is required"), "{e}");
    let e = err(&["--set", "config.source=s3://b,scan.checkpoint=s3://b/c"]);
    assert!(e.contains("image.repository is required"), "{e}");
    let values = ci_values("default-values.yaml");
    let e = err(&["--values", &values, "--set", "verify.enabled=true"]);
    assert!(e.contains("verify.output is required"), "{e}");
    let e = err(&["--values", &values, "--set", "backfill.enabled=true"]);
    assert!(e.contains("backfill.from is required"), "{e}");
    let e = err(&["--values", &values, "--set", "credentials.create=true"]);
    assert!(e.contains("credentials.accessKeyId is required"), "{e}");
    // values.schema.json: unknown keys and wrong types.
    let e = err(&["--values", &values, "--set", "scan.shard=3"]);
    assert!(e.contains("shard"), "{e}");
    let e = err(&["--values", &values, "--set", "scan.shards=0"]);
    assert!(e.contains("shards"), "{e}");
    let e = err(&[
        "--values",
        &values,
        "--set",
        "config.source=https://example.com/b",
    ]);
    assert!(e.contains("source"), "{e}");

    // A persistence volume replaces the S3 checkpoint.
    let docs = render(
        &helm,
        &[
            "--set",
            "image.repository=r,config.source=s3://b,scan.persistence.enabled=true",
        ],
    );
    assert!(config_toml(&docs).contains("checkpoint = \"/var/lib/ctsguard/checkpoint.json\""));
    // Reports to the bucket.
    let docs = defaults(
        &helm,
        &[
            "--set",
            "verify.enabled=true,verify.output=s3://reports/ctsguard/{from}.html",
        ],
    );
    let verify = named(&docs, "CronJob", "-verify");
    assert_eq!(
        args(verify).last(),
        Some(&"s3://reports/ctsguard/{from}.html")
    );
}

/// Standard base64 with padding, as `b64enc` writes it.
fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
