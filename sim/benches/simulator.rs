//! The fast simulator's speed, measured with criterion (`cargo bench -p eddy-sim`): one
//! seed of the steady-state and chaos scenarios, reported as simulator events per second.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eddy_sim::scenario::Scenario;

fn scenarios(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for name in ["steady-state", "chaos"] {
        let scenario =
            Scenario::from_file(&root.join(format!("{name}.toml"))).expect("scenario loads");
        let events = eddy_sim::run(&scenario, 1, None)
            .expect("runs")
            .stats
            .events;
        g.throughput(Throughput::Elements(events));
        g.bench_function(format!("{name} seed 1 ({events} events)"), |b| {
            b.iter(|| black_box(eddy_sim::run(&scenario, 1, None).expect("runs").trace_hash))
        });
    }
    g.finish();
}

criterion_group!(benches, scenarios);
criterion_main!(benches);
