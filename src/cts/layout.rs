//! Object keys of a CTS bucket (SPEC §1):
//!
//! ```text
//! [prefix/]CloudTraces/<region>/<Y>/<M>/<D>/<tracker>/[<Service>/]<file>
//! [prefix/]CloudTraces/<region>/<Y>/<M>/<D>/<tracker>/Digest/[<Service>/]<digest file>
//! ```
//!
//! Month and day folders may or may not be zero-padded, so key order is not time order:
//! day folders are derived from the time window, never from "the last key seen".

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};

/// The folder under the source prefix that holds every region.
pub const ROOT: &str = "CloudTraces/";

const TRACE_MARK: &str = "CloudTrace_";
const DIGEST_MARK: &str = "CloudTrace-Digest_";
/// `YYYY-MM-DDTHH-MM-SSZ`
const STAMP_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Trace,
    Digest,
}

/// What a key under `CloudTraces/` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// A trace or digest file with every part of its path understood.
    File(CtsFile),
    /// The key sits where CTS puts files and names itself a trace or digest file, but its
    /// name carries no valid timestamp: reported, never skipped silently.
    BadName { day: NaiveDate, reason: String },
    /// Not a CTS file (another tool's object, a folder marker, ...): ignored but counted.
    Unrelated,
}

/// A trace or digest file, as its key describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtsFile {
    pub kind: FileKind,
    pub region: String,
    pub tracker: String,
    /// `None` when the tracker does not sort files by service.
    pub service: Option<String>,
    /// The upload time in the file name (UTC); this is what selects a file for a window.
    pub time: DateTime<Utc>,
}

/// Classifies `rel`, a key relative to the `CloudTraces/` folder
/// (`<region>/<Y>/<M>/<D>/<tracker>/...`).
pub fn classify(rel: &str) -> Classified {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.len() < 6 || parts.iter().any(|p| p.is_empty()) {
        return Classified::Unrelated;
    }
    let (region, y, m, d, tracker) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
    let Some(day) = date_folder(y, m, d) else {
        return Classified::Unrelated;
    };
    let rest = &parts[5..];
    let (kind, service, name) = match rest {
        ["Digest", name] => (FileKind::Digest, None, *name),
        ["Digest", service, name] => (FileKind::Digest, Some(*service), *name),
        [name] => (FileKind::Trace, None, *name),
        [service, name] => (FileKind::Trace, Some(*service), *name),
        _ => return Classified::Unrelated,
    };
    let mark = match kind {
        FileKind::Trace => TRACE_MARK,
        FileKind::Digest => DIGEST_MARK,
    };
    let Some(after_mark) = find_mark(name, mark) else {
        return Classified::Unrelated;
    };
    match find_stamp(&name[after_mark..]) {
        Some(time) => Classified::File(CtsFile {
            kind,
            region: region.to_owned(),
            tracker: tracker.to_owned(),
            service: service.map(str::to_owned),
            time,
        }),
        None => Classified::BadName {
            day,
            reason: format!("file name {name:?} has no YYYY-MM-DDTHH-MM-SSZ timestamp"),
        },
    }
}

/// Position right after `mark` when it starts the name or follows a `_` (the prefix may be
/// empty or contain `_` itself, so the name is never split on `_`).
fn find_mark(name: &str, mark: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = name[from..].find(mark) {
        let at = from + i;
        if at == 0 || name.as_bytes()[at - 1] == b'_' {
            return Some(at + mark.len());
        }
        from = at + 1;
    }
    None
}

/// The first `YYYY-MM-DDTHH-MM-SSZ` in `s`, as a UTC time.
fn find_stamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(STAMP_LEN - 1)).find_map(|i| {
        let cand = s.get(i..i + STAMP_LEN)?;
        parse_stamp(cand)
    })
}

