//! Which trace files can hold a trace the rule matches, told without parsing them.
//!
//! The rule looks at a trace's `trace_name`: one of the watched actions, ASCII
//! case-insensitively ([`crate::detect::Rule`]). In the JSON text that value is the action
//! between quotes, unless a `\u` escape writes part of it: the other escapes (`\"`, `\\`, `\/`
//! and control characters) stand for characters an action screened here does not have. So a
//! file whose text holds neither `"<action>"` in any ASCII case nor `\u` anywhere holds no
//! trace the rule matches, whatever its shape, and need not be parsed. Looking for those is one
//! vectorised pass over the bytes (about 11 GB/s per core with SSE2, several times faster
//! than parsing); files that pass it are parsed as before.
//!
//! The screen only ever lets a file through to the parser: a false hit (`"Login"` as some other
//! field's value) costs a parse, never an alarm. An action with a character that JSON may write
//! with a short escape (`"`, `\`, `/`, control characters) or an empty one turns the screen off.

/// Which trace files are parsed (`--parse`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParseMode {
    /// Every file: malformed JSON anywhere is reported and every trace is counted. The
    /// default, because a file that cannot be read must be reported whatever it holds.
    #[default]
    All,
    /// Only files whose text may hold a watched action; the others are inflated (so their
    /// gzip checksums are checked) and checked for JSON framing, not parsed.
    Candidates,
}

impl std::str::FromStr for ParseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "candidates" => Ok(ParseMode::Candidates),
            "all" => Ok(ParseMode::All),
            other => Err(format!("{other:?} is not candidates or all")),
        }
    }
}

/// The watched actions, as the screen looks for them.
#[derive(Debug, Clone)]
pub struct ActionScreen {
    /// The actions in lower case, without duplicates.
    actions: Vec<Vec<u8>>,
    /// The distinct (first byte, length) pairs of the actions, which the vector loop tests.
    heads: Vec<Head>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// First byte of the action, lower case.
    first: u8,
    /// Whether `first` is an ASCII letter (compared in either case).
    letter: bool,
    len: usize,
}

impl ActionScreen {
    /// The screen for `actions`, or `None` when one of them cannot be screened (see the
    /// module's documentation): then every file has to be parsed.
    pub fn new(actions: &[String]) -> Option<Self> {
        let mut lower: Vec<Vec<u8>> = Vec::new();
        for a in actions {
            let bytes = a.as_bytes();
            if bytes.is_empty() || bytes.iter().any(|&b| b < 0x20 || b"\"\\/".contains(&b)) {
                return None;
            }
            let a = bytes.to_ascii_lowercase();
            if !lower.contains(&a) {
                lower.push(a);
            }
        }
        if lower.is_empty() {
            return None;
        }
        let mut heads: Vec<Head> = Vec::new();
        for a in &lower {
            let head = Head {
                first: a[0],
                letter: a[0].is_ascii_lowercase(),
                len: a.len(),
            };
            if !heads.contains(&head) {
                heads.push(head);
            }
        }
        Some(ActionScreen {
            actions: lower,
            heads,
        })
    }

    /// Whether `json` may hold a trace whose `trace_name` is a watched action: it holds one of
    /// them between quotes, or a `\u` escape.
    pub fn may_match(&self, json: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.may_match_sse2(json);
        #[cfg(not(target_arch = "x86_64"))]
        self.may_match_scalar(json, 0)
    }

    /// What [`Self::may_match`] decides, from `from` on, a quote or backslash at a time.
    fn may_match_scalar(&self, json: &[u8], from: usize) -> bool {
        let rest = json.get(from..).unwrap_or_default();
        memchr::memchr2_iter(b'"', b'\\', rest).any(|i| self.hit_at(json, from + i))
    }

    /// Whether a watched action between quotes, or a `\u` escape, starts at `at`.
    fn hit_at(&self, json: &[u8], at: usize) -> bool {
        match json.get(at) {
            Some(b'"') => self.actions.iter().any(|a| {
                let end = at + 1 + a.len();
                json.get(end) == Some(&b'"') && json[at + 1..end].eq_ignore_ascii_case(a)
            }),
            Some(b'\\') => json.get(at + 1) == Some(&b'u'),
            _ => false,
        }
    }

