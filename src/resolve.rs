//! Resolving what the engine needs before it evaluates, synchronously: script verdicts from
//! a [`ScriptAnalyzer`], round after round (a script read from a ConfigMap or an image names
//! the next one). The offline commands, the mutation planner's re-checks and tests use it;
//! the webhook resolves the same needs without blocking its async threads
//! (`server::resolve`).

use crate::engine::evaluate::{Earlier, EvalContext, Evaluation, Needs};
use crate::engine::parser_config::ParserConfig;
use crate::engine::script::{Dialect, ScriptVerdict, analyze_script};
use crate::engine::script_verdicts::{ScriptKey, ScriptVerdicts};
use crate::engine::workload::Workload;
use crate::engine::{Engine, WorkloadError};
use serde_json::Value;
use std::sync::Arc;

/// Anything that turns a script into a verdict. Must not panic. Verdicts are shared, never
/// copied: a cached one is handed out as it is cached, to every review that runs the script.
pub trait ScriptAnalyzer: Send + Sync {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict>;

    /// The verdict when it is known without parsing (the pre-screen refuses the script, or it
    /// is cached); `None` when only a parse can tell.
    fn known(&self, _dialect: Dialect, _script: &str) -> Option<Arc<ScriptVerdict>> {
        None
    }

    /// Applies a reloaded `parser:` section. Analyzers without limits of their own (the
    /// unbounded in-process one, test doubles) have nothing to apply.
    fn apply_limits(&self, _limits: &ParserConfig) {}
}

/// Analyses in the calling thread with no containment: for trusted input and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessAnalyzer;

impl ScriptAnalyzer for InProcessAnalyzer {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        Arc::new(analyze_script(dialect, script))
    }
}

/// Most rounds of script resolution for one object. Each round resolves every script the
/// last one revealed; chains are bounded by the engine (hand-offs, ConfigMap and image
/// script chains), this only guards against a bug looping.
pub const MAX_ROUNDS: usize = 16;

/// [`Engine::needs`] past the look-up stages: images and ConfigMaps this caller did not
/// put in `ctx` are not coming (launches without them stay as written), so the needs are
/// the scripts and image files.
pub fn script_needs(engine: &Engine, object: &Value, ctx: &EvalContext<'_>) -> Needs {
    match crate::engine::workload::extract(object) {
        Ok(Some(w)) => script_needs_of(engine, &w, ctx),
        _ => Needs::default(),
    }
}

/// [`script_needs`] of an extracted workload.
pub fn script_needs_of(engine: &Engine, w: &Workload<'_>, ctx: &EvalContext<'_>) -> Needs {
    let needs = engine.needs_of(w, ctx);
    if needs.images.is_empty() && needs.config_maps.is_empty() {
        return needs;
    }
    let no_images = std::collections::HashMap::new();
    let no_config_maps = crate::engine::mounted_scripts::ConfigMaps::default();
    let without = EvalContext {
        images: ctx.images.or(Some(&no_images)),
        config_maps: ctx.config_maps.or(Some(&no_config_maps)),
        ..ctx.clone()
    };
    engine.needs_of(w, &without)
}

/// Adds to `verdicts` every script `object`'s launches run, following chains, and returns
/// what else the evaluation needs (image files, when `ctx` carries them).
pub fn resolve_scripts(
    engine: &Engine,
    object: &Value,
    ctx: &EvalContext<'_>,
    analyzer: &dyn ScriptAnalyzer,
    verdicts: &mut ScriptVerdicts,
) -> Needs {
    let mut needs = Needs::default();
    for _ in 0..MAX_ROUNDS {
        needs = script_needs(
            engine,
            object,
            &EvalContext {
                scripts: Some(verdicts),
                ..ctx.clone()
            },
        );
        if needs.scripts.is_empty() {
            break;
        }
        for key in std::mem::take(&mut needs.scripts) {
            let verdict = analyzer.analyze(key.dialect, &key.script);
            verdicts.insert(key.dialect, key.script, verdict);
        }
    }
    needs
}

