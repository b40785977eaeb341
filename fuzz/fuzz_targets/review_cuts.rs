//! A review body decodes the same with the values `review_cuts` finds cut out as it does
//! whole: arbitrary bytes, and the same bytes spliced into a real review's managed fields and
//! env list (where the scans that find their ends are exercised). With the managed fields cut,
//! every cut decodes the same; with the env lists cut too, the cut without env decodes the
//! same, and the whole cut differs only in env lists the scan checked. A CREATE the lean scan
//! reads is read as the decoder decodes it. For a body serde_json rejects, only the absence of
//! panics is checked (the scan may read one whose only fault lies in a value it skips).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::server::lean_scan;
use pidone::server::object::{self, Cut, Full, Lean, LeanWithoutEnv};
use pidone::server::review::decode_cut;
use pidone::server::review_cuts::{Cuts, Part, find};
use serde_json::Value;

const REVIEW: &[u8] = include_bytes!("../../benches/fixtures/pod-review.json");

/// What a review decodes to in cut `C`, the old object parsed as pidone parses it (its raw
/// text is the part that changes).
fn decoded<C: Cut + std::fmt::Debug>(body: &[u8]) -> String {
    match decode_cut::<C>(body) {
        Ok(mut r) => {
            let old = r
                .old_object
                .take()
                .map(|raw| object::parse(raw.get()).map_err(|e| e.to_string()));
            format!("{r:?} {old:?}")
        }
        Err(e) => format!("{e:?}"),
    }
}

/// An env list the scan may cut: an array whose object entries' `name` is a string or null.
fn env_passes(env: &Value) -> bool {
    env.as_array().is_some_and(|entries| {
        entries
            .iter()
            .filter_map(|e| e.get("name"))
            .all(|n| n.is_string() || n.is_null())
    })
}

/// The lean scan reads `body` as the decoder decodes it, when both read it.
fn scan_agrees<C: Cut + std::fmt::Debug>(body: &[u8]) {
    if let Some(read) = lean_scan::scan::<C>(body)
        && let Ok(decoded) = decode_cut::<C>(body)
    {
        assert_eq!(format!("{decoded:?}"), format!("{read:?}"));
    }
}

fn same_decoding(body: &[u8]) {
    scan_agrees::<Lean>(body);
    scan_agrees::<LeanWithoutEnv>(body);
    let cuts = Cuts::of(body);
    let managed = cuts.without_managed_fields(body);
    let all = cuts.without_all(body);
    if decode_cut::<Full>(body).is_err() {
        return;
    }
    assert_eq!(decoded::<Full>(body), decoded::<Full>(&managed));
    assert_eq!(decoded::<Lean>(body), decoded::<Lean>(&managed));
    let whole = decode_cut::<LeanWithoutEnv>(body).is_ok();
    assert_eq!(whole, decode_cut::<LeanWithoutEnv>(&all).is_ok());
    if whole {
        assert_eq!(
            decoded::<LeanWithoutEnv>(body),
            decoded::<LeanWithoutEnv>(&all)
        );
    }
    for span in cuts.spans.iter().filter(|s| s.part == Part::Env) {
        let env: Value = serde_json::from_slice(&body[span.range.clone()])
            .expect("a cut env list is JSON in a body serde_json accepts");
        assert!(env_passes(&env), "{env}");
    }
    assert!(decode_cut::<Full>(&all).is_ok());
}

/// Where the review's `userInfo` value lies: a member of the review the lean scan skips.
static USER_INFO: std::sync::LazyLock<std::ops::Range<usize>> = std::sync::LazyLock::new(|| {
    const KEY: &[u8] = b"\"userInfo\":";
    let start = REVIEW
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|at| at + KEY.len())
        .expect("the benchmark review has a userInfo");
    let mut values = serde_json::Deserializer::from_slice(&REVIEW[start..]).into_iter::<Value>();
    let _ = values.next();
    start..start + values.byte_offset()
});

fuzz_target!(|data: &[u8]| {
    same_decoding(data);
    let around = USER_INFO.clone();
    let mut spliced = REVIEW[..around.start].to_vec();
    spliced.extend_from_slice(data);
    spliced.extend_from_slice(&REVIEW[around.end..]);
    same_decoding(&spliced);
    for span in find(REVIEW) {
        let mut spliced = REVIEW[..span.range.start].to_vec();
        spliced.extend_from_slice(data);
        spliced.extend_from_slice(&REVIEW[span.range.end..]);
        same_decoding(&spliced);
    }
});
