//! The webhook evaluates the lean cut of a review's object (only the fields the engine reads)
//! and decodes the whole object only to plan a patch the lean cut cannot (one that reshapes
//! the pod, see `within_cut`). This holds only if the two give the same
//! evaluation: checked here over every fixture and example, under several configurations, for
//! every field of the evaluation (its `Debug` form), for the patch planned from it, and for the
//! planner's "nothing to fix" shortcut. /validate first decodes the lean cut without the
//! containers' `env`: its evaluation must say when it read `env`, and be the lean cut's when it
//! did not.

mod support {
    pub mod fixtures;
}

use pidone::engine::Config;
use pidone::engine::evaluate::{EvalContext, NativeSidecarSupport};
use pidone::images::images_to_resolve;
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use pidone::server::lean_scan;
use pidone::server::object::{self, Cut, FullWithoutEnv, Lean, LeanWithoutEnv, Pruned};
use pidone::server::plan::{Mutations, Planner};
use pidone::server::plan::{independent_of_env, within_cut};
use pidone::server::review::decode_cut;
use pidone::server::review_cuts;
use std::sync::Arc;
use support::fixtures::{documents, side_agent_corpus};

fn configs() -> Vec<(&'static str, Config)> {
    [
        ("default", ""),
        (
            "inject",
            "initInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
        ),
        (
            "share-pid-ns",
            "initInjection:\n  enabled: true\n  strategy: shareProcessNamespace\n",
        ),
        (
            "side-agents-last",
            "sideAgents:\n  position: last\n  images: [\"*/custom-agent*\"]\n",
        ),
        (
            "all-deny",
            "rules:\n  shell-no-exec: deny\n  multi-process: deny\n  side-agent: deny\n",
        ),
    ]
    .into_iter()
    .map(|(name, yaml)| (name, Config::from_yaml(yaml).unwrap()))
    .collect()
}

#[test]
fn the_lean_cut_evaluates_like_the_whole_object() {
    let mut docs = documents();
    docs.extend(side_agent_corpus().into_iter().map(|(_, doc)| doc));
    assert!(docs.len() > 100, "fixtures missing: {}", docs.len());
    let contexts = [
        NativeSidecarSupport::Supported,
        NativeSidecarSupport::Unsupported("test".into()),
    ];
    let mut evaluated = 0;
    let mut planned = 0;
    let (mut without_env, mut read_env) = (0, 0);
    for (config_name, config) in configs() {
        let engine = Evaluator::new(Arc::new(config), Arc::new(InProcessAnalyzer)).unwrap();
        for doc in &docs {
            let text = serde_json::to_string(doc).unwrap();
            let full = object::parse(&text).unwrap();
            let lean = object::parse_lean(&text).unwrap();
            // Every fixture's env lists are well formed: the check that skips them passes.
            let lean_without_env = object::parse_lean_without_env(&text).unwrap();
            assert!(
                text.len() >= serde_json::to_string(&lean).unwrap().len(),
                "the lean cut is never larger"
            );
            assert_eq!(images_to_resolve(&full), images_to_resolve(&lean));
            for native_sidecars in &contexts {
                let ctx = EvalContext {
                    namespace: Some("team"),
                    native_sidecars: native_sidecars.clone(),
                    images: None,
                    config_maps: None,
                    image_files: None,
                    scripts: None,
                    ..Default::default()
                };
                let from_full = engine.evaluate(&full, &ctx);
                let from_lean = engine.evaluate(&lean, &ctx);
                let where_ = format!("{config_name}: {text}");
                assert_eq!(
                    format!("{from_full:?}"),
                    format!("{from_lean:?}"),
                    "{where_}"
                );
                match engine.evaluate(&lean_without_env, &ctx) {
                    Ok(Some(e)) if e.env_read => {
                        read_env += 1;
                        // What the evaluation with env read.
                        let lean_read = from_lean.as_ref().map(|f| f.as_ref().map(|f| f.env_read));
                        assert_eq!(lean_read, Ok(Some(true)), "{where_}");
                    }
                    other => {
                        without_env += 1;
                        assert_eq!(format!("{from_lean:?}"), format!("{other:?}"), "{where_}");
                    }
                }
                let (Ok(Some(from_full)), Ok(Some(from_lean))) = (from_full, from_lean) else {
                    continue;
                };
                evaluated += 1;
                let plan_full = pidone::mutate::plan(
                    engine.engine(),
                    engine.analyzer(),
                    &full,
                    &ctx,
                    &from_full,
                );
                let plan_lean = pidone::mutate::plan(
                    engine.engine(),
                    engine.analyzer(),
                    &full,
                    &ctx,
                    &from_lean,
                );
                assert_eq!(
                    format!("{plan_full:?}"),
                    format!("{plan_lean:?}"),
                    "{where_}"
                );
                if !Mutations.wants(&from_lean) {
                    assert!(
                        plan_full.patch.is_empty() && plan_full.warnings.is_empty(),
                        "the planner said it had nothing to do, but planned {plan_full:?}: {where_}"
                    );
                } else if !plan_full.patch.is_empty() {
                    planned += 1;
                }
            }
        }
    }
    assert!(evaluated > 1000, "{evaluated}");
    assert!(planned > 100, "{planned}");
    // Both kinds are in the corpus: most evaluations never read env, some do.
    assert!(
        without_env > 1000 && read_env > 10,
        "{without_env} / {read_env}"
    );
}

