//! Loading an Azure Functions 2019 trace sample: `invocations.csv` joined with `durations.csv` on
//! the function hash (never by row position: the files' row orders differ).

use std::{collections::HashMap, path::Path};

/// Minutes in the trace's day.
pub const MINUTES: usize = 1440;

/// Why a trace cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the expected shape.
    #[error("{file} line {line}: {reason}")]
    Format {
        /// The file name.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A function of `invocations.csv` has no row in `durations.csv`.
    #[error("function {0} has invocations but no durations row")]
    MissingDurations(String),
}

/// Execution time distribution of one function, in milliseconds: the trace's percentiles
/// 0, 1, 25, 50, 75, 99 and 100 (of its 30-second averages) and the average.
#[derive(Clone, Debug, PartialEq)]
pub struct DurationProfile {
    /// Average execution time.
    pub average_ms: f64,
    /// `(quantile, milliseconds)` pairs with quantiles 0, 0.01, 0.25, 0.5, 0.75, 0.99 and 1.
    pub percentiles: [(f64, f64); 7],
}

/// One function of the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFunction {
    /// `HashFunction`.
    pub hash: String,
    /// Invocations started in each minute of the day.
    pub per_minute: Vec<u32>,
    /// How long its invocations run.
    pub durations: DurationProfile,
}

impl TraceFunction {
    /// Invocations over the whole day.
    pub fn invocations(&self) -> u64 {
        self.per_minute.iter().map(|&n| u64::from(n)).sum()
    }
}

fn read(dir: &Path, name: &str) -> Result<String, TraceError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|source| TraceError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn number<T: std::str::FromStr>(file: &'static str, line: usize, field: &str) -> Result<T, TraceError> {
    field.trim().parse().map_err(|_| TraceError::Format {
        file,
        line,
        reason: format!("{field:?} is not a number"),
    })
}

const QUANTILES: [f64; 7] = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0];

/// The data rows of a CSV `file` (header skipped, blank lines ignored), each split into exactly
/// `columns` fields, with its 1-based line number.
fn rows<'a>(
    text: &'a str,
    file: &'static str,
    columns: usize,
) -> impl Iterator<Item = Result<(usize, Vec<&'a str>), TraceError>> + 'a {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(move |(i, row)| {
            let cols: Vec<&str> = row.split(',').collect();
            if cols.len() == columns {
                Ok((i + 1, cols))
            } else {
                let reason = format!("{} columns, want {columns}", cols.len());
                Err(TraceError::Format {
                    file,
                    line: i + 1,
                    reason,
                })
            }
        })
}

fn parse_durations(text: &str) -> Result<HashMap<String, DurationProfile>, TraceError> {
    const FILE: &str = "durations.csv";
    let mut out = HashMap::new();
    for row in rows(text, FILE, 14) {
        let (line, cols) = row?;
        let mut percentiles = [(0.0, 0.0); 7];
        for (k, q) in QUANTILES.iter().enumerate() {
            percentiles[k] = (*q, number::<f64>(FILE, line, cols[7 + k])?);
        }
        let average_ms = number(FILE, line, cols[4])?;
        out.insert(
            cols[0].to_string(),
            DurationProfile {
                average_ms,
                percentiles,
            },
        );
    }
    Ok(out)
}

fn parse_invocations(text: &str) -> Result<Vec<(String, Vec<u32>)>, TraceError> {
    const FILE: &str = "invocations.csv";
    rows(text, FILE, 3 + MINUTES)
        .map(|row| {
            let (line, cols) = row?;
            let per_minute = cols[3..]
                .iter()
                .map(|c| number(FILE, line, c))
                .collect::<Result<_, _>>()?;
            Ok((cols[0].to_string(), per_minute))
        })
        .collect()
}

/// Loads the trace in `dir`, in the row order of `invocations.csv`.
pub fn load(dir: &Path) -> Result<Vec<TraceFunction>, TraceError> {
    let mut durations = parse_durations(&read(dir, "durations.csv")?)?;
    parse_invocations(&read(dir, "invocations.csv")?)?
        .into_iter()
        .map(|(hash, per_minute)| {
            let durations = durations
                .remove(&hash)
                .ok_or_else(|| TraceError::MissingDurations(hash.clone()))?;
            Ok(TraceFunction {
                hash,
                per_minute,
                durations,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocations_row(hash: &str, first: u32) -> String {
        let mut minutes = vec!["0".to_string(); MINUTES];
        minutes[0] = first.to_string();
        format!("{hash},{hash},{hash},{}", minutes.join(","))
    }

    #[test]
    fn joins_on_the_hash_not_the_row() {
        let inv = format!(
            "header\n{}\n{}\n",
            invocations_row("a", 1),
            invocations_row("b", 2)
        );
        let dur = "header\nb,b,b,2,20,1.0,30.0,1,2,3,4,5,6,7\na,a,a,1,10,1.0,30.0,10,20,30,40,50,60,70\n";
        let dir = std::env::temp_dir().join(format!("zeroscale-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("invocations.csv"), inv).unwrap();
        std::fs::write(dir.join("durations.csv"), dur).unwrap();
        let fns = load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(fns[0].hash, "a");
        assert_eq!(fns[0].durations.average_ms, 10.0);
        assert_eq!(fns[0].durations.percentiles[6], (1.0, 70.0));
        assert_eq!(fns[1].invocations(), 2);
        assert_eq!(fns[1].durations.average_ms, 20.0);
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let err = parse_durations("h\nx,y\n").unwrap_err();
        assert_eq!(err.to_string(), "durations.csv line 2: 2 columns, want 14");
    }
}
