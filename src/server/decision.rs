//! From an evaluation to an admission decision: allowed or denied, the patch, warnings and
//! audit annotations. Pure: no I/O, no clock, no metrics.
//!
//! Which endpoint reports what. The Helm chart registers a mutating webhook (`/mutate`) and a
//! validating webhook (`/validate`) for the same objects, so every finding reaches both. Each
//! finding is reported by exactly one of them, or kubectl would print every warning twice and
//! metrics would count it twice:
//! - `/mutate` owns findings whose enforce action is `mutate`. In enforce mode it sends the
//!   planner's patch (if any) and never denies; until the fix is available it allows with a
//!   warning.
//! - `/validate` owns `deny` and `warn` findings (including a `mutate` that fell back to
//!   `warn`). It never patches; in enforce mode it denies when any finding's action is `deny`.
//!   It runs after the mutating webhooks, so findings a patch fixed are gone by then.
//! - In audit mode neither denies nor patches: every owned finding becomes a warning and an
//!   audit annotation saying what enforce mode would do; the mutate path adds the patch JSON.
//!
//! Where fixes land (DESIGN section 5.1) moves the `mutate` findings: an object pidone does not
//! patch itself ([`FixSite::Pods`]: an ownerless workload without `mutations.workloads`, or
//! any workload UPDATE) has them reported by `/validate`, saying that its Pods are fixed when
//! they are created. The chart calls `/mutate` for Pods only by default, so `/validate` is the
//! one webhook that sees such workloads. Objects with a controller owner never reach this
//! module's findings at all (see [`Decision::controlled`]).

use crate::engine::evaluate::Words;
use crate::engine::{Action, Evaluation, Finding, Mode, RuleId};
use crate::server::review::Status;
use json_patch::PatchOperation;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// The longest warning pidone sends (the apiserver's advice for kubectl output).
pub const MAX_WARNING_LEN: usize = 120;
/// The apiserver's budget for all warnings of one response, in bytes.
pub const WARNINGS_BUDGET: usize = 4096;
/// The longest audit annotation key the apiserver keeps.
pub const MAX_ANNOTATION_KEY_LEN: usize = 63;
/// The audit annotation that carries the patch on the mutate path.
pub const PATCH_ANNOTATION: &str = "patch";
/// The audit annotation on an object left alone because a controller manages it.
pub const CONTROLLED_ANNOTATION: &str = "controlled-by";

/// Which webhook was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }

    /// Which findings its evaluation words: those it may report (see [`Endpoint::owns`];
    /// a finding's action only falls during an evaluation, never to `mutate`).
    pub fn words(self) -> Words {
        match self {
            Endpoint::Mutate => Words::MutateOnly,
            Endpoint::Validate => Words::All,
        }
    }

    /// Whether this endpoint reports findings with this enforce action, on an object whose
    /// fixes land at `site`.
    pub fn owns(self, action: Action, site: FixSite) -> bool {
        match (self, action) {
            (Endpoint::Mutate, Action::Mutate) => site == FixSite::Here,
            (Endpoint::Validate, Action::Mutate) => site == FixSite::Pods,
            (Endpoint::Validate, Action::Deny | Action::Warn) => true,
            _ => false,
        }
    }
}

/// Where the fixes for an object land (DESIGN section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixSite {
    /// The mutate path patches the object itself: Pods, and ownerless workloads on CREATE
    /// with `mutations.workloads: true`.
    Here,
    /// The object is left as written; its Pods are fixed when they are created.
    Pods,
}

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed untouched, nothing to say.
    Allowed,
    /// Allowed with warnings.
    Warned,
    /// Allowed with a patch.
    Patched,
    /// Denied because of findings.
    Denied,
    /// Denied because the review or the object could not be read.
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Warned => "warned",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub status: Option<Status>,
    /// Empty: no patch.
    pub patch: Vec<PatchOperation>,
    /// `patch` as JSON text, written once for the response and the audit annotation (empty
    /// with no patch).
    pub patch_json: String,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    pub outcome: Outcome,
}

impl Decision {
    /// Allowed untouched.
    pub fn allow() -> Decision {
        Decision {
            allowed: true,
            status: None,
            patch: Vec::new(),
            patch_json: String::new(),
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            outcome: Outcome::Allowed,
        }
    }

