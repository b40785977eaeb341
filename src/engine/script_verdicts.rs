//! Script verdicts resolved before evaluation.
//!
//! The engine parses nothing itself: scripts from the cluster's users must be parsed in
//! contained worker processes, which is I/O. The caller asks [`crate::engine::Engine::needs`]
//! which scripts an object runs, resolves them (cache, pre-screen, workers) into a
//! [`ScriptVerdicts`], and evaluates with it. A script the map lacks is evaluated as not
//! analysed and reported as missing, so resolution can go round again (a script read from a
//! ConfigMap or an image names the next one).

use crate::engine::script::{Dialect, ScriptVerdict, UnparsedReason};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// One script to resolve: its text and the grammar to parse it with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScriptKey {
    pub dialect: Dialect,
    pub script: String,
}

/// Verdicts by dialect and script text, shared with the analyses that read them (a verdict
/// lists every command of its script: copying it per launch cost more than the look-up).
#[derive(Debug, Clone, Default)]
pub struct ScriptVerdicts {
    sh: HashMap<String, Arc<ScriptVerdict>>,
    bash: HashMap<String, Arc<ScriptVerdict>>,
}

impl ScriptVerdicts {
    pub fn get(&self, dialect: Dialect, script: &str) -> Option<&Arc<ScriptVerdict>> {
        self.of(dialect).get(script)
    }

    pub fn contains(&self, dialect: Dialect, script: &str) -> bool {
        self.of(dialect).contains_key(script)
    }

    pub fn insert(
        &mut self,
        dialect: Dialect,
        script: String,
        verdict: impl Into<Arc<ScriptVerdict>>,
    ) {
        let verdict = verdict.into();
        match dialect {
            Dialect::Sh => self.sh.insert(script, verdict),
            Dialect::Bash => self.bash.insert(script, verdict),
        };
    }

    pub fn len(&self) -> usize {
        self.sh.len() + self.bash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn of(&self, dialect: Dialect) -> &HashMap<String, Arc<ScriptVerdict>> {
        match dialect {
            Dialect::Sh => &self.sh,
            Dialect::Bash => &self.bash,
        }
    }
}

/// The verdict a script gets while it is not resolved: evaluation goes on (the rest of the
/// object still counts), and the launch stays "not analysed".
pub fn unresolved() -> ScriptVerdict {
    ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
        what: "the script was not analysed".into(),
    })
}

/// The verdicts one evaluation reads, and the scripts it asked for that were not there.
#[derive(Debug, Default)]
pub struct ScriptLookup<'a> {
    verdicts: Option<&'a ScriptVerdicts>,
    missing: RefCell<Vec<ScriptKey>>,
    /// The walk only collects what is missing (`Engine::needs`): its analyses are dropped.
    collecting: bool,
}

impl<'a> ScriptLookup<'a> {
    pub fn new(verdicts: Option<&'a ScriptVerdicts>) -> ScriptLookup<'a> {
        ScriptLookup {
            verdicts,
            missing: RefCell::new(Vec::new()),
            collecting: false,
        }
    }

    /// For a walk whose analyses are dropped and whose only result is what is missing.
    pub fn collecting(verdicts: Option<&'a ScriptVerdicts>) -> ScriptLookup<'a> {
        ScriptLookup {
            collecting: true,
            ..ScriptLookup::new(verdicts)
        }
    }

    /// Whether analysing a script without a verdict is wasted here: the walk only collects
    /// what is missing, and the evaluation that follows its resolution analyses it.
    pub fn defers(&self, dialect: Dialect, script: &str) -> bool {
        self.collecting && !self.verdicts.is_some_and(|m| m.contains(dialect, script))
    }

    /// The script's verdict, or [`unresolved`] (noted as missing).
    pub fn verdict(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        if let Some(v) = self.verdicts.and_then(|m| m.get(dialect, script)) {
            return Arc::clone(v);
        }
        self.missing.borrow_mut().push(ScriptKey {
            dialect,
            script: script.to_string(),
        });
        Arc::new(unresolved())
    }

    /// How many times a script was asked for and not found so far.
    pub fn misses(&self) -> usize {
        self.missing.borrow().len()
    }

    /// The scripts asked for and not found, sorted, each once.
    pub fn into_missing(self) -> Vec<ScriptKey> {
        let mut missing = self.missing.into_inner();
        missing.sort_unstable();
        missing.dedup();
        missing
    }
}

/// Runs `f` until every script it asks for is resolved, parsing them in this process: for
/// the engine's own tests, whose scripts are trusted.
#[cfg(test)]
pub fn with_scripts_parsed<R>(mut f: impl FnMut(&ScriptLookup<'_>) -> R) -> R {
    let mut verdicts = ScriptVerdicts::default();
    loop {
        let lookup = ScriptLookup::new(Some(&verdicts));
        let result = f(&lookup);
        let missing = lookup.into_missing();
        if missing.is_empty() {
            return result;
        }
        for key in missing {
            let verdict = crate::engine::script::analyze_script(key.dialect, &key.script);
            verdicts.insert(key.dialect, key.script, verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::analyze_script;

    #[test]
    fn missing_scripts_are_named_once_and_known_ones_shared() {
        let mut verdicts = ScriptVerdicts::default();
        verdicts.insert(
            Dialect::Sh,
            "exec app".into(),
            analyze_script(Dialect::Sh, "exec app"),
        );
        let lookup = ScriptLookup::new(Some(&verdicts));
        let known = lookup.verdict(Dialect::Sh, "exec app");
        assert!(matches!(*known, ScriptVerdict::Parsed(_)));
        // The map's verdict itself, not a copy.
        assert!(Arc::ptr_eq(
            &known,
            verdicts.get(Dialect::Sh, "exec app").unwrap()
        ));
        // The same text in another dialect is another script.
        assert_eq!(*lookup.verdict(Dialect::Bash, "exec app"), unresolved());
        assert_eq!(*lookup.verdict(Dialect::Sh, "a & b"), unresolved());
        assert_eq!(*lookup.verdict(Dialect::Sh, "a & b"), unresolved());
        let missing = lookup.into_missing();
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].dialect, Dialect::Sh);
        assert_eq!(missing[0].script, "a & b");
        assert_eq!(missing[1].dialect, Dialect::Bash);
    }

    #[test]
    fn a_collecting_walk_defers_only_scripts_without_a_verdict() {
        let mut verdicts = ScriptVerdicts::default();
        verdicts.insert(
            Dialect::Sh,
            "exec app".into(),
            analyze_script(Dialect::Sh, "exec app"),
        );
        let collecting = ScriptLookup::collecting(Some(&verdicts));
        assert!(!collecting.defers(Dialect::Sh, "exec app"));
        assert!(collecting.defers(Dialect::Sh, "a & b"));
        assert!(collecting.defers(Dialect::Bash, "exec app"));
        assert!(ScriptLookup::collecting(None).defers(Dialect::Sh, "exec app"));
        // An evaluation analyses whatever it has, a missing script's lexical scan included.
        assert!(!ScriptLookup::new(Some(&verdicts)).defers(Dialect::Sh, "a & b"));
        assert!(!ScriptLookup::new(None).defers(Dialect::Sh, "a & b"));
    }

    #[test]
    fn without_verdicts_everything_is_missing() {
        let lookup = ScriptLookup::new(None);
        assert_eq!(*lookup.verdict(Dialect::Sh, "x"), unresolved());
        assert_eq!(lookup.into_missing().len(), 1);
    }
}
