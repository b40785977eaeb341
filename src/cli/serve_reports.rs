//! `reports.enabled` in `pidone serve`: runs the report scanner while the configuration says so
//! (it may change on reload), evaluating with the server's engine, and mirrors its counters into
//! the metrics.

use crate::engine::Config;
use crate::engine::evaluate::{EvalContext, Evaluation, Words};
use crate::reports::lease::LeaseOptions;
use crate::reports::scanner::{self, Evaluator, ScanStats, ScannerOptions};
use crate::server::state::App;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Who this replica is, for the Lease.
#[derive(Debug, Clone)]
pub struct Identity {
    pub lease: String,
    pub namespace: String,
    pub pod: String,
}

/// The server's engine and view of the cluster, as the scanner evaluates with them.
struct AppEvaluator(Arc<App>);

impl Evaluator for AppEvaluator {
    fn config(&self) -> Arc<Config> {
        self.0.engine().config_arc()
    }

    fn evaluate(&self, object: &Value) -> Option<Evaluation> {
        let engine = self.0.engine();
        let ctx = EvalContext {
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            native_sidecars: self.0.native_sidecars(engine.config()),
            images: None,
            config_maps: None,
            image_files: None,
            scripts: None,
            words: Words::All,
        };
        crate::resolve::evaluate(&engine, object, &ctx, self.0.analyzer())
            .ok()
            .flatten()
    }
}

/// Starts and stops the scanner with `reports.enabled`; checks every second.
pub fn keep_reports_current(app: Arc<App>, identity: Identity) {
    tokio::spawn(async move {
        let stats = Arc::new(ScanStats::default());
        let mut running: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let enabled = app.engine().config().reports.enabled;
            match (&running, enabled) {
                (None, true) => match kube::Client::try_default().await {
                    Ok(client) => {
                        tracing::info!(lease = %identity.lease, identity = %identity.pod, "reports: on; electing the writer");
                        let options = ScannerOptions::new(LeaseOptions::new(
                            &identity.lease,
                            &identity.namespace,
                            &identity.pod,
                        ));
                        let evaluator: Arc<dyn Evaluator> =
                            Arc::new(AppEvaluator(Arc::clone(&app)));
                        running = Some(tokio::spawn(scanner::run(
                            client,
                            evaluator,
                            options,
                            Arc::clone(&stats),
                        )));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reports: cannot build a Kubernetes client; retrying")
                    }
                },
                (Some(task), false) => {
                    tracing::info!("reports: off");
                    task.abort();
                    running = None;
                }
                _ => {}
            }
            app.metrics.observe_reports(
                [
                    stats.writes.load(Ordering::Relaxed),
                    stats.write_errors.load(Ordering::Relaxed),
                    stats.deletes.load(Ordering::Relaxed),
                ],
                if running.is_some() {
                    stats.findings()
                } else {
                    Default::default()
                },
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// This host's name, the Lease identity when `POD_NAME` is not set.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pidone-{}", std::process::id()))
}