    /// A review pidone cannot read: denied with 400 whatever the mode (the failurePolicy of a
    /// webhook that cannot answer is the cluster's call, not ours; a malformed review is not
    /// something the apiserver sends).
    pub fn invalid_review(message: &str) -> Decision {
        Decision {
            allowed: false,
            status: Some(Status {
                code: 400,
                reason: "BadRequest",
                message: one_line(&format!(
                    "pidone could not read the AdmissionReview: {message}"
                )),
            }),
            outcome: Outcome::Invalid,
            ..Decision::allow()
        }
    }

    /// An object a controller manages (an `ownerReferences` entry with `controller: true`) that
    /// is not a Pod: never patched, never denied (DESIGN section 5.1). Its controller compares
    /// it with its own template (a patched ReplicaSet looks like a hash collision to the
    /// Deployment controller, which then creates another one, forever); its owner was judged
    /// when it was applied and its Pods are judged when they are created. Only an audit
    /// annotation says why nothing was checked.
    pub fn controlled(controller: &str) -> Decision {
        Decision {
            audit_annotations: BTreeMap::from([(
                CONTROLLED_ANNOTATION.to_string(),
                one_line(&format!(
                    "not checked: managed by {controller}, which was checked when it was applied; \
                     pidone checks and fixes its Pods when they are created"
                )),
            )]),
            ..Decision::allow()
        }
    }

    /// The mirror of a static Pod: never patched, never denied. The kubelet runs the
    /// manifest file on its node; the API object only shows it (a patch would claim a fix that
    /// never runs, a denial would only hide the pod). `pidone audit` on the manifest files is
    /// where static Pods are checked.
    pub fn mirror_pod() -> Decision {
        Decision {
            audit_annotations: BTreeMap::from([(
                CONTROLLED_ANNOTATION.to_string(),
                "not checked: the mirror of a static Pod, which the kubelet runs from a file on \
                 its node; run `pidone audit` on that file"
                    .to_string(),
            )]),
            ..Decision::allow()
        }
    }

    /// An object pidone cannot analyse (a field of the wrong type, a missing pod spec). The
    /// apiserver decodes objects before admission, so this means a client or another webhook
    /// sent something odd: enforce denies with 400, audit allows with a warning, off allows.
    pub fn malformed_object(mode: Mode, message: &str) -> Decision {
        let text = format!("pidone could not analyse the object: {message}");
        match mode {
            Mode::Off => Decision::allow(),
            Mode::Audit => Decision {
                warnings: vec![clip(format!("(audit) {text}"))],
                audit_annotations: BTreeMap::from([(
                    "malformed-object".to_string(),
                    format!("would deny: {}", one_line(message)),
                )]),
                outcome: Outcome::Warned,
                ..Decision::allow()
            },
            Mode::Enforce => Decision {
                allowed: false,
                status: Some(Status {
                    code: 400,
                    reason: "BadRequest",
                    message: one_line(&text),
                }),
                outcome: Outcome::Invalid,
                ..Decision::allow()
            },
        }
    }
}

/// Decides one evaluated object. `patch` is the planner's patch for the whole object (only
/// used on the mutate path; empty when no fix is available).
pub fn decide(
    endpoint: Endpoint,
    mode: Mode,
    eval: &Evaluation,
    patch: Vec<PatchOperation>,
) -> Decision {
    decide_with_notes(endpoint, mode, FixSite::Here, eval, patch, &[])
}

/// [`decide`] for an object whose fixes land at `site`, plus the planner's notes on fixes it
/// could not apply (a container with no command to prefix, no init image configured), shown
/// as warnings on the mutate path.
pub fn decide_with_notes(
    endpoint: Endpoint,
    mode: Mode,
    site: FixSite,
    eval: &Evaluation,
    patch: Vec<PatchOperation>,
    notes: &[String],
) -> Decision {
    decide_with_all_notes(endpoint, mode, site, eval, patch, notes, &[])
}