/// Parses `2017-03-28T02-09-17Z`, the timestamp form of CTS file names and digests.
pub fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    NaiveDateTime::parse_from_str(&s[..19], "%Y-%m-%dT%H-%M-%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The date a `<Y>/<M>/<D>` folder names, padded or not.
fn date_folder(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    let num = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|c| c.is_ascii_digit())
    };
    if !(num(y, 4) && num(m, 2) && num(d, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The day a listing prefix names (`…/<Y>/<M>/<D>/…`), padded or not.
pub fn day_of_prefix(prefix: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = prefix.split('/').collect();
    parts.windows(3).find_map(|w| date_folder(w[0], w[1], w[2]))
}

/// The folder names of one day, relative to a region folder: the unpadded form CTS documents
/// (`2026/9/3/`) and the padded form (`2026/09/03/`) when it differs.
pub fn day_folders(day: NaiveDate) -> Vec<String> {
    let unpadded = format!("{}/{}/{}/", day.year(), day.month(), day.day());
    let padded = format!("{}/{:02}/{:02}/", day.year(), day.month(), day.day());
    if unpadded == padded {
        vec![unpadded]
    } else {
        vec![unpadded, padded]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn file(rel: &str) -> CtsFile {
        match classify(rel) {
            Classified::File(f) => f,
            other => panic!("{rel}: {other:?}"),
        }
    }

    #[test]
    fn trace_with_service_folder_and_underscored_prefix() {
        let f = file("eu-de/2026/9/30/system/IAM/my_pre_fix_CloudTrace_eu-de_2026-09-30T23-59-58Z_ab12cd.json.gz");
        assert_eq!(f.kind, FileKind::Trace);
        assert_eq!(f.region, "eu-de");
        assert_eq!(f.tracker, "system");
        assert_eq!(f.service.as_deref(), Some("IAM"));
        assert_eq!(
            f.time,
            Utc.with_ymd_and_hms(2026, 9, 30, 23, 59, 58).unwrap()
        );
    }

    #[test]
    fn trace_without_service_folder_and_empty_prefix() {
        let f = file("eu-de/2026/10/01/data1/CloudTrace_eu-de-proj_2026-10-01T00-00-01Z_x.json");
        assert_eq!(f.service, None);
        assert_eq!(f.tracker, "data1");
        let f = file("eu-de/2026/10/1/data1/_CloudTrace_eu-de_2026-10-01T00-00-01Z_x.json.gz");
        assert_eq!(f.time, Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 1).unwrap());
    }

    #[test]
    fn digest_files_are_kept_apart() {
        let f = file("cn-north-4/2026/1/2/system/Digest/ECS/p_CloudTrace-Digest_cn-north-4_2026-01-02T03-00-00Z.json.gz");
        assert_eq!(f.kind, FileKind::Digest);
        assert_eq!(f.service.as_deref(), Some("ECS"));
    }

    #[test]
    fn unrelated_and_bad_names() {
        assert_eq!(
            classify("eu-de/2026/9/30/system/IAM/notes.txt"),
            Classified::Unrelated
        );
        assert_eq!(
            classify("eu-de/2026/13/30/system/IAM/x_CloudTrace_a_2026-09-30T23-59-58Z.json.gz"),
            Classified::Unrelated
        );
        assert_eq!(classify("eu-de/2026/9/30/"), Classified::Unrelated);
        assert_eq!(
            classify("eu-de/2026/9/30/system/IAM/x/y/z_CloudTrace_a.json.gz"),
            Classified::Unrelated
        );
        // "NotCloudTrace_" is not the marker.
        assert_eq!(
            classify("eu-de/2026/9/30/system/IAM/NotCloudTrace_a_2026-09-30T23-59-58Z.json.gz"),
            Classified::Unrelated
        );
        assert!(matches!(
            classify("eu-de/2026/9/30/system/IAM/x_CloudTrace_eu-de_2026-09-30T25-99-58Z.json.gz"),
            Classified::BadName { .. }
        ));
    }

    #[test]
    fn days_of_prefixes() {
        let d = NaiveDate::from_ymd_opt(2026, 9, 3).unwrap();
        assert_eq!(
            day_of_prefix("p/CloudTraces/eu-de/2026/9/3/system/"),
            Some(d)
        );
        assert_eq!(day_of_prefix("CloudTraces/eu-de/2026/09/03/"), Some(d));
        assert_eq!(day_of_prefix("CloudTraces/eu-de/"), None);
    }

    #[test]
    fn day_folders_cover_both_paddings() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(day_folders(d(2026, 9, 3)), vec!["2026/9/3/", "2026/09/03/"]);
        assert_eq!(
            day_folders(d(2026, 10, 3)),
            vec!["2026/10/3/", "2026/10/03/"]
        );
        assert_eq!(day_folders(d(2026, 10, 13)), vec!["2026/10/13/"]);
    }
}
