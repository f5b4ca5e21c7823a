//! Recording timings from end-to-end tests. Tests never assert on speed (that is `make bench`'s job), but
//! the figures are worth seeing: they go to `.zeroscale/logs/timings.log`, which `scripts/e2e.sh` prints.

use std::io::Write;
use std::time::Duration;

use crate::paths::logs_dir;

/// The file timings are appended to.
pub fn timings_path() -> std::path::PathBuf {
    logs_dir().join("timings.log")
}

/// Appends `<what>: <ms> ms` to [`timings_path`] (and prints it to standard error).
pub fn record_timing(what: &str, elapsed: Duration) {
    record_figure(&format!("{what}: {} ms", elapsed.as_millis()));
}

/// Appends one line of figures (a count, a rate) to [`timings_path`], so a passing test's figures are
/// printed by `scripts/e2e.sh` although the test harness hides its output (and prints it to standard
/// error).
pub fn record_figure(line: &str) {
    eprintln!("TIMING {line}");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(timings_path());
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{line}");
    }
}