/// [`decide_with_notes`], with notes about the evaluation's inputs too (ConfigMap scripts
/// that could not be read): those go with the `deny` and `warn` findings they may hide, to
/// `/validate`, first, so that the budget never drops them.
pub fn decide_with_all_notes(
    endpoint: Endpoint,
    mode: Mode,
    site: FixSite,
    eval: &Evaluation,
    patch: Vec<PatchOperation>,
    notes: &[String],
    input_notes: &[String],
) -> Decision {
    if mode == Mode::Off || eval.exempt {
        return Decision::allow();
    }
    let owned: Vec<&Finding> = eval
        .findings
        .iter()
        .filter(|f| endpoint.owns(f.action, site))
        .collect();
    let patch = if endpoint == Endpoint::Mutate && site == FixSite::Here {
        patch
    } else {
        Vec::new()
    };
    let patched = !patch.is_empty();
    let mut decision = Decision::allow();

    let mut warnings = Vec::new();
    if endpoint.owns(Action::Deny, site) {
        for note in input_notes {
            warnings.push(warning(&["pidone"], note));
        }
    }
    let mut denials = Vec::new();
    let mut next_suffix = HashMap::new();
    for f in &owned {
        let verb = verb(mode, f, site, patched);
        let key = annotation_key_from(
            f.rule,
            &f.container,
            &decision.audit_annotations,
            &mut next_suffix,
        );
        // Written piece by piece (one allocation, no formatting machinery): one per finding
        // of every review.
        let (why_open, why, why_close) = match f.fallback.as_deref() {
            Some(why) => (" Not fixed automatically: ", why, "."),
            None => ("", "", ""),
        };
        decision.audit_annotations.insert(
            key,
            into_one_line(
                [
                    verb,
                    ": ",
                    &f.message,
                    ". Fix: ",
                    &f.fix,
                    ".",
                    why_open,
                    why,
                    why_close,
                    " See `pidone explain ",
                    f.rule.as_str(),
                    "`.",
                ]
                .concat(),
            ),
        );
        let rule = f.rule.as_str();
        match (mode, f.action) {
            (Mode::Enforce, Action::Deny) => denials.push(*f),
            (Mode::Enforce, Action::Mutate) if site == FixSite::Pods => {
                warnings.push(warning(&[rule, " (fixed in its Pods)"], &f.message));
            }
            (Mode::Audit, Action::Mutate) if site == FixSite::Pods => {
                warnings.push(warning(&[rule, " (audit: would fix its Pods)"], &f.message));
            }
            (Mode::Enforce, Action::Mutate) if patched => {
                warnings.push(warning(&[rule, " (patched)"], &f.message));
            }
            (Mode::Enforce, _) => warnings.push(warning(&[rule], &f.message)),
            (_, action) => warnings.push(warning(
                &[rule, " (audit: would ", action.as_str(), ")"],
                &f.message,
            )),
        }
    }
    // Notes (fixes the planner could not apply, image look-ups that failed) go with the
    // `mutate` findings, to whichever endpoint reports those.
    if endpoint.owns(Action::Mutate, site) {
        for note in notes {
            warnings.push(warning(&["pidone"], note));
        }
    }
    decision.warnings = within_budget(warnings);

    if patched {
        match serde_json::to_string(&patch) {
            Ok(json) => {
                if mode == Mode::Enforce {
                    decision.patch_json.clone_from(&json);
                }
                decision
                    .audit_annotations
                    .insert(PATCH_ANNOTATION.to_string(), json);
            }
            Err(e) => {
                decision
                    .audit_annotations
                    .insert(PATCH_ANNOTATION.to_string(), format!("unprintable: {e}"));
            }
        }
        if mode == Mode::Enforce {
            decision.patch = patch;
        }
    }

    if !denials.is_empty() {
        decision.allowed = false;
        decision.status = Some(Status {
            code: 403,
            reason: "Forbidden",
            message: denial_message(eval, &denials),
        });
    }
    decision.outcome = if !decision.allowed {
        Outcome::Denied
    } else if !decision.patch.is_empty() {
        Outcome::Patched
    } else if !decision.warnings.is_empty() {
        Outcome::Warned
    } else {
        Outcome::Allowed
    };
    decision
}

/// What the audit annotation says pidone did (enforce) or would do (audit).
fn verb(mode: Mode, f: &Finding, site: FixSite, patched: bool) -> &'static str {
    match (mode, f.action) {
        (Mode::Enforce, Action::Mutate) if site == FixSite::Pods => {
            "left as written (its Pods are fixed when they are created)"
        }
        (_, Action::Mutate) if site == FixSite::Pods => {
            "would leave it as written and fix its Pods when they are created"
        }
        (Mode::Enforce, Action::Deny) => "denied",
        (Mode::Enforce, Action::Mutate) if patched => "mutated",
        (Mode::Enforce, Action::Mutate) => "warned (no automatic fix applied)",
        (Mode::Enforce, _) => "warned",
        (_, Action::Deny) => "would deny",
        (_, Action::Mutate) if patched => "would mutate (see the patch annotation)",
        (_, Action::Mutate) => "would warn (no automatic fix available)",
        (_, _) => "would warn",
    }
}

