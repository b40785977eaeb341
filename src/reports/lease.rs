//! Leader election with a `coordination.k8s.io/v1` Lease, so that one replica writes reports.
//!
//! The algorithm of client-go's leader election, reduced to what one writer needs:
//! - The holder renews `renewTime` every [`LeaseOptions::retry_period`]; a renewal that has
//!   not succeeded within [`LeaseOptions::renew_deadline`] makes it step down (before the
//!   lease can expire and another replica take over, since the deadline is shorter).
//! - Another replica takes the lease only once the record it saw has not changed for
//!   [`LeaseOptions::lease_duration`], measured on its own clock (no clock skew between
//!   replicas matters), and only with the resourceVersion it read: of two replicas racing, the
//!   apiserver accepts one write and answers the other 409 Conflict.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Timings and names of the election.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    /// This replica's name in `holderIdentity` (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseOptions {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(name: &str, namespace: &str, identity: &str) -> LeaseOptions {
        LeaseOptions {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// We hold the lease (acquired or renewed).
    Held,
    /// Someone else holds it, and it has not expired as far as we can tell.
    Taken,
    /// The apiserver could not be asked, or refused.
    Failed(String),
}

/// The record of another holder, and when this replica first saw it.
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
    at: Instant,
}

/// Runs the election until the receiver side is dropped, publishing `true` while this replica
/// holds the lease.
pub async fn run(client: kube::Client, options: LeaseOptions, leading: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &options.namespace);
    let mut observed: Option<Observed> = None;
    let mut last_renewal: Option<Instant> = None;
    loop {
        let attempt = try_acquire_or_renew(&api, &options, &mut observed).await;
        let now = Instant::now();
        let is_leader = match &attempt {
            Attempt::Held => {
                last_renewal = Some(now);
                true
            }
            Attempt::Taken => {
                last_renewal = None;
                false
            }
            // A failed renewal keeps the lease until the deadline, then steps down.
            Attempt::Failed(why) => {
                tracing::debug!(error = %why, lease = %options.name, "lease attempt failed");
                last_renewal.is_some_and(|t| now.duration_since(t) < options.renew_deadline)
            }
        };
        if *leading.borrow() != is_leader {
            if is_leader {
                tracing::info!(lease = %options.name, identity = %options.identity, "holding the reports lease: this replica writes the reports");
            } else {
                tracing::info!(lease = %options.name, "not holding the reports lease: another replica writes the reports");
            }
        }
        if leading.send(is_leader).is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(options.retry_period) => {}
            _ = leading.closed() => return,
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    options: &LeaseOptions,
    observed: &mut Option<Observed>,
) -> Attempt {
    let current = match api.get_opt(&options.name).await {
        Ok(current) => current,
        Err(e) => return Attempt::Failed(format!("get lease: {e}")),
    };
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(options.name.clone()),
                namespace: Some(options.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(options.identity.clone()),
                lease_duration_seconds: Some(seconds(options.lease_duration)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Attempt::Held,
            Err(kube::Error::Api(s)) if s.code == 409 => Attempt::Taken,
            Err(e) => Attempt::Failed(format!("create lease: {e}")),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(options.identity.as_str());
    if !ours {
        // Has the record changed since we last looked? Then the holder is alive: start timing.
        let changed = observed.as_ref().is_none_or(|o| {
            o.holder != holder
                || o.renew_time != spec.renew_time
                || o.transitions != spec.lease_transitions
        });
        if changed {
            *observed = Some(Observed {
                holder: holder.clone(),
                renew_time: spec.renew_time.clone(),
                transitions: spec.lease_transitions,
                at: Instant::now(),
            });
        }
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(options.lease_duration);
        let expired = holder.is_none()
            || observed
                .as_ref()
                .is_some_and(|o| o.at.elapsed() >= duration);
        if !expired {
            return Attempt::Taken;
        }
    }
    let mut new_spec = spec.clone();
    new_spec.holder_identity = Some(options.identity.clone());
    new_spec.lease_duration_seconds = Some(seconds(options.lease_duration));
    new_spec.renew_time = Some(now());
    if !ours {
        new_spec.acquire_time = Some(now());
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    lease.spec = Some(new_spec);
    // `replace` sends the resourceVersion we read: a concurrent change answers 409.
    match api
        .replace(&options.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => {
            *observed = None;
            Attempt::Held
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Attempt::Taken,
        Err(e) => Attempt::Failed(format!("update lease: {e}")),
    }
}