    /// [`Self::may_match`] 16 positions at a time. A position is a candidate when it holds a
    /// quote, the next byte is an action's first (in either case) and the byte after the
    /// action's length is a quote, or when it holds `\u`; candidates are confirmed with
    /// [`Self::hit_at`]. Three compares narrow the positions so far that confirming is rare.
    ///
    /// SSE2, which every x86_64 CPU has, rather than AVX2: on the benchmark machine a 32-byte
    /// AVX2 loop screened faster on its own, yet slowed the inflating around it so much that
    /// the run took longer (BENCHMARKS.md, 2026-12-02).
    #[cfg(target_arch = "x86_64")]
    fn may_match_sse2(&self, json: &[u8]) -> bool {
        // With the heads in a fixed-size array the loop over them unrolls and their vectors
        // stay in registers; the default actions have two heads.
        match self.heads.as_slice() {
            [a] => self.scan_sse2([*a], json),
            [a, b] => self.scan_sse2([*a, *b], json),
            [a, b, c] => self.scan_sse2([*a, *b, *c], json),
            [a, b, c, d] => self.scan_sse2([*a, *b, *c, *d], json),
            // More than four: four at a time, each group a pass over `json`.
            more => more.chunks(4).any(|group| {
                let mut four = [group[0]; 4];
                four[..group.len()].copy_from_slice(group);
                self.scan_sse2(four, json)
            }),
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn scan_sse2<const N: usize>(&self, heads: [Head; N], json: &[u8]) -> bool {
        use std::arch::x86_64::*;
        const LANES: usize = 16;
        // SAFETY (all intrinsics here): SSE2 is part of x86_64.
        let splat = |b: u8| unsafe { _mm_set1_epi8(b as i8) };
        let (quote, backslash, u) = (splat(b'"'), splat(b'\\'), splat(b'u'));
        // Per head: its first byte, and the bit that folds case (set for letters only).
        let firsts = heads.map(|h| splat(h.first));
        let folds = heads.map(|h| splat(if h.letter { 0x20 } else { 0 }));
        let reach = heads.iter().map(|h| h.len + 1).max().unwrap_or(1);
        let mut i = 0;
        while i + LANES + reach <= json.len() {
            // SAFETY: `i + LANES + reach <= len`, and no load starts more than `reach` bytes
            // after `i`: every load is inside `json`.
            let mut mask = unsafe {
                let p = json.as_ptr().add(i);
                let at = |k: usize| _mm_loadu_si128(p.add(k).cast::<__m128i>());
                let (here, next) = (at(0), at(1));
                let quoted = _mm_cmpeq_epi8(here, quote);
                let mut hits =
                    _mm_and_si128(_mm_cmpeq_epi8(here, backslash), _mm_cmpeq_epi8(next, u));
                for k in 0..N {
                    let starts = _mm_cmpeq_epi8(_mm_or_si128(next, folds[k]), firsts[k]);
                    let closes = _mm_cmpeq_epi8(at(1 + heads[k].len), quote);
                    let head = _mm_and_si128(quoted, _mm_and_si128(starts, closes));
                    hits = _mm_or_si128(hits, head);
                }
                _mm_movemask_epi8(hits) as u32
            };
            while mask != 0 {
                if self.hit_at(json, i + mask.trailing_zeros() as usize) {
                    return true;
                }
                mask &= mask - 1;
            }
            i += LANES;
        }
        self.may_match_scalar(json, i)
    }
}

/// Whether `json` opens and closes like a list of traces (`[` … `]`) or objects (`{` … `}`,
/// newline-delimited or not): what a file the screen lets pass unparsed must at least do. A
/// truncated or foreign file fails this, and is then parsed, which reports what is wrong.
pub fn framed(json: &[u8]) -> bool {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let first = json.iter().find(|b| !ws(b));
    let last = json.iter().rfind(|b| !ws(b));
    matches!(
        (first, last),
        (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}'))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(actions: &[&str]) -> ActionScreen {
        let actions: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
        ActionScreen::new(&actions).expect("screenable actions")
    }

    /// Both ways of deciding, which must agree everywhere.
    fn both(s: &ActionScreen, json: &[u8]) -> bool {
        let fast = s.may_match(json);
        assert_eq!(
            fast,
            s.may_match_scalar(json, 0),
            "vector and scalar disagree"
        );
        fast
    }

    /// Filler that looks like trace JSON but holds no candidate.
    fn filler(n: usize) -> Vec<u8> {
        let unit =
            br#"{"trace_name":"logins","user":{"name":"log"},"x":"Login ","y":"\"login\""},"#;
        unit.iter().copied().cycle().take(n).collect()
    }

    #[test]
    fn finds_the_actions_between_quotes_in_any_case() {
        let s = screen(&["login", "logout"]);
        for hit in [r#""login""#, r#""LOGIN""#, r#""LogOut""#, r#""logout""#] {
            let mut json = filler(300);
            json.extend_from_slice(hit.as_bytes());
            json.extend(filler(300));
            assert!(both(&s, &json), "{hit} not found");
        }
        for miss in [
            r#""loginFailed""#,
            r#""login "#,
            r#"login""#,
            r#""logi""#,
            r#"'login'"#,
        ] {
            let mut json = filler(300);
            json.extend_from_slice(miss.as_bytes());
            json.extend(filler(300));
            assert!(!both(&s, &json), "{miss} taken for an action");
        }
    }

    #[test]
    fn a_unicode_escape_anywhere_makes_the_file_a_candidate() {
        let s = screen(&["login"]);
        // `\u006cogin` is "login" once decoded: it must reach the parser.
        for text in [r#""\u006cogin""#, r#""caf\u00e9""#] {
            let mut json = filler(100);
            json.extend_from_slice(text.as_bytes());
            assert!(both(&s, &json), "{text}");
        }
        let escaped_other = br#"{"a":"\n\t\\ \/ \" "}"#;
        assert!(!both(&s, escaped_other));
    }

    /// Every position of the needle and every length of the tail: the vector loop, its
    /// confirmation and the scalar rest must not miss one at a lane or loop boundary.
    #[test]
    fn no_position_is_missed() {
        // One to four heads (first byte, length): each an instance of the vector loop.
        let sets: [&[&str]; 4] = [
            &["login"],
            &["login", "logout"],
            &["login", "logout", "q"],
            &["login", "q", "Zed", "2fa"],
        ];
        for actions in sets {
            let s = screen(actions);
            for len in [
                0usize, 1, 7, 8, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 129,
            ] {
                let base = filler(len);
                assert!(!both(&s, &base), "filler of {len} bytes");
                let quoted = actions.iter().map(|a| format!("\"{}\"", a.to_uppercase()));
                for needle in quoted.chain([r"\u".to_owned()]) {
                    for at in 0..=len {
                        let mut json = base.clone();
                        json.splice(at..at, needle.bytes());
                        assert!(both(&s, &json), "{needle} at {at} of {len} for {actions:?}");
                    }
                }
            }
        }
    }

    /// More actions than the vector loop tests in one pass (four heads).
    #[test]
    fn many_actions() {
        let actions = [
            "login",
            "logout",
            "createUser",
            "deleteUser",
            "mfa",
            "a2",
            "zz-top",
        ];
        let s = screen(&actions);
        assert!(!both(&s, &filler(500)));
        for a in actions {
            for at in [0, 1, 31, 32, 33, 250, 499] {
                let mut json = filler(500);
                let quoted = format!("\"{}\"", a.to_uppercase());
                json.splice(at..at, quoted.bytes());
                assert!(both(&s, &json), "{a} at {at}");
            }
        }
    }

    #[test]
    fn actions_with_other_first_bytes_and_lengths() {
        let s = screen(&["ConsoleLogin", "2fa-check", "é-login"]);
        assert!(both(&s, br#"[{"trace_name":"consolelogin"}]"#));
        assert!(both(&s, br#"[{"trace_name":"2FA-CHECK"}]"#));
        assert!(both(&s, "[{\"trace_name\":\"é-LOGIN\"}]".as_bytes()));
        // Only ASCII letters fold, as the rule compares them.
        assert!(!both(&s, "[{\"trace_name\":\"É-login\"}]".as_bytes()));
        assert!(!both(&s, br#"[{"trace_name":"1fa-check"}]"#));
    }

    #[test]
    fn actions_a_short_escape_could_write_turn_the_screen_off() {
        for bad in ["a/b", "say\"hi", "back\\slash", "tab\tbed", ""] {
            assert!(ActionScreen::new(&[bad.to_owned()]).is_none(), "{bad:?}");
        }
        assert!(ActionScreen::new(&[]).is_none());
    }

    #[test]
    fn framing() {
        assert!(framed(b" [ {} ]\n"));
        assert!(framed(b"{\"a\":1}\n{\"a\":2}\n"));
        assert!(!framed(b"[{\"a\":1},"));
        assert!(!framed(b"[{\"a\":1}"));
        assert!(!framed(b"[{\"a\":1}]\n{\"a\":2}"));
        assert!(!framed(b"<html></html>"));
        assert!(!framed(b""));
        assert!(!framed(b" \n"));
        assert!(!framed(b"\"text\""));
    }
}
