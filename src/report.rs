//! Rendering the integrity report of `verify`: JSON (the documented schema), Markdown (for a
//! ticket or a pull request) and HTML (one self-contained page for a person: no scripts, no
//! external assets, so it can be mailed or archived as evidence).

use std::fmt::Write as _;

use chrono::Timelike;

use crate::cts::digest::Integrity;
use crate::cts::layout::FileKind;
use crate::verify::{Cell, FileEntry, Report};

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Markdown,
    Html,
}

pub fn render(report: &Report, format: Format) -> Result<String, serde_json::Error> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
        Format::Markdown => markdown(report),
        Format::Html => html(report),
    })
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Digest => "digest",
        FileKind::Trace => "trace",
    }
}

/// Problems first (digests before trace files, then by key): what an auditor reads first.
fn problems(report: &Report) -> Vec<&FileEntry> {
    let mut p: Vec<&FileEntry> = report
        .files
        .iter()
        .filter(|f| f.status != Integrity::Valid)
        .collect();
    p.sort_by(|a, b| (a.kind, a.status, &a.key).cmp(&(b.kind, b.status, &b.key)));
    p
}

fn verdict(report: &Report) -> String {
    let s = &report.summary;
    if s.all_valid {
        return "All valid: every digest and trace file checked out and no hour lacks a digest."
            .into();
    }
    let bad_files = report
        .files
        .iter()
        .filter(|f| f.status != Integrity::Valid)
        .count();
    let mut parts = Vec::new();
    if bad_files > 0 {
        parts.push(format!(
            "{bad_files} file{} not valid",
            if bad_files == 1 { "" } else { "s" }
        ));
    }
    if s.gaps > 0 {
        parts.push(format!(
            "{} gap{} ({} hour{} without a digest)",
            s.gaps,
            if s.gaps == 1 { "" } else { "s" },
            s.missing_hours,
            if s.missing_hours == 1 { "" } else { "s" }
        ));
    }
    if s.errors > 0 {
        parts.push(format!(
            "{} object{} or folder{} unreadable",
            s.errors,
            if s.errors == 1 { "" } else { "s" },
            if s.errors == 1 { "" } else { "s" }
        ));
    }
    format!("Problems found: {}.", parts.join(", "))
}

fn count_line(
    counts: &std::collections::BTreeMap<&'static str, u64>,
    order: &[Integrity],
) -> Vec<(String, u64)> {
    order
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                counts.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
}