/// `pidone denied Deployment shop/api: [multi-process] container "app": ... Fix: ... See ...`
fn denial_message(eval: &Evaluation, denials: &[&Finding]) -> String {
    let o = &eval.object;
    let mut text = String::with_capacity(256);
    let _ = write!(text, "pidone denied {} ", o.kind);
    if let Some(ns) = &o.namespace {
        let _ = write!(text, "{ns}/");
    }
    let _ = write!(
        text,
        "{}:",
        if o.name.is_empty() {
            "(unnamed)"
        } else {
            &o.name
        }
    );
    for (i, f) in denials.iter().enumerate() {
        if denials.len() > 1 {
            let _ = write!(text, " ({})", i + 1);
        }
        let _ = write!(
            text,
            " [{}] {}. Fix: {}. See `pidone explain {}`.",
            f.rule, f.message, f.fix, f.rule
        );
    }
    one_line(&text)
}

/// One warning: no control characters, at most [`MAX_WARNING_LEN`] bytes.
fn warning(prefix: &[&str], message: &str) -> String {
    let mut text =
        String::with_capacity(prefix.iter().map(|p| p.len()).sum::<usize>() + 2 + message.len());
    for p in prefix {
        text.push_str(p);
    }
    text.push_str(": ");
    text.push_str(message);
    clip(text)
}

fn clip(text: String) -> String {
    let mut text = into_one_line(text);
    if text.len() <= MAX_WARNING_LEN {
        return text;
    }
    let mut end = MAX_WARNING_LEN - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = text[..end].trim_end().len();
    text.truncate(kept);
    text.push_str("...");
    text
}

/// [`one_line`] of an owned text, which is kept when it is one line already.
pub fn into_one_line(text: String) -> String {
    if is_one_line(&text) {
        text
    } else {
        one_line(&text)
    }
}

/// Replaces control characters (newlines, tabs, escapes) with spaces and collapses runs of
/// spaces, so the text is one line.
pub fn one_line(text: &str) -> String {
    if is_one_line(text) {
        return text.to_string();
    }
    // Most texts are ASCII (a script's lines): folded byte by byte.
    if text.is_ascii() {
        let mut out = String::with_capacity(text.len());
        let mut space = false;
        for &b in text.as_bytes() {
            if b.is_ascii_whitespace() || b.is_ascii_control() {
                space = !out.is_empty();
            } else {
                if space {
                    out.push(' ');
                    space = false;
                }
                out.push(char::from(b));
            }
        }
        return out;
    }
    folded_by_char(text)
}

/// [`one_line`] for any text.
fn folded_by_char(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Printable ASCII without a space at either end or two in a row: [`one_line`] of it is
/// itself. Eight bytes at a time: most messages are such lines, and long.
fn is_one_line(text: &str) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7f;
    // The high bit of each byte of `w` equal to `byte` (exact: no carry crosses bytes).
    let equal = |w: u64, byte: u8| {
        let x = w ^ (ONES * u64::from(byte));
        !(((x & LOW7) + LOW7) | x) & HIGHS
    };
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    let (words, rest) = bytes.as_chunks::<8>();
    let mut space_before = false;
    for word in words {
        let w = u64::from_le_bytes(*word);
        let control = !((w & LOW7) + ONES * 0x60) & HIGHS;
        if (control | (w & HIGHS) | equal(w, 0x7f)) != 0 {
            return false;
        }
        let spaces = equal(w, b' ');
        if spaces & (spaces << 8) != 0 || (space_before && spaces & 0x80 != 0) {
            return false;
        }
        space_before = spaces >> 63 != 0;
    }
    for &byte in rest {
        let space = byte == b' ';
        if !(0x20..0x7f).contains(&byte) || (space && space_before) {
            return false;
        }
        space_before = space;
    }
    true
}

