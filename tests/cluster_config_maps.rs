//! The webhook's ConfigMap reader against a fake apiserver: one GET however many reviews wait,
//! answers kept for the TTL (negative ones briefly), errors not kept, size and time bounds,
//! and a cache that stays within its bounds.

#[path = "support/fake_api.rs"]
mod fake_api;

use fake_api::FakeApi;
use pidone::cluster::config_maps::{ConfigMapSource, LookupError, Outcome};
use pidone::engine::config::ScriptsConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn settings(ttl: Duration) -> ScriptsConfig {
    ScriptsConfig {
        cache_ttl: ttl,
        ..ScriptsConfig::default()
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn concurrent_reviews_share_one_get_and_the_ttl_bounds_staleness() {
    let api = FakeApi::start().await;
    api.config_map("shop", "run", &[("run.sh", "exec app v1")]);
    api.delay("shop", Duration::from_millis(200));
    let source = Arc::new(ConfigMapSource::new(
        api.client(),
        &settings(Duration::from_millis(1500)),
    ));
    // A rollout: twenty reviews ask at once.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let source = Arc::clone(&source);
        tasks.push(tokio::spawn(async move {
            source.look_up("shop", &names(&["run"]), soon()).await
        }));
    }
    let mut fetched = 0;
    for t in tasks {
        let looked = t.await.unwrap();
        assert_eq!(looked.len(), 1);
        match &looked[0].outcome {
            Outcome::Found(data) => assert_eq!(data["run.sh"], "exec app v1"),
            other => panic!("{other:?}"),
        }
        fetched += usize::from(!looked[0].cached);
    }
    assert_eq!(api.gets("shop", "run"), 1, "one GET for twenty reviews");
    assert_eq!(fetched, 1);

    // Changed in the API: the cache answers the old text until the TTL passes, then the new.
    api.config_map("shop", "run", &[("run.sh", "exec app v2")]);
    let looked = source.look_up("shop", &names(&["run"]), soon()).await;
    assert!(looked[0].cached);
    assert_eq!(
        looked[0].outcome,
        Outcome::Found(Arc::new(
            [("run.sh".to_string(), "exec app v1".to_string())].into()
        ))
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(source.cached("shop", "run").is_none(), "stale");
    let looked = source.look_up("shop", &names(&["run"]), soon()).await;
    assert!(!looked[0].cached);
    match &looked[0].outcome {
        Outcome::Found(data) => assert_eq!(data["run.sh"], "exec app v2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(api.gets("shop", "run"), 2);
}

#[tokio::test]
async fn errors_and_negative_answers() {
    let api = FakeApi::start().await;
    api.forbid("locked");
    api.stall("slow");
    api.fail("flaky", true);
    api.config_map("flaky", "run", &[("run.sh", "exec app")]);
    api.config_map("shop", "big", &[("run.sh", &"x".repeat(4096))]);
    let source = ConfigMapSource::new(
        api.client(),
        &ScriptsConfig {
            max_bytes: 2048,
            ..settings(Duration::from_secs(60))
        },
    );
    let one = async |ns: &str, name: &str| {
        source
            .look_up(
                ns,
                &names(&[name]),
                Instant::now() + Duration::from_millis(300),
            )
            .await
            .remove(0)
    };
    assert_eq!(one("shop", "missing").await.outcome, Outcome::NotFound);
    assert_eq!(
        one("locked", "run").await.outcome,
        Outcome::Failed(LookupError::Forbidden)
    );
    let started = Instant::now();
    assert_eq!(
        one("slow", "run").await.outcome,
        Outcome::Failed(LookupError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        one("flaky", "run").await.outcome,
        Outcome::Failed(LookupError::Status(500))
    );
    assert_eq!(
        one("shop", "big").await.outcome,
        Outcome::Failed(LookupError::TooLarge(2048))
    );
    // A name that is not one never reaches the API.
    assert_eq!(
        one("shop", "../../secrets/x").await.outcome,
        Outcome::Failed(LookupError::BadName)
    );
    assert_eq!(api.gets("shop", "../../secrets/x"), 0);

    // Kept: not found and forbidden (briefly). Not kept: the 500 and the timeout.
    assert!(one("shop", "missing").await.cached);
    assert!(one("locked", "run").await.cached);
    api.fail("flaky", false);
    let again = one("flaky", "run").await;
    assert!(!again.cached);
    assert!(matches!(again.outcome, Outcome::Found(_)));
    assert_eq!(api.gets("flaky", "run"), 2);
    assert!(!one("slow", "run").await.cached);
    assert_eq!(api.gets("shop", "missing"), 1);
    assert_eq!(api.gets("locked", "run"), 1);
    // Not found is kept at most 5 s, whatever the TTL: a ConfigMap created after is seen.
    api.config_map("shop", "missing", &[("run.sh", "exec app")]);
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert!(matches!(
        one("shop", "missing").await.outcome,
        Outcome::Found(_)
    ));
}

#[tokio::test]
async fn the_cache_stays_within_its_bounds() {
    let api = FakeApi::start().await;
    for i in 0..30 {
        api.config_map("shop", &format!("cm{i}"), &[("run.sh", &"y".repeat(1000))]);
    }
    let source = ConfigMapSource::new(
        api.client(),
        &ScriptsConfig {
            cache_max_entries: 10,
            cache_max_bytes: 5_500,
            ..settings(Duration::from_secs(60))
        },
    );
    for i in 0..30 {
        let looked = source
            .look_up("shop", &names(&[&format!("cm{i}")]), soon())
            .await;
        assert!(matches!(looked[0].outcome, Outcome::Found(_)));
        assert!(source.cached_entries() <= 10, "{}", source.cached_entries());
    }
    // About 1 KiB each: five fit the byte bound. Which five is the cache's choice (it keeps
    // entries used often over one-off ones, see src/cache.rs).
    assert!(source.cached_entries() <= 5, "{}", source.cached_entries());
    assert!(source.cached_entries() >= 1);
}