fn markdown(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = writeln!(o, "# CTS integrity report\n");
    let _ = writeln!(o, "- Source: `{}`", r.source);
    let _ = writeln!(
        o,
        "- Window requested: {} to {}",
        s.window_requested.from, s.window_requested.to
    );
    match &s.window_found {
        Some(w) => {
            let _ = writeln!(o, "- Window found (digests): {} to {}", w.from, w.to);
        }
        None => {
            let _ = writeln!(o, "- Window found (digests): none");
        }
    }
    let _ = writeln!(o, "\n**{}**\n", verdict(r));

    let _ = writeln!(
        o,
        "| | {} |",
        Integrity::DIGEST
            .iter()
            .chain([Integrity::NotInDigest].iter())
            .map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(o, "|---|{}", "---:|".repeat(Integrity::DIGEST.len() + 1));
    for (label, counts) in [("digests", &s.digests), ("trace files", &s.trace_files)] {
        let cells: Vec<String> = Integrity::DIGEST
            .iter()
            .chain([Integrity::NotInDigest].iter())
            .map(|i| match counts.get(i.as_str()) {
                Some(n) => n.to_string(),
                None => "–".into(),
            })
            .collect();
        let _ = writeln!(o, "| {label} | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        o,
        "\nGaps: {} ({} hours without a digest). Unreadable: {}. Too recent to judge: {} trace files.\n",
        s.gaps, s.missing_hours, s.errors, s.pending_trace_files
    );

    let p = problems(r);
    if !p.is_empty() {
        let _ = writeln!(
            o,
            "## Problems\n\n| kind | status | key | detail |\n|---|---|---|---|"
        );
        for f in p {
            let _ = writeln!(
                o,
                "| {} | {} | `{}` | {} |",
                kind_name(f.kind),
                f.status,
                md_cell(&f.key),
                md_cell(&f.detail)
            );
        }
        o.push('\n');
    }
    if !r.gaps.is_empty() {
        let _ = writeln!(o, "## Gaps\n\n| region | tracker | service | from | to | hours |\n|---|---|---|---|---|---:|");
        for g in &r.gaps {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&g.region),
                md_cell(&g.tracker),
                md_cell(&g.service),
                g.from,
                g.to,
                g.hours
            );
        }
        o.push('\n');
    }
    if !r.errors.is_empty() {
        let _ = writeln!(o, "## Unreadable\n\n| key | reason |\n|---|---|");
        for e in &r.errors {
            let _ = writeln!(o, "| `{}` | {} |", md_cell(&e.key), md_cell(&e.reason));
        }
        o.push('\n');
    }
    let valid: Vec<&FileEntry> = r
        .files
        .iter()
        .filter(|f| f.status == Integrity::Valid)
        .collect();
    if !valid.is_empty() {
        let _ = writeln!(o, "## Valid ({})\n\n| kind | key |\n|---|---|", valid.len());
        for f in valid {
            let _ = writeln!(o, "| {} | `{}` |", kind_name(f.kind), md_cell(&f.key));
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// HTML

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root { --ok:#1f8a4c; --bad:#c62828; --miss:#ef8f00; --none:#e4e6ea; --ink:#1d2330; --mute:#5d6677; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: var(--mute); margin: 0 0 16px; }
.verdict { padding: 12px 16px; border-radius: 6px; font-weight: 600; margin-bottom: 16px; }
.verdict.ok { background: #e3f4ea; color: var(--ok); border: 1px solid #b5e0c5; }
.verdict.bad { background: #fdecea; color: var(--bad); border: 1px solid #f5c2be; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 14px; }
.card h3 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute); }
.card table { width: 100%; }
.card td { padding: 1px 0; }
.card td.n { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
.zero { color: #a3a9b5; font-weight: 400 !important; }
.big { font-size: 26px; font-weight: 700; }
table.list { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde1e7; }
table.list th, table.list td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eceef2; vertical-align: top; }
table.list th { background: #f0f2f5; font-weight: 600; }
td.key { width: 42%; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.st { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.st.valid { background: #e3f4ea; color: var(--ok); }
.st.bad { background: #fdecea; color: var(--bad); }
.st.miss { background: #fff3e0; color: #a65c00; }
.tl { overflow-x: auto; background: #fff; border: 1px solid #dde1e7; padding: 10px; }
.tl table { border-collapse: separate; border-spacing: 1px; }
.tl th { font-weight: 400; color: var(--mute); font-size: 11px; text-align: left; white-space: nowrap; padding-right: 8px; }
.tl th.day { text-align: left; border-left: 2px solid #9aa3b2; padding-left: 2px; }
.tl td { width: 9px; height: 16px; padding: 0; }
.tl td.d0 { border-left: 2px solid #9aa3b2; }
.c-valid { background: var(--ok); }
.c-invalid { background: var(--bad); }
.c-missing { background: var(--miss); }
.c-none { background: var(--none); }
.legend span { display: inline-block; margin-right: 14px; color: var(--mute); }
.legend i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--mute); }
footer { color: var(--mute); margin-top: 28px; font-size: 12px; }
"#;

fn status_badge(s: Integrity) -> String {
    let class = match s {
        Integrity::Valid => "valid",
        Integrity::NotInDigest | Integrity::NotFound => "miss",
        _ => "bad",
    };
    format!(r#"<span class="st {class}">{}</span>"#, s.as_str())
}

/// A summary card: a headline number (the total when `None`) and a count per line.
fn counts_card(title: &str, headline: Option<u64>, rows: &[(String, u64)]) -> String {
    let total: u64 = headline.unwrap_or_else(|| rows.iter().map(|r| r.1).sum());
    let mut o = format!(
        r#"<div class="card"><h3>{}</h3><div class="big">{total}</div><table>"#,
        esc(title)
    );
    for (name, n) in rows {
        let zero = if *n == 0 { " zero" } else { "" };
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td class="n{zero}">{n}</td></tr>"#,
            esc(name)
        );
    }
    o.push_str("</table></div>");
    o
}

fn html(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>CTS integrity report {} to {}</title><style>{CSS}</style></head><body><main>"#,
        esc(&s.window_requested.from),
        esc(&s.window_requested.to)
    );
    let _ = write!(o, "<h1>CTS integrity report</h1>");
    let found = match &s.window_found {
        Some(w) => format!("{} to {}", esc(&w.from), esc(&w.to)),
        None => "no digests".into(),
    };
    let _ = write!(
        o,
        r#"<p class="meta">Source <b>{}</b> · window {} to {} · digests found covering {}</p>"#,
        esc(&r.source),
        esc(&s.window_requested.from),
        esc(&s.window_requested.to),
        found
    );
    let _ = write!(
        o,
        r#"<div class="verdict {}">{}</div>"#,
        if s.all_valid { "ok" } else { "bad" },
        esc(&verdict(r))
    );

    // Summary cards.
    o.push_str(r#"<div class="cards">"#);
    o.push_str(&counts_card(
        "Digests",
        None,
        &count_line(&s.digests, &Integrity::DIGEST),
    ));
    o.push_str(&counts_card(
        "Trace files",
        None,
        &count_line(&s.trace_files, &Integrity::TRACE),
    ));
    o.push_str(&counts_card(
        "Gaps in the chain",
        Some(s.gaps),
        &[
            ("gaps".to_owned(), s.gaps),
            ("hours without a digest".to_owned(), s.missing_hours),
            ("unreadable objects".to_owned(), s.errors),
            ("too recent to judge".to_owned(), s.pending_trace_files),
        ],
    ));
    o.push_str("</div>");

    // Problems first.
    let p = problems(r);
    if !p.is_empty() {
        let _ = write!(
            o,
            r#"<h2>Problems ({})</h2><table class="list"><tr><th>kind</th><th>status</th><th>key</th><th>detail</th></tr>"#,
            p.len()
        );
        for f in p {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td>{}</td><td class="key">{}</td><td>{}</td></tr>"#,
                kind_name(f.kind),
                status_badge(f.status),
                esc(&f.key),
                esc(&f.detail)
            );
        }
        o.push_str("</table>");
    }
    if !r.gaps.is_empty() {
        let _ = write!(
            o,
            r#"<h2>Gaps ({})</h2><table class="list"><tr><th>region</th><th>tracker</th><th>service</th><th>from</th><th>to</th><th>hours</th></tr>"#,
            r.gaps.len()
        );
        for g in &r.gaps {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.region),
                esc(&g.tracker),
                esc(&g.service),
                esc(&g.from),
                esc(&g.to),
                g.hours
            );
        }
        o.push_str("</table>");
    }
    if !r.errors.is_empty() {
        let _ = write!(
            o,
            r#"<h2>Unreadable ({})</h2><table class="list"><tr><th>key</th><th>reason</th></tr>"#,
            r.errors.len()
        );
        for e in &r.errors {
            let _ = write!(
                o,
                r#"<tr><td class="key">{}</td><td>{}</td></tr>"#,
                esc(&e.key),
                esc(&e.reason)
            );
        }
        o.push_str("</table>");
    }

    timeline(&mut o, r);

    let valid: Vec<&FileEntry> = r
        .files
        .iter()
        .filter(|f| f.status == Integrity::Valid)
        .collect();
    if !valid.is_empty() {
        let _ = write!(
            o,
            r#"<h2>Valid files ({})</h2><details><summary>Show all</summary><table class="list"><tr><th>kind</th><th>key</th><th>detail</th></tr>"#,
            valid.len()
        );
        for f in valid {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="key">{}</td><td>{}</td></tr>"#,
                kind_name(f.kind),
                esc(&f.key),
                esc(&f.detail)
            );
        }
        o.push_str("</table></details>");
    }
    let _ = writeln!(
        o,
        "<footer>Generated by ctsguard {} verify. Hashes are MD5 of the stored bytes; signatures SHA256withRSA over the CTS signed message.</footer></main></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    o
}

/// One row per chain, one cell per hour; a thicker line where a day starts.
fn timeline(o: &mut String, r: &Report) {
    let tl = &r.timeline;
    if tl.hours.is_empty() || tl.rows.is_empty() {
        return;
    }
    let _ = write!(
        o,
        r#"<h2>Timeline (UTC, one cell per hour)</h2><div class="legend"><span><i class="c-valid"></i>valid</span><span><i class="c-invalid"></i>invalid</span><span><i class="c-missing"></i>missing digest</span><span><i class="c-none"></i>not expected (before the chain started, or too recent)</span></div><div class="tl"><table><tr><th></th>"#
    );
    // Day labels spanning their hours.
    let mut i = 0;
    while i < tl.hours.len() {
        let day = tl.hours[i].date_naive();
        let n = tl.hours[i..]
            .iter()
            .take_while(|h| h.date_naive() == day)
            .count();
        let _ = write!(o, r#"<th class="day" colspan="{n}">{day}</th>"#);
        i += n;
    }
    o.push_str("</tr>");
    for row in &tl.rows {
        let label = row
            .chain
            .as_ref()
            .map(|c| {
                if c.service.is_empty() {
                    format!("{} / {}", c.region, c.tracker)
                } else {
                    format!("{} / {} / {}", c.region, c.tracker, c.service)
                }
            })
            .unwrap_or_default();
        let _ = write!(o, "<tr><th>{}</th>", esc(&label));
        for (h, cell) in tl.hours.iter().zip(&row.cells) {
            let class = match cell {
                Cell::Valid => "c-valid",
                Cell::Invalid => "c-invalid",
                Cell::Missing => "c-missing",
                Cell::None => "c-none",
            };
            let day_start = if h.hour() == 0 { " d0" } else { "" };
            let what = match cell {
                Cell::Valid => "valid",
                Cell::Invalid => "invalid",
                Cell::Missing => "missing digest",
                Cell::None => "not expected",
            };
            let _ = write!(
                o,
                r#"<td class="{class}{day_start}" title="{} {:02}:00 {what}"></td>"#,
                h.date_naive(),
                h.hour()
            );
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
