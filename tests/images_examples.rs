//! Every labelled example whose container sets `command`, with that command moved into the
//! image (ENTRYPOINT = command, CMD = args) and looked up: the launch class and the rules must
//! be the same as with the command in the pod.

mod images_support;

use images_support::examples::{launches, load_examples, move_commands_to_images, retag};
use pidone::engine::Config;
use pidone::engine::evaluate::{EvalContext, ImageConfig};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use std::collections::HashMap;
use std::sync::Arc;

#[test]
fn launches_from_images_match_launches_from_commands() {
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let docs = load_examples();
    let (moved_docs, moved) =
        move_commands_to_images(&docs, |original, n| retag(original, n, None));
    assert!(
        moved.len() > 40,
        "only {} containers with a command",
        moved.len()
    );
    let images: HashMap<String, ImageConfig> = moved
        .iter()
        .enumerate()
        .map(|(n, m)| {
            (
                m.image.clone(),
                ImageConfig {
                    entrypoint: m.entrypoint.clone(),
                    cmd: m.cmd.clone(),
                    digest: format!("sha256:{n:064x}"),
                    ..Default::default()
                },
            )
        })
        .collect();
    let ctx = EvalContext {
        images: Some(&images),
        ..Default::default()
    };
    let mut failures = Vec::new();
    let mut compared = 0;
    for (doc_index, (original, moved_doc)) in docs.iter().zip(&moved_docs).enumerate() {
        let before = launches(&engine, original, &EvalContext::default());
        let after = launches(&engine, moved_doc, &ctx);
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            let was_moved = moved
                .iter()
                .any(|m| m.doc == doc_index && m.container == b.0);
            if !was_moved {
                continue;
            }
            compared += 1;
            if b != a {
                failures.push(format!(
                    "document {doc_index} {}: command {b:?}, image {a:?}",
                    b.0
                ));
            }
        }
    }
    assert_eq!(compared, moved.len());
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn retag_keeps_the_repository_name() {
    assert_eq!(retag("nginx:1.27-alpine", 3, None), "nginx:example-3");
    assert_eq!(
        retag("cr.fluentbit.io/fluent/fluent-bit:3.1@sha256:abc", 1, None),
        "cr.fluentbit.io/fluent/fluent-bit:example-1"
    );
    assert_eq!(
        retag(
            "cr.fluentbit.io/fluent/fluent-bit:3.1",
            1,
            Some("127.0.0.1:5000")
        ),
        "127.0.0.1:5000/fluent/fluent-bit:example-1"
    );
    assert_eq!(
        retag("localhost:5000/app", 2, Some("127.0.0.1:1")),
        "127.0.0.1:1/app:example-2"
    );
}
