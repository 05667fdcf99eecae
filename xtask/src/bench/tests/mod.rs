//! Unit tests, one file per source file.

mod instructions;
mod modes;
mod procs;
mod report;
mod results;
mod profile;
mod tool_http;

/// A profile-guided build is trained on figures the benchmark runs (an
/// unknown name would be skipped without a word).
#[test]
fn training_runs_benchmark_figures() {
    for figure in super::TRAINING_FIGURES {
        assert!(super::NETWORK_FIGURES.contains(&figure), "{figure}");
    }
}