/// Keeps warnings within the apiserver's budget; the ones that do not fit are summed up in a
/// final "and N more" warning.
fn within_budget(warnings: Vec<String>) -> Vec<String> {
    let reserve = MAX_WARNING_LEN;
    let mut used = 0;
    let total = warnings.len();
    let mut kept = Vec::with_capacity(total.min(34));
    for w in warnings {
        if used + w.len() > WARNINGS_BUDGET - reserve {
            break;
        }
        used += w.len();
        kept.push(w);
    }
    let dropped = total - kept.len();
    if dropped > 0 {
        kept.push(format!(
            "pidone: and {dropped} more findings; see the audit annotations or run `pidone audit`"
        ));
    }
    kept
}

/// The audit annotation key of a finding: `<rule>.<container>`, made valid for the apiserver
/// (at most 63 characters of `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`, no `/`). A container name
/// that does not fit is cut and ends in 8 hex digits of its hash; a key already taken (two
/// containers with the same name) gets `-2`, `-3`...
pub fn annotation_key(rule: RuleId, container: &str, taken: &BTreeMap<String, String>) -> String {
    annotation_key_from(rule, container, taken, &mut HashMap::new())
}

/// [`annotation_key`], remembering in `next` the suffix to try first for each base key, so
/// that n containers of the same name cost n look-ups, not n²/2.
fn annotation_key_from(
    rule: RuleId,
    container: &str,
    taken: &BTreeMap<String, String>,
    next: &mut HashMap<String, u32>,
) -> String {
    let rule = rule.as_str();
    let mut name: String = container
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    trim_to_alnum(&mut name);
    if name.is_empty() {
        name.push_str("container");
    }
    let room = MAX_ANNOTATION_KEY_LEN - rule.len() - 1;
    if name.len() > room {
        name.truncate(room - 9);
        trim_to_alnum(&mut name);
        let _ = write!(name, "-{:08x}", fnv1a(container.as_bytes()));
    }
    let base = format!("{rule}.{name}");
    if !taken.contains_key(&base) {
        return base;
    }
    let first = next.get(&base).copied().unwrap_or(2);
    for n in first.. {
        let suffix = format!("-{n}");
        let mut key = base.clone();
        key.truncate(MAX_ANNOTATION_KEY_LEN - suffix.len());
        trim_to_alnum(&mut key);
        key.push_str(&suffix);
        if !taken.contains_key(&key) {
            next.insert(base, n + 1);
            return key;
        }
    }
    base
}

fn trim_to_alnum(s: &mut String) {
    while s.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        s.pop();
    }
    while s.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        s.remove(0);
    }
}