/// [`evaluate`] for an object whose scripts are `ctx`'s, except `expected` (scripts the caller
/// wrote into it): those are resolved first and the evaluation runs at once, without the walk
/// of the launches that finds what is missing. Anything else it runs that has no verdict (an
/// expectation that was wrong) is resolved as [`evaluate`] does.
pub fn evaluate_expecting(
    engine: &Engine,
    object: &Value,
    ctx: &EvalContext<'_>,
    analyzer: &dyn ScriptAnalyzer,
    expected: Vec<ScriptKey>,
) -> Result<Option<Evaluation>, WorkloadError> {
    Ok(crate::engine::workload::extract(object)?
        .map(|w| evaluate_workload_expecting(engine, &w, ctx, analyzer, expected, None)))
}

/// [`evaluate_expecting`] of an extracted workload, which `earlier` evaluated before some of
/// its containers were edited (see [`Engine::evaluate_workload_after`]).
pub fn evaluate_workload_expecting(
    engine: &Engine,
    w: &Workload<'_>,
    ctx: &EvalContext<'_>,
    analyzer: &dyn ScriptAnalyzer,
    expected: Vec<ScriptKey>,
    earlier: Option<Earlier<'_>>,
) -> Evaluation {
    let known = |key: &ScriptKey| {
        ctx.scripts
            .is_some_and(|v| v.contains(key.dialect, &key.script))
    };
    let expected: Vec<ScriptKey> = expected.into_iter().filter(|k| !known(k)).collect();
    if expected.is_empty() {
        return evaluate_workload(engine, w, ctx, analyzer);
    }
    let mut verdicts = ctx.scripts.cloned().unwrap_or_default();
    for key in expected {
        let verdict = analyzer.analyze(key.dialect, &key.script);
        verdicts.insert(key.dialect, key.script, verdict);
    }
    let with = EvalContext {
        scripts: Some(&verdicts),
        ..ctx.clone()
    };
    let eval = engine.evaluate_workload_after(w, &with, earlier);
    if eval.unresolved.is_empty() {
        return eval;
    }
    evaluate_workload(engine, w, &with, analyzer)
}

/// Evaluates `object` with every script it runs resolved: `ctx`'s verdicts first, then
/// `analyzer` for the scripts [`Engine::needs`] names (a light walk of the launches), then
/// again for any the evaluation still reports unresolved (a verdict revealed them).
pub fn evaluate(
    engine: &Engine,
    object: &Value,
    ctx: &EvalContext<'_>,
    analyzer: &dyn ScriptAnalyzer,
) -> Result<Option<Evaluation>, WorkloadError> {
    Ok(crate::engine::workload::extract(object)?
        .map(|w| evaluate_workload(engine, &w, ctx, analyzer)))
}

/// [`evaluate`] of an extracted workload.
pub fn evaluate_workload(
    engine: &Engine,
    w: &Workload<'_>,
    ctx: &EvalContext<'_>,
    analyzer: &dyn ScriptAnalyzer,
) -> Evaluation {
    let mut missing = script_needs_of(engine, w, ctx).scripts;
    if missing.is_empty() {
        // Everything known: one evaluation, without copying the verdicts.
        let eval = engine.evaluate_workload(w, ctx);
        if eval.unresolved.is_empty() {
            return eval;
        }
        missing = eval.unresolved;
    }
    let mut verdicts = ctx.scripts.cloned().unwrap_or_default();
    for _ in 0..MAX_ROUNDS {
        for key in std::mem::take(&mut missing) {
            let verdict = analyzer.analyze(key.dialect, &key.script);
            verdicts.insert(key.dialect, key.script, verdict);
        }
        let with = EvalContext {
            scripts: Some(&verdicts),
            ..ctx.clone()
        };
        let eval = engine.evaluate_workload(w, &with);
        if eval.unresolved.is_empty() {
            return eval;
        }
        missing = eval.unresolved;
    }
    engine.evaluate_workload(
        w,
        &EvalContext {
            scripts: Some(&verdicts),
            ..ctx.clone()
        },
    )
}

/// An engine and the analyzer that resolves its scripts, for synchronous callers (the
/// offline commands, reports, tests): evaluation with every script resolved first.
pub struct Evaluator {
    engine: Engine,
    analyzer: std::sync::Arc<dyn ScriptAnalyzer>,
}