/// /mutate first decodes the whole object of a CREATE with its checked env lists cut to `[]`
/// (`review_cuts`), and evaluates and plans on it unless the evaluation or the planner's
/// re-checks read `env`, or the patch depends on it (`independent_of_env`). When it goes on,
/// its evaluation and its plan must be those of the object as sent.
#[test]
fn the_whole_cut_without_env_plans_like_the_whole_object() {
    let mut docs = documents();
    docs.extend(side_agent_corpus().into_iter().map(|(_, doc)| doc));
    let ctx = EvalContext {
        namespace: Some("team"),
        ..EvalContext::default()
    };
    let (mut kept, mut env_read, mut patch_needs_env, mut cut) = (0, 0, 0, 0);
    for (config_name, config) in configs() {
        let engine = Evaluator::new(Arc::new(config), Arc::new(InProcessAnalyzer)).unwrap();
        for doc in &docs {
            let text = serde_json::to_string(doc).unwrap();
            let body = format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","object":{text}}}}}"#
            );
            let cuts = review_cuts::Cuts::of(body.as_bytes());
            if !cuts.has_env() {
                continue;
            }
            cut += 1;
            let without = cuts.without_all(body.as_bytes());
            let without = decode_cut::<FullWithoutEnv>(&without)
                .unwrap()
                .object
                .unwrap();
            assert_ne!(without, object::parse(&text).unwrap());
            let full = object::parse(&text).unwrap();
            let where_ = format!("{config_name}: {text}");
            let (Ok(Some(from_full)), Ok(Some(from_cut))) = (
                engine.evaluate(&full, &ctx),
                engine.evaluate(&without, &ctx),
            ) else {
                continue;
            };
            if from_cut.env_read {
                env_read += 1;
                assert!(from_full.env_read, "{where_}");
                continue;
            }
            assert_eq!(
                format!("{from_full:?}"),
                format!("{from_cut:?}"),
                "{where_}"
            );
            let plan = |object| {
                pidone::mutate::plan(engine.engine(), engine.analyzer(), object, &ctx, &from_full)
            };
            let (plan_full, plan_cut) = (plan(&full), plan(&without));
            if plan_cut.env_read || !independent_of_env(&plan_cut.patch) {
                patch_needs_env += 1;
                continue;
            }
            kept += 1;
            assert_eq!(
                (&plan_full.patch, &plan_full.mutations, &plan_full.warnings),
                (&plan_cut.patch, &plan_cut.mutations, &plan_cut.warnings),
                "{where_}"
            );
        }
    }
    // All three happen in the corpus (whose pods with env lists are mostly there to test
    // `$(VAR)` expansion, so half of them read it).
    assert!(
        kept > 50 && env_read > 10 && patch_needs_env > 5,
        "kept {kept}, read env {env_read}, patch needs env {patch_needs_env}, of {cut}"
    );
}

