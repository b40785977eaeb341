//! What containment adds to one script's analysis: in-process parse vs. a worker round trip
//! (cache miss) vs. a cache hit. `cargo bench --bench parser`; results in BENCHMARKS.md.

use criterion::{Criterion, criterion_group, criterion_main};
use pidone::engine::config::ParserConfig;
use pidone::engine::script::{Dialect, analyze_script};
use pidone::resolve::ScriptAnalyzer;
use pidone::sandbox::{ContainedAnalyzer, ContainmentConfig, PoolConfig, prescreen};
use std::hint::black_box;
use std::path::PathBuf;

/// A typical entrypoint script: setup, a wait loop, a trap, and the final program.
const SCRIPT: &str = r#"set -eu
: "${PORT:=8080}"
if [ -f /config/app.yaml ]; then
  envsubst < /config/app.yaml > /etc/app/app.yaml
fi
until nc -z "$DB_HOST" 5432; do
  echo "waiting for $DB_HOST"; sleep 2
done
for f in /docker-entrypoint.d/*.sh; do
  [ -x "$f" ] && . "$f"
done
trap 'echo stopping' TERM
/app/migrate --database "postgres://$DB_HOST/app" || exit 1
exec /app/server --port "$PORT" --log-format json "$@"
"#;

fn contained() -> ContainedAnalyzer {
    ContainedAnalyzer::new(
        &ParserConfig::default(),
        ContainmentConfig {
            pool: PoolConfig {
                executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
                ..PoolConfig::default()
            },
            ..ContainmentConfig::default()
        },
    )
    .expect("workers start")
}

fn bench(c: &mut Criterion) {
    let limits = ParserConfig::default();
    c.bench_function("prescreen", |b| {
        b.iter(|| prescreen(Dialect::Sh, black_box(SCRIPT), &limits))
    });
    c.bench_function("in-process parse", |b| {
        b.iter(|| analyze_script(Dialect::Sh, black_box(SCRIPT)))
    });
    let a = contained();
    // Distinct scripts (a trailing comment) so every call misses the cache.
    let mut n = 0u64;
    c.bench_function("contained, cache miss (worker round trip)", |b| {
        b.iter_batched(
            || {
                n += 1;
                format!("{SCRIPT}# {n}\n")
            },
            |script| a.analyze(Dialect::Sh, &script),
            criterion::BatchSize::SmallInput,
        )
    });
    a.analyze(Dialect::Sh, SCRIPT);
    c.bench_function("contained, cache hit", |b| {
        b.iter(|| a.analyze(Dialect::Sh, black_box(SCRIPT)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
