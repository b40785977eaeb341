//! The engine on a realistic Deployment: 3 containers, one of them a 15-line script.
//! Run: cargo bench --bench engine

use criterion::{Criterion, criterion_group, criterion_main};
use pidone::engine::Config;
use pidone::engine::evaluate::EvalContext;
use pidone::engine::script::{Dialect, analyze_script};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use std::hint::black_box;
use std::sync::Arc;

const SCRIPT: &str = r#"set -euo pipefail
# wait for the broker: the client gives up if it cannot connect at boot
until nc -z "$BROKER_HOST" 5672; do
  echo "broker not reachable yet"
  sleep 2
done
if [ -n "${EXTRA_CA:-}" ]; then
  cp "$EXTRA_CA" /usr/local/share/ca-certificates/extra.crt
  update-ca-certificates
fi
cat > /tmp/notifier.toml <<EOF
[broker]
host = "$BROKER_HOST"
EOF
/app/notifier --config /tmp/notifier.toml"#;

fn deployment() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "notifications", "namespace": "shop", "labels": {"app": "notifications"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "notifications"}},
          "template": {"metadata": {"labels": {"app": "notifications"}},
            "spec": {
              "initContainers": [{"name": "wait-db", "image": "postgres:16-alpine",
                 "command": ["sh", "-c", "until pg_isready -h db; do sleep 2; done"]}],
              "containers": [
                {"name": "notifier", "image": "registry.example/shop/notifier:2.0",
                 "command": ["/bin/bash", "-c", SCRIPT],
                 "env": [{"name": "BROKER_HOST", "value": "rabbit"}],
                 "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1",
                 "args": ["-c", "/fluent-bit/etc/sidecar.conf"]}
              ]}}}
    })
}

fn bench(c: &mut Criterion) {
    let engine =
        Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).expect("engine");
    let object = deployment();
    let ctx = EvalContext::default();
    c.bench_function("evaluate realistic Deployment", |b| {
        b.iter(|| engine.evaluate(black_box(&object), &ctx))
    });
    // The analyzer the server and the CLI use: pre-screen and verdict cache in front of the
    // parser. The pods of one Deployment repeat their scripts, so after the first pod every
    // script is a cache hit.
    let cached = Evaluator::new(
        Arc::new(Config::default()),
        Arc::new(pidone::sandbox::PrescreenedAnalyzer::new(
            &Config::default().parser,
            pidone::sandbox::CacheLimits::default(),
        )),
    )
    .expect("engine");
    c.bench_function("evaluate realistic Deployment, scripts cached", |b| {
        b.iter(|| cached.evaluate(black_box(&object), &ctx))
    });
    c.bench_function("analyze 15-line script", |b| {
        b.iter(|| analyze_script(Dialect::Bash, black_box(SCRIPT)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
