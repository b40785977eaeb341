//! The webhook resolves what a review's evaluation needs before it evaluates: scripts the
//! analyzer knows (cached) are used without a parse, new ones are parsed once on the blocking
//! pool, and a verdict that reveals a further script (an `exec` hand-off to another shell, the
//! script a fix rewrote) is resolved in another round. Played over TLS as the apiserver calls.

mod support;

use pidone::engine::script::{Dialect, ScriptVerdict, analyze_script};
use pidone::resolve::ScriptAnalyzer;
use pidone::server::plan::Mutations;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::{Options, TestServer, review};

/// A cache in front of an in-process parse, counting parses and where they ran.
#[derive(Default)]
struct CountingAnalyzer {
    cache: Mutex<HashMap<(Dialect, String), Arc<ScriptVerdict>>>,
    parses: AtomicUsize,
    parsed: Mutex<Vec<String>>,
}

impl ScriptAnalyzer for CountingAnalyzer {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        self.parses.fetch_add(1, Ordering::SeqCst);
        self.parsed
            .lock()
            .unwrap()
            .push(format!("{dialect:?}: {script}"));
        let verdict = Arc::new(analyze_script(dialect, script));
        self.cache
            .lock()
            .unwrap()
            .insert((dialect, script.to_string()), Arc::clone(&verdict));
        verdict
    }

    fn known(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        self.cache
            .lock()
            .unwrap()
            .get(&(dialect, script.to_string()))
            .cloned()
    }
}

/// The JSON Patch of a response (base64 in the review, as the apiserver reads it).
fn patch_of(response: &Value) -> Value {
    use base64::Engine as _;
    let encoded = response["patch"].as_str().expect("a patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 patch");
    serde_json::from_slice(&bytes).expect("JSON patch")
}

fn pod(name: &str, script: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.example/app:1",
            "command": ["sh", "-c", script]
        }]}
    })
}

async fn start(analyzer: &Arc<CountingAnalyzer>) -> TestServer {
    TestServer::start_with(Options {
        config: "mode: enforce\nnativeSidecars: never\n".into(),
        analyzer: Arc::clone(analyzer) as Arc<dyn ScriptAnalyzer>,
        analyzer_blocks: true,
        planner: Arc::new(Mutations),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_is_resolved_in_a_second_round_and_cached_scripts_are_not_parsed_again() {
    let analyzer = Arc::new(CountingAnalyzer::default());
    let server = start(&analyzer).await;
    let api = server.apiserver();
    let multi = pod("handoff", "exec bash -c './app & ./agent & wait -n'");

    let answer = api
        .review("/validate", &review("CREATE", &multi, None))
        .await
        .unwrap();
    assert_eq!(answer["allowed"], false, "{answer}");
    let message = answer["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("[multi-process]"), "{message}");
    // The outer script, then the inner one it hands over to: two rounds, each parsed once.
    let parsed = analyzer.parsed.lock().unwrap().clone();
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    assert!(parsed[0].starts_with("Sh: exec bash -c"), "{parsed:?}");
    assert!(parsed[1].starts_with("Bash: ./app &"), "{parsed:?}");

    // The apiserver's retry (and every later pod with these scripts): no parse at all.
    for _ in 0..3 {
        let again = api
            .review("/validate", &review("CREATE", &multi, None))
            .await
            .unwrap();
        assert_eq!(again["allowed"], false);
    }
    assert_eq!(analyzer.parses.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_s_rewritten_script_is_resolved_before_the_patch_is_checked() {
    let analyzer = Arc::new(CountingAnalyzer::default());
    let server = start(&analyzer).await;
    let api = server.apiserver();
    let setup = pod("setup", "envsubst < /t > /c\n/app/server --config /c");

    let answer = api
        .review("/mutate", &review("CREATE", &setup, None))
        .await
        .unwrap();
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["patchType"], "JSONPatch", "{answer}");
    let patch = patch_of(&answer);
    let text = serde_json::to_string(&patch).unwrap();
    assert!(text.contains("exec /app/server"), "{text}");
    // The pod's script, then the script with `exec` that the planner re-checks.
    let parsed = analyzer.parsed.lock().unwrap().clone();
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    assert!(parsed[1].contains("exec /app/server"), "{parsed:?}");

    let again = api
        .review("/mutate", &review("CREATE", &setup, None))
        .await
        .unwrap();
    assert_eq!(patch_of(&again), patch);
    assert_eq!(
        analyzer.parses.load(Ordering::SeqCst),
        2,
        "nothing new parsed"
    );
    server.stop().await;
}

/// Parses slowly, so a namespace's places on the analysis threads fill up.
struct SlowAnalyzer(std::time::Duration);

impl ScriptAnalyzer for SlowAnalyzer {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        std::thread::sleep(self.0);
        Arc::new(analyze_script(dialect, script))
    }
}

/// Four reviews of one namespace with new scripts at once: two take the namespace's places
/// and are parsed; the other two find no place within the queue wait (2 s of a 4 s timeout).
/// Their scripts are not parsed: with `parser.failClosed` they are shed with 429 (the
/// apiserver retries), without it they are answered from the lexical scan.
async fn statuses_with_a_full_share(fail_closed: bool) -> Vec<u16> {
    let server = TestServer::start_with(Options {
        config: format!("mode: enforce\nparser:\n  failClosed: {fail_closed}\n"),
        analyzer: Arc::new(SlowAnalyzer(std::time::Duration::from_millis(2_600))),
        analyzer_blocks: true,
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let calls: Vec<_> = (0..4)
        .map(|n| {
            let http = api.http.clone();
            let url = format!("{}/validate?timeout=4s", api.base);
            let object = pod(&format!("p{n}"), &format!("echo {n}; exec /app/server"));
            let body = support::wire(&review("CREATE", &object, None));
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort_unstable();
    server.stop().await;
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_sheds_the_reviews_whose_scripts_found_no_parser() {
    assert_eq!(statuses_with_a_full_share(true).await, [200, 200, 429, 429]);
    assert_eq!(
        statuses_with_a_full_share(false).await,
        [200, 200, 200, 200]
    );
}
