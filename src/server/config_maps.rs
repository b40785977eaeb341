//! ConfigMap scripts for one review (`scripts.configMaps`): the ConfigMaps the object's
//! launches may read ([`crate::engine::config_map_refs`]), looked up within the review's time
//! ([`crate::cluster::config_maps`]), counted, and notes for what could not be read.
//!
//! Never a reason to deny: a ConfigMap that is missing, forbidden or slow is evaluated as
//! without the option (a script pidone cannot see: the `script-entrypoint` warning), with a
//! note that says why.

use crate::cluster::config_maps::{ConfigMapSource, Looked, Outcome};
use crate::engine::Config;
use crate::engine::config_map_refs;
use crate::engine::image_config::ImageConfig;
use crate::engine::mounted_scripts::{ConfigMaps, MAX_CHAIN};
use crate::server::state::App;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most ConfigMaps looked up for one review: a pod that names more gets a note.
pub const MAX_LOOKUPS: usize = 8;

/// The share of what is left of the review's time that look-ups may use; the rest is for the
/// analysis and the answer.
const SHARE_OF_REMAINING: u32 = 2;

/// What a review gets.
#[derive(Debug)]
pub enum Gathered {
    /// Nothing to read: the option is off here, or no launch runs a file of a ConfigMap.
    Nothing,
    Read {
        maps: ConfigMaps,
        /// What could not be read, one line each.
        notes: Vec<String>,
    },
}

/// The ConfigMaps `object` (in `namespace`) runs scripts from, looked up by `deadline` (the
/// apiserver's timeout minus the margin, when known).
pub async fn gather(
    app: &App,
    config: &Config,
    object: &Value,
    namespace: Option<&str>,
    images: Option<&HashMap<String, ImageConfig>>,
    deadline: Option<Instant>,
) -> Gathered {
    let Some(ns) = namespace.filter(|ns| config.scripts.config_maps.allows(Some(ns))) else {
        return Gathered::Nothing;
    };
    if config.exemptions.namespaces.iter().any(|e| e == ns) {
        return Gathered::Nothing;
    }
    if config_map_refs::referenced(object, Some(ns), &ConfigMaps::default(), images).is_empty() {
        return Gathered::Nothing;
    }
    let source = match app.config_map_source(&config.scripts) {
        Ok(source) => source,
        Err(why) => {
            return Gathered::Read {
                maps: ConfigMaps::default(),
                notes: vec![format!("ConfigMap scripts not read: {why}")],
            };
        }
    };
    // Most reviews find their ConfigMaps cached: answered without a request.
    let rounds = match from_cache(&source, Rounds::new(object, ns, images)) {
        Some(rounds) => rounds,
        None => {
            look_up_all(
                Arc::clone(&source),
                Rounds::new(object, ns, images),
                look_up_deadline(config.scripts.deadline, deadline),
            )
            .await
        }
    };
    let (maps, looked, skipped) = rounds.finish();
    let mut notes = Vec::new();
    for l in &looked {
        let result = match (&l.outcome, l.cached) {
            (Outcome::Failed(_), _) => "error",
            (_, true) => "hit",
            (_, false) => "miss",
        };
        app.metrics.config_map_lookup(result);
        match &l.outcome {
            Outcome::Found(_) => {}
            Outcome::NotFound => {
                notes.push(format!(
                    "configmap/{} not found in {ns}: its scripts are not analysed",
                    l.name
                ));
            }
            Outcome::Failed(e) => {
                if !l.cached {
                    tracing::warn!(
                        namespace = ns,
                        config_map = l.name,
                        error = %e,
                        reason = e.metric_label(),
                        "ConfigMap not read; its scripts are not analysed"
                    );
                }
                notes.push(format!(
                    "configmap/{} not read ({e}): its scripts are not analysed",
                    l.name
                ));
            }
        }
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "more than {MAX_LOOKUPS} ConfigMaps to read; not read: {}",
            skipped.join(", ")
        ));
    }
    Gathered::Read { maps, notes }
}

/// The rounds of look-ups of one review: the ConfigMaps the launches name, then those their
/// scripts name (a script that runs a script of another ConfigMap), up to [`MAX_CHAIN`]
/// rounds and [`MAX_LOOKUPS`] ConfigMaps.
struct Rounds<'a> {
    object: &'a Value,
    namespace: &'a str,
    images: Option<&'a HashMap<String, ImageConfig>>,
    maps: ConfigMaps,
    tried: Vec<String>,
    looked: Vec<Looked>,
    skipped: Vec<String>,
    round: usize,
}

