//! A review body decodes the same with its object's `metadata.managedFields` cut out as it does
//! whole, in every cut: arbitrary bytes, and the same bytes spliced into a real review's
//! managed fields (where the scan that finds their end is exercised). For a body serde_json
//! rejects, only the absence of panics is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::server::managed_fields;
use pidone::server::object::{Full, Lean, LeanWithoutEnv};
use pidone::server::review::decode_cut;

const REVIEW: &[u8] = include_bytes!("../../benches/fixtures/pod-review.json");

fn same_decoding(body: &[u8]) {
    let stripped = managed_fields::strip(body);
    if decode_cut::<Full>(body).is_err() {
        return;
    }
    assert_eq!(
        format!("{:?}", decode_cut::<Full>(body)),
        format!("{:?}", decode_cut::<Full>(&stripped))
    );
    assert_eq!(
        format!("{:?}", decode_cut::<Lean>(body)),
        format!("{:?}", decode_cut::<Lean>(&stripped))
    );
    assert_eq!(
        decode_cut::<LeanWithoutEnv>(body).is_ok(),
        decode_cut::<LeanWithoutEnv>(&stripped).is_ok()
    );
}

fuzz_target!(|data: &[u8]| {
    same_decoding(data);
    if let Some(span) = managed_fields::find(REVIEW) {
        let mut spliced = REVIEW[..span.start].to_vec();
        spliced.extend_from_slice(data);
        spliced.extend_from_slice(&REVIEW[span.end..]);
        same_decoding(&spliced);
    }
});