impl Evaluator {
    pub fn new(
        config: std::sync::Arc<crate::engine::Config>,
        analyzer: std::sync::Arc<dyn ScriptAnalyzer>,
    ) -> Result<Evaluator, crate::engine::ConfigError> {
        Ok(Evaluator {
            engine: Engine::new(config)?,
            analyzer,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn analyzer(&self) -> &dyn ScriptAnalyzer {
        self.analyzer.as_ref()
    }

    pub fn config(&self) -> &crate::engine::Config {
        self.engine.config()
    }

    /// [`evaluate`] with this evaluator's analyzer.
    pub fn evaluate(
        &self,
        object: &Value,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Evaluation>, WorkloadError> {
        evaluate(&self.engine, object, ctx, self.analyzer.as_ref())
    }

    /// What else `object` needs once its scripts are resolved (image files, when `ctx`
    /// carries them).
    pub fn needs(&self, object: &Value, ctx: &EvalContext<'_>) -> Needs {
        let mut verdicts = ctx.scripts.cloned().unwrap_or_default();
        resolve_scripts(
            &self.engine,
            object,
            ctx,
            self.analyzer.as_ref(),
            &mut verdicts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Config, LaunchClass};
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts what it parses.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl ScriptAnalyzer for Counting {
        fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Arc::new(analyze_script(dialect, script))
        }
    }

    #[test]
    fn chains_resolve_in_rounds_and_known_verdicts_are_not_parsed_again() {
        let engine = Engine::new(Arc::new(Config::default())).unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "a", "command": ["sh", "-c", "./a & ./b & wait"]},
            {"name": "b", "image": "b", "command": ["sh", "-c", "exec bash -c 'exec app'"]}
        ]}});
        let analyzer = Counting::default();
        let mut verdicts = ScriptVerdicts::default();
        let needs = resolve_scripts(
            &engine,
            &pod,
            &EvalContext::default(),
            &analyzer,
            &mut verdicts,
        );
        assert!(needs.is_empty());
        // The hand-off's inner script is a second round.
        assert_eq!(analyzer.0.load(Ordering::Relaxed), 3);
        assert_eq!(verdicts.len(), 3);
        let eval = evaluate(
            &engine,
            &pod,
            &EvalContext {
                scripts: Some(&verdicts),
                ..EvalContext::default()
            },
            &analyzer,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            analyzer.0.load(Ordering::Relaxed),
            3,
            "nothing parsed twice"
        );
        assert_eq!(eval.containers[0].launch, LaunchClass::Multi);
        assert_eq!(eval.containers[1].launch, LaunchClass::Exec);
        // Without verdicts the launches are not analysed, and the engine says what it needs.
        let bare = engine
            .evaluate(&pod, &EvalContext::default())
            .unwrap()
            .unwrap();
        assert_eq!(bare.containers[1].launch, LaunchClass::Unparsed);
        assert_eq!(engine.needs(&pod, &EvalContext::default()).scripts.len(), 2);
    }

    /// A caller that wrote a script into the object says so: it is parsed once and the
    /// evaluation is the one `evaluate` gives. A wrong expectation costs a parse, never the
    /// right answer.
    #[test]
    fn expected_scripts_are_resolved_first_and_a_wrong_expectation_still_evaluates_right() {
        let engine = Engine::new(Arc::new(Config::default())).unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "a", "command": ["sh", "-c", "set -e\nexec ./a"]},
            {"name": "b", "image": "b", "command": ["sh", "-c", "./b & ./c & wait"]}
        ]}});
        let mut verdicts = ScriptVerdicts::default();
        let b = "./b & ./c & wait";
        verdicts.insert(Dialect::Sh, b.into(), analyze_script(Dialect::Sh, b));
        let ctx = EvalContext {
            scripts: Some(&verdicts),
            ..EvalContext::default()
        };
        let key = |script: &str| ScriptKey {
            dialect: Dialect::Sh,
            script: script.into(),
        };
        let plain = evaluate(&engine, &pod, &ctx, &Counting::default())
            .unwrap()
            .unwrap();
        let right = Counting::default();
        let expected =
            evaluate_expecting(&engine, &pod, &ctx, &right, vec![key("set -e\nexec ./a")])
                .unwrap()
                .unwrap();
        assert_eq!(right.0.load(Ordering::Relaxed), 1);
        assert_eq!(format!("{expected:?}"), format!("{plain:?}"));
        assert_eq!(expected.containers[0].launch, LaunchClass::Exec);
        assert_eq!(expected.containers[1].launch, LaunchClass::Multi);
        let wrong = Counting::default();
        let guessed = evaluate_expecting(&engine, &pod, &ctx, &wrong, vec![key("exec ./a")])
            .unwrap()
            .unwrap();
        assert_eq!(
            wrong.0.load(Ordering::Relaxed),
            2,
            "the guess, then the real script"
        );
        assert_eq!(guessed.containers[0].launch, LaunchClass::Exec);
        assert!(guessed.unresolved.is_empty());
        // Expecting what is known already parses nothing more.
        let known = Counting::default();
        evaluate_expecting(&engine, &pod, &ctx, &known, vec![key(b)]).unwrap();
        assert_eq!(
            known.0.load(Ordering::Relaxed),
            1,
            "only the unknown script of `a`"
        );
    }

    #[test]
    fn needs_come_in_stages_images_then_config_maps_then_scripts() {
        use crate::engine::evaluate::ImageConfig;
        use crate::engine::mounted_scripts::ConfigMaps;
        use std::collections::{BTreeMap, HashMap};
        let config =
            Config::from_yaml("images: {resolve: true}\nscripts: {configMaps: true}\n").unwrap();
        let engine = Engine::new(Arc::new(config)).unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "db"}, "spec": {
            "containers": [
                {"name": "a", "image": "db:1",
                 "volumeMounts": [{"name": "s", "mountPath": "/s"}]},
                {"name": "b", "image": "b:1", "command": ["sh", "-c", "exec app"]}],
            "volumes": [{"name": "s", "configMap": {"name": "scripts", "defaultMode": 493}}]}});
        let ctx = EvalContext {
            namespace: Some("db"),
            ..EvalContext::default()
        };
        // First the image: what `a` runs is not known without it.
        let first = engine.needs(&pod, &ctx);
        assert_eq!(first.images, ["db:1"]);
        assert!(first.config_maps.is_empty() && first.scripts.is_empty());
        // The image runs a script of the mounted ConfigMap: that is next.
        let images = HashMap::from([(
            "db:1".to_string(),
            ImageConfig {
                entrypoint: vec!["/s/run.sh".into()],
                digest: "sha256:1".into(),
                ..ImageConfig::default()
            },
        )]);
        let with_images = EvalContext {
            images: Some(&images),
            ..ctx.clone()
        };
        let second = engine.needs(&pod, &with_images);
        assert!(second.images.is_empty());
        assert_eq!(second.config_maps, ["scripts"]);
        // Then the scripts: `b`'s and the ConfigMap's.
        let mut maps = ConfigMaps::default();
        maps.insert(
            Some("db"),
            "scripts",
            BTreeMap::from([("run.sh".to_string(), "#!/bin/sh\nexec db\n".to_string())]),
        );
        let with_maps = EvalContext {
            config_maps: Some(&maps),
            ..with_images.clone()
        };
        let third = engine.needs(&pod, &with_maps);
        let scripts: Vec<&str> = third.scripts.iter().map(|k| k.script.as_str()).collect();
        assert_eq!(scripts, ["#!/bin/sh\nexec db\n", "exec app"]);
        // A synchronous caller that looks nothing up goes straight to the scripts.
        let offline = script_needs(&engine, &pod, &ctx);
        assert!(offline.images.is_empty() && offline.config_maps.is_empty());
        assert_eq!(offline.scripts.len(), 1);
        let eval = evaluate(&engine, &pod, &with_maps, &InProcessAnalyzer)
            .unwrap()
            .unwrap();
        assert_eq!(eval.containers[0].launch, LaunchClass::Exec);
        assert!(eval.unresolved.is_empty());
    }
}