impl<'a> Rounds<'a> {
    fn new(
        object: &'a Value,
        namespace: &'a str,
        images: Option<&'a HashMap<String, ImageConfig>>,
    ) -> Rounds<'a> {
        Rounds {
            object,
            namespace,
            images,
            maps: ConfigMaps::default(),
            tried: Vec::new(),
            looked: Vec::new(),
            skipped: Vec::new(),
            round: 0,
        }
    }

    /// The names to look up next, `None` when done.
    fn next_names(&mut self) -> Option<Vec<String>> {
        if self.round >= MAX_CHAIN {
            return None;
        }
        self.round += 1;
        let mut names: Vec<String> =
            config_map_refs::referenced(self.object, Some(self.namespace), &self.maps, self.images)
                .into_iter()
                .filter(|n| !self.tried.contains(n) && !self.skipped.contains(n))
                .collect();
        let room = MAX_LOOKUPS.saturating_sub(self.tried.len());
        if names.len() > room {
            self.skipped.extend(names.split_off(room));
        }
        if names.is_empty() {
            return None;
        }
        self.tried.extend(names.iter().cloned());
        Some(names)
    }

    fn record(&mut self, looked: Vec<Looked>) {
        for l in looked {
            if let Outcome::Found(data) = &l.outcome {
                self.maps
                    .insert_shared(Some(self.namespace), &l.name, Arc::clone(data));
            }
            self.looked.push(l);
        }
    }

    fn finish(self) -> (ConfigMaps, Vec<Looked>, Vec<String>) {
        (self.maps, self.looked, self.skipped)
    }
}

/// The rounds answered by the cache alone, or `None` when it lacks one.
fn from_cache<'a>(source: &ConfigMapSource, mut rounds: Rounds<'a>) -> Option<Rounds<'a>> {
    while let Some(names) = rounds.next_names() {
        let mut looked = Vec::with_capacity(names.len());
        for name in names {
            let outcome = source.cached(rounds.namespace, &name)?;
            looked.push(Looked {
                name,
                outcome,
                cached: true,
            });
        }
        rounds.record(looked);
    }
    Some(rounds)
}

async fn look_up_all<'a>(
    source: Arc<ConfigMapSource>,
    mut rounds: Rounds<'a>,
    deadline: tokio::time::Instant,
) -> Rounds<'a> {
    while let Some(names) = rounds.next_names() {
        let looked = source.look_up(rounds.namespace, &names, deadline).await;
        rounds.record(looked);
    }
    rounds
}

/// When the look-ups of this review must be done: `scripts.deadline` from now, and no later
/// than half of what is left of the apiserver's timeout.
fn look_up_deadline(configured: Duration, review: Option<Instant>) -> tokio::time::Instant {
    let now = Instant::now();
    let budget = match review {
        Some(deadline) => {
            configured.min(deadline.saturating_duration_since(now) / SHARE_OF_REMAINING)
        }
        None => configured,
    };
    tokio::time::Instant::now() + budget
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn pod(mounts: usize) -> Value {
        let volumes: Vec<Value> = (0..mounts)
            .map(|i| json!({"name": format!("v{i}"), "configMap": {"name": format!("cm{i}")}}))
            .collect();
        let volume_mounts: Vec<Value> = (0..mounts)
            .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/s{i}")}))
            .collect();
        let command: Vec<String> = (0..mounts).map(|i| format!("/s{i}/run.sh")).collect();
        json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a", "command": ["sh", "-c", command.join(" && ")], "volumeMounts": volume_mounts}],
            "volumes": volumes}})
    }

    fn found(name: &str, text: &str) -> Looked {
        Looked {
            name: name.into(),
            outcome: Outcome::Found(Arc::new(BTreeMap::from([(
                "run.sh".to_string(),
                text.to_string(),
            )]))),
            cached: false,
        }
    }

    #[test]
    fn rounds_are_bounded_in_names() {
        let p = pod(MAX_LOOKUPS + 3);
        let mut rounds = Rounds::new(&p, "ns", None);
        let first = rounds.next_names().unwrap();
        assert_eq!(first.len(), MAX_LOOKUPS);
        rounds.record(first.iter().map(|n| found(n, "exec app")).collect());
        assert!(rounds.next_names().is_none());
        let (maps, looked, skipped) = rounds.finish();
        assert_eq!(maps.len(), MAX_LOOKUPS);
        assert_eq!(looked.len(), MAX_LOOKUPS);
        assert_eq!(skipped, ["cm8", "cm9", "cm10"]);
    }

    #[test]
    fn a_script_that_names_another_mount_brings_it_in_the_next_round() {
        let p = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a", "command": ["/a/run.sh"], "volumeMounts": [
                {"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}]}],
            "volumes": [{"name": "a", "configMap": {"name": "first"}},
                        {"name": "b", "configMap": {"name": "second"}}]}});
        let mut rounds = Rounds::new(&p, "ns", None);
        assert_eq!(rounds.next_names().unwrap(), ["first"]);
        rounds.record(vec![found("first", "#!/bin/sh\nexec /b/run.sh\n")]);
        assert_eq!(rounds.next_names().unwrap(), ["second"]);
        rounds.record(vec![Looked {
            name: "second".into(),
            outcome: Outcome::NotFound,
            cached: false,
        }]);
        assert!(rounds.next_names().is_none());
    }
}