/// FNV-1a, 32 bits: a stable short hash for keys.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The apiserver's rule for audit annotation keys (without the `<webhook>/` prefix it adds).
pub fn valid_annotation_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ANNOTATION_KEY_LEN
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ObjectRef;

    proptest::proptest! {
        #[test]
        fn one_lines_are_found_as_the_fold_finds_them(text in "[ a~!\t\u{1f}\u{7f}\u{80}é]{0,40}") {
            let simple = !text.starts_with(' ')
                && !text.ends_with(' ')
                && text.bytes().all(|b| (0x20..0x7f).contains(&b))
                && !text.contains("  ");
            proptest::prop_assert_eq!(is_one_line(&text), simple);
            if simple {
                proptest::prop_assert_eq!(one_line(&text), text);
            }
        }

        #[test]
        fn ascii_text_folds_as_any_text_does(text in "[ -~\t\n\r\x0b\x0c\x00-\x1f\x7f]{0,40}") {
            proptest::prop_assert_eq!(one_line(&text), folded_by_char(&text));
        }
    }

    #[test]
    fn one_line_folds_whitespace_and_controls() {
        for (text, line) in [
            ("", ""),
            ("a b", "a b"),
            ("  a  b ", "a b"),
            ("a\n\tb\r\n", "a b"),
            ("a\u{7f}b", "a b"),
            ("a\u{a0}b\u{2028}c", "a b c"),
            ("ünïcode stays", "ünïcode stays"),
            (" ", ""),
        ] {
            assert_eq!(one_line(text), line, "{text:?}");
            assert_eq!(
                is_one_line(text),
                text == line && text.is_ascii(),
                "{text:?}"
            );
        }
    }

    fn finding(container: &str, rule: RuleId, action: Action) -> Finding {
        Finding {
            fix: "do the right thing".into(),
            ..Finding::for_test(
                container,
                "/spec/containers/0",
                rule,
                action,
                &format!("container {container:?}: something\nwrong"),
            )
        }
    }

    fn eval(findings: Vec<Finding>) -> Evaluation {
        Evaluation {
            object: ObjectRef {
                kind: "Deployment".into(),
                namespace: Some("shop".into()),
                name: "api".into(),
            },
            template_pointer: "/spec/template",
            containers: Vec::new(),
            findings,
            ignored: Vec::new(),
            suppressed: Vec::new(),
            exempt: false,
            inject_init: false,
            unresolved: Vec::new(),
            env_read: false,
        }
    }

    fn patch() -> Vec<PatchOperation> {
        serde_json::from_str(r#"[{"op":"add","path":"/metadata/annotations","value":{}}]"#).unwrap()
    }

    #[test]
    fn validate_denies_deny_findings_in_enforce_and_warns_the_rest() {
        let e = eval(vec![
            finding("app", RuleId::MultiProcess, Action::Deny),
            finding("app", RuleId::ScriptEntrypoint, Action::Warn),
            finding("app", RuleId::ShellNoExec, Action::Mutate),
        ]);
        let d = decide(Endpoint::Validate, Mode::Enforce, &e, patch());
        assert!(!d.allowed);
        assert_eq!(d.outcome, Outcome::Denied);
        assert!(d.patch.is_empty(), "validate never patches");
        let status = d.status.unwrap();
        assert_eq!(status.code, 403);
        assert!(
            status
                .message
                .starts_with("pidone denied Deployment shop/api:")
        );
        assert!(
            status
                .message
                .contains(r#"[multi-process] container "app": something wrong"#)
        );
        assert!(status.message.contains("Fix: do the right thing"));
        assert!(status.message.contains("`pidone explain multi-process`"));
        assert!(!status.message.contains('\n'));
        assert_eq!(
            d.warnings,
            vec![r#"script-entrypoint: container "app": something wrong"#]
        );
        assert_eq!(
            d.audit_annotations.keys().collect::<Vec<_>>(),
            vec!["multi-process.app", "script-entrypoint.app"]
        );
    }

    #[test]
    fn mutate_never_denies_and_patches_only_in_enforce() {
        let e = eval(vec![
            finding("app", RuleId::MultiProcess, Action::Deny),
            finding("app", RuleId::ShellNoExec, Action::Mutate),
        ]);
        let d = decide(Endpoint::Mutate, Mode::Enforce, &e, patch());
        assert!(d.allowed);
        assert_eq!(d.outcome, Outcome::Patched);
        assert_eq!(d.patch, patch());
        assert_eq!(d.patch_json, serde_json::to_string(&patch()).unwrap());
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].starts_with("shell-no-exec (patched): "));
        assert!(d.audit_annotations["shell-no-exec.app"].starts_with("mutated: "));
        assert!(d.audit_annotations[PATCH_ANNOTATION].contains("/metadata/annotations"));

        let d = decide(Endpoint::Mutate, Mode::Enforce, &e, Vec::new());
        assert!(d.allowed);
        assert_eq!(
            d.outcome,
            Outcome::Warned,
            "no fix yet: allowed with a warning"
        );
        assert!(d.patch.is_empty());
        assert!(d.warnings[0].starts_with("shell-no-exec: "));
        assert!(!d.audit_annotations.contains_key(PATCH_ANNOTATION));
    }

    #[test]
    fn audit_never_denies_or_mutates_and_says_what_enforce_would_do() {
        let e = eval(vec![
            finding("app", RuleId::MultiProcess, Action::Deny),
            finding("app", RuleId::SignalDeafPid1, Action::Warn),
            finding("log-agent", RuleId::SideAgent, Action::Mutate),
        ]);
        let v = decide(Endpoint::Validate, Mode::Audit, &e, Vec::new());
        assert!(v.allowed && v.status.is_none() && v.patch.is_empty());
        assert_eq!(v.warnings.len(), 2);
        assert!(v.warnings[0].starts_with("multi-process (audit: would deny): "));
        assert!(v.audit_annotations["multi-process.app"].starts_with("would deny: "));
        assert!(v.audit_annotations["signal-deaf-pid1.app"].starts_with("would warn: "));

        let m = decide(Endpoint::Mutate, Mode::Audit, &e, patch());
        assert!(m.allowed && m.patch.is_empty());
        assert_eq!(m.outcome, Outcome::Warned);
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].starts_with("side-agent (audit: would mutate): "));
        assert!(m.audit_annotations["side-agent.log-agent"].starts_with("would mutate"));
        let p: serde_json::Value =
            serde_json::from_str(&m.audit_annotations[PATCH_ANNOTATION]).unwrap();
        assert_eq!(p[0]["op"], "add");
    }

    #[test]
    fn fixes_in_pods_are_reported_by_validate_and_never_patched() {
        let e = eval(vec![
            finding("app", RuleId::MultiProcess, Action::Deny),
            finding("app", RuleId::ShellNoExec, Action::Mutate),
        ]);
        let m = decide_with_notes(
            Endpoint::Mutate,
            Mode::Enforce,
            FixSite::Pods,
            &e,
            patch(),
            &["a note".to_string()],
        );
        assert!(m.allowed && m.patch.is_empty(), "{m:?}");
        assert!(
            m.warnings.is_empty() && m.audit_annotations.is_empty(),
            "{m:?}"
        );
        assert_eq!(m.outcome, Outcome::Allowed);

        let v = decide_with_notes(
            Endpoint::Validate,
            Mode::Enforce,
            FixSite::Pods,
            &e,
            Vec::new(),
            &["images could not be looked up".to_string()],
        );
        assert!(!v.allowed, "deny findings still deny the workload");
        assert!(v.patch.is_empty());
        assert_eq!(
            v.warnings,
            vec![
                r#"shell-no-exec (fixed in its Pods): container "app": something wrong"#,
                "pidone: images could not be looked up",
            ]
        );
        assert!(
            v.audit_annotations["shell-no-exec.app"]
                .starts_with("left as written (its Pods are fixed when they are created): ")
        );
        assert!(!v.audit_annotations.contains_key(PATCH_ANNOTATION));

        let a = decide_with_notes(
            Endpoint::Validate,
            Mode::Audit,
            FixSite::Pods,
            &e,
            Vec::new(),
            &[],
        );
        assert!(a.allowed);
        assert!(a.warnings[0].starts_with("multi-process (audit: would deny): "));
        assert!(a.warnings[1].starts_with("shell-no-exec (audit: would fix its Pods): "));
        assert!(a.audit_annotations["shell-no-exec.app"].starts_with("would leave it as written"));
    }

    #[test]
    fn every_finding_is_owned_by_exactly_one_endpoint() {
        for site in [FixSite::Here, FixSite::Pods] {
            for action in [Action::Deny, Action::Mutate, Action::Warn] {
                let owners = [Endpoint::Mutate, Endpoint::Validate]
                    .into_iter()
                    .filter(|e| e.owns(action, site))
                    .count();
                assert_eq!(owners, 1, "{action:?} at {site:?}");
            }
            assert!(!Endpoint::Mutate.owns(Action::Ignore, site));
            assert!(!Endpoint::Validate.owns(Action::Ignore, site));
        }
    }

    #[test]
    fn every_endpoint_words_the_findings_it_owns() {
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            for site in [FixSite::Here, FixSite::Pods] {
                for action in [Action::Deny, Action::Mutate, Action::Warn] {
                    if endpoint.owns(action, site) {
                        assert!(
                            endpoint.words().cover(action),
                            "{endpoint:?} owns {action:?} at {site:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn controlled_objects_are_allowed_untouched_with_a_reason() {
        let d = Decision::controlled("Deployment/web");
        assert!(d.allowed && d.patch.is_empty() && d.warnings.is_empty() && d.status.is_none());
        assert_eq!(d.outcome, Outcome::Allowed);
        let why = &d.audit_annotations[CONTROLLED_ANNOTATION];
        assert!(why.contains("managed by Deployment/web"), "{why}");
        assert!(valid_annotation_key(CONTROLLED_ANNOTATION));
        let m = Decision::mirror_pod();
        assert!(m.allowed && m.patch.is_empty() && m.warnings.is_empty());
        assert!(m.audit_annotations[CONTROLLED_ANNOTATION].contains("static Pod"));
    }

    #[test]
    fn off_and_exempt_allow_untouched() {
        let e = eval(vec![finding("app", RuleId::MultiProcess, Action::Deny)]);
        assert_eq!(
            decide(Endpoint::Validate, Mode::Off, &e, Vec::new()),
            Decision::allow()
        );
        let mut exempt = e.clone();
        exempt.exempt = true;
        assert_eq!(
            decide(Endpoint::Validate, Mode::Enforce, &exempt, Vec::new()),
            Decision::allow()
        );
    }

    #[test]
    fn texts_are_written_as_their_templates_say() {
        let mut f = finding("app", RuleId::ShellNoExec, Action::Mutate);
        f.message = format!("container \"app\": {}\n  tail   ", "w".repeat(100));
        f.fix = "put `exec` first".to_string();
        f.fallback = Some("the command is in a subshell".to_string());
        let d = decide(
            Endpoint::Mutate,
            Mode::Audit,
            &eval(vec![f.clone()]),
            Vec::new(),
        );
        let annotation = one_line(&format!(
            "would warn (no automatic fix available): {}. Fix: {}. Not fixed automatically: {}. See `pidone explain {}`.",
            f.message,
            f.fix,
            f.fallback.as_deref().unwrap(),
            f.rule
        ));
        assert_eq!(d.audit_annotations.values().next(), Some(&annotation));
        let whole = one_line(&format!("{} (audit: would mutate): {}", f.rule, f.message));
        let cut = whole[..MAX_WARNING_LEN - 3].trim_end();
        assert_eq!(d.warnings, vec![format!("{cut}...")]);
        f.fallback = None;
        let d = decide(
            Endpoint::Mutate,
            Mode::Enforce,
            &eval(vec![f.clone()]),
            Vec::new(),
        );
        let annotation = one_line(&format!(
            "warned (no automatic fix applied): {}. Fix: {}. See `pidone explain {}`.",
            f.message, f.fix, f.rule
        ));
        assert_eq!(d.audit_annotations.values().next(), Some(&annotation));
    }

    #[test]
    fn warnings_are_short_single_lines_within_the_budget() {
        let mut many = Vec::new();
        for i in 0..60 {
            let mut f = finding(&format!("c{i}"), RuleId::ScriptEntrypoint, Action::Warn);
            f.message = format!("container \"c{i}\":\t{}\u{1b}[31m\r\n", "x".repeat(300));
            many.push(f);
        }
        let d = decide(Endpoint::Validate, Mode::Enforce, &eval(many), Vec::new());
        let total: usize = d.warnings.iter().map(String::len).sum();
        assert!(total < WARNINGS_BUDGET, "{total}");
        for w in &d.warnings {
            assert!(w.len() <= MAX_WARNING_LEN, "{w}");
            assert!(!w.chars().any(char::is_control), "{w:?}");
        }
        let last = d.warnings.last().unwrap();
        assert!(last.starts_with("pidone: and "), "{last}");
        let n: usize = last["pidone: and ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n + d.warnings.len() - 1, 60);
        assert_eq!(d.audit_annotations.len(), 60);
    }

    #[test]
    fn annotation_keys_are_valid_and_unique() {
        let mut taken = BTreeMap::new();
        let long = "a".repeat(63);
        for name in [
            "app",
            "app",
            "app",
            &long,
            &long,
            "Weird/Name with spaces!",
            "-_-",
            "",
            "ünïcode",
        ] {
            for rule in RuleId::ALL {
                let key = annotation_key(rule, name, &taken);
                assert!(valid_annotation_key(&key), "{key:?} for {name:?}");
                assert!(!taken.contains_key(&key), "duplicate {key}");
                taken.insert(key, String::new());
            }
        }
        assert!(taken.contains_key("shell-no-exec.app"));
        assert!(taken.contains_key("shell-no-exec.app-2"));
        assert!(taken.contains_key("shell-no-exec.app-3"));
        assert!(!valid_annotation_key("a/b"));
        assert!(!valid_annotation_key("-a"));
        assert!(!valid_annotation_key(&"a".repeat(64)));
    }

    #[test]
    fn malformed_objects_follow_the_mode() {
        let d = Decision::malformed_object(Mode::Enforce, "/spec/containers/0/command: bad");
        assert!(!d.allowed);
        assert_eq!(d.status.as_ref().unwrap().code, 400);
        let d = Decision::malformed_object(Mode::Audit, "bad");
        assert!(d.allowed);
        assert_eq!(d.outcome, Outcome::Warned);
        assert_eq!(
            Decision::malformed_object(Mode::Off, "bad"),
            Decision::allow()
        );
    }
}