/// /mutate plans on a lean cut (with or without the env lists) when the patch it gives lies
/// where the cut keeps values whole (`within_cut`), and the re-checks did not read a cut env
/// list. When it does, the patch, the mutations and the notes must be the whole object's;
/// the others are planned again on the whole object. `may_reshape` is only the guess
/// that saves the first try: it must not miss a patch that lies within the cut.
#[test]
fn a_lean_cut_plans_like_the_whole_object_when_the_patch_lies_within_it() {
    let mut docs = documents();
    docs.extend(side_agent_corpus().into_iter().map(|(_, doc)| doc));
    let ctx = EvalContext {
        namespace: Some("team"),
        ..EvalContext::default()
    };
    let (mut kept, mut outside, mut env_read, mut guessed_wrong, mut wasted) = (0, 0, 0, 0, 0);
    type Parse = fn(&str) -> serde_json::Result<serde_json::Value>;
    let cuts: [(&str, Parse, Pruned); 2] = [
        ("lean", object::parse_lean, Lean::ROOT),
        (
            "lean without env",
            object::parse_lean_without_env,
            LeanWithoutEnv::ROOT,
        ),
    ];
    for (config_name, config) in configs() {
        let engine = Evaluator::new(Arc::new(config), Arc::new(InProcessAnalyzer)).unwrap();
        for doc in &docs {
            let text = serde_json::to_string(doc).unwrap();
            let full = object::parse(&text).unwrap();
            let Ok(Some(eval)) = engine.evaluate(&full, &ctx) else {
                continue;
            };
            if !Mutations.wants(&eval) {
                continue;
            }
            let plan = |object: &serde_json::Value| {
                pidone::mutate::plan(engine.engine(), engine.analyzer(), object, &ctx, &eval)
            };
            let plan_full = plan(&full);
            for (cut_name, parse, root) in &cuts {
                let where_ = format!("{config_name}, {cut_name}: {text}");
                let lean = parse(&text).unwrap();
                let plan_lean = plan(&lean);
                if root == &LeanWithoutEnv::ROOT && plan_lean.env_read {
                    env_read += 1;
                    continue;
                }
                if !within_cut(*root, &lean, &plan_lean.patch) {
                    outside += 1;
                    if !pidone::mutate::may_reshape(engine.engine().config(), &eval) {
                        wasted += 1;
                    }
                    continue;
                }
                kept += 1;
                if pidone::mutate::may_reshape(engine.engine().config(), &eval) {
                    guessed_wrong += 1;
                }
                assert_eq!(
                    (&plan_full.patch, &plan_full.mutations, &plan_full.warnings),
                    (&plan_lean.patch, &plan_lean.mutations, &plan_lean.warnings),
                    "{where_}"
                );
            }
        }
    }
    assert!(
        kept > 100 && outside > 50 && env_read > 5,
        "kept {kept}, outside the cut {outside}, read env {env_read}"
    );
    // The guess is right for nearly all: a plan lies within the cut when the guess said it
    // would (a few planned nothing: their first findings asked the init for a fix the
    // re-checks no longer wanted), and tries to only when it may.
    assert!(
        guessed_wrong * 20 < kept && wasted * 20 < outside,
        "within the cut against the guess {guessed_wrong} of {kept}, outside it {wasted} of {outside}"
    );
}

/// /validate reads a CREATE's lean cut straight from the body (`lean_scan`): over every
/// fixture, pretty and compact, it must read what the decoder decodes, and read every one.
#[test]
fn the_lean_cut_read_from_the_body_is_the_decoded_one() {
    let mut docs = documents();
    docs.extend(side_agent_corpus().into_iter().map(|(_, doc)| doc));
    let mut read = 0;
    for doc in &docs {
        for text in [
            serde_json::to_string(doc).unwrap(),
            serde_json::to_string_pretty(doc).unwrap(),
        ] {
            let body = format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","object":{text}}}}}"#
            );
            let lean = lean_scan::scan::<object::Lean>(body.as_bytes()).map(|r| r.object);
            let without_env =
                lean_scan::scan::<object::LeanWithoutEnv>(body.as_bytes()).map(|r| r.object);
            for (scanned, decoded) in [
                (lean, object::parse_lean(&text)),
                (without_env, object::parse_lean_without_env(&text)),
            ] {
                let Some(object) = scanned else {
                    panic!("not read: {text}");
                };
                read += 1;
                assert_eq!(
                    Ok(object),
                    decoded.map(Some).map_err(|e| e.to_string()),
                    "{text}"
                );
            }
        }
    }
    assert!(read > 400, "{read}");
}

/// Scripts from ConfigMap volumes (the webhook reads them with `scripts.configMaps`): the lean
/// cut keeps what finds them (ConfigMap and projected volumes, `subPath`, `workingDir`).
#[test]
fn the_lean_cut_keeps_what_finds_config_map_scripts() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/configmap-scripts/charts.yaml"
    ))
    .unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut maps = pidone::engine::mounted_scripts::ConfigMaps::default();
    for d in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
        let data = d["data"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        maps.insert(
            d["metadata"]["namespace"].as_str(),
            d["metadata"]["name"].as_str().unwrap(),
            data,
        );
    }
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let mut scripts_read = 0;
    for doc in docs.iter().filter(|d| d["kind"] != "ConfigMap") {
        let text = serde_json::to_string(doc).unwrap();
        let full = object::parse(&text).unwrap();
        let lean = object::parse_lean(&text).unwrap();
        let ctx = EvalContext {
            namespace: doc["metadata"]["namespace"].as_str(),
            config_maps: Some(&maps),
            ..EvalContext::default()
        };
        let from_full = engine.evaluate(&full, &ctx).unwrap().unwrap();
        let from_lean = engine.evaluate(&lean, &ctx).unwrap().unwrap();
        assert_eq!(format!("{from_full:?}"), format!("{from_lean:?}"), "{text}");
        scripts_read += from_lean
            .containers
            .iter()
            .filter(|c| !c.scripts.is_empty())
            .count();
    }
    assert!(scripts_read >= 6, "{scripts_read} containers read a script");
}
