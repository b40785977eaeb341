//! A review body decodes the same with its objects' `metadata.managedFields` cut out as it
//! does whole, in every cut: arbitrary bytes, and the same bytes spliced into a real review's
//! managed fields (where the scan that finds their end is exercised). For a body serde_json
//! rejects, only the absence of panics is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::server::managed_fields;
use pidone::server::object::{self, Cut, Full, Lean, LeanWithoutEnv};
use pidone::server::review::decode_cut;

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

fn same_decoding(body: &[u8]) {
    let stripped = managed_fields::strip(body);
    if decode_cut::<Full>(body).is_err() {
        return;
    }
    assert_eq!(decoded::<Full>(body), decoded::<Full>(&stripped));
    assert_eq!(decoded::<Lean>(body), decoded::<Lean>(&stripped));
    assert_eq!(
        decode_cut::<LeanWithoutEnv>(body).is_ok(),
        decode_cut::<LeanWithoutEnv>(&stripped).is_ok()
    );
}

fuzz_target!(|data: &[u8]| {
    same_decoding(data);
    if let Some(span) = managed_fields::find(REVIEW).first().cloned() {
        let mut spliced = REVIEW[..span.start].to_vec();
        spliced.extend_from_slice(data);
        spliced.extend_from_slice(&REVIEW[span.end..]);
        same_decoding(&spliced);
    }
});
