//! A bearer token kept in a file that someone else rotates: the projected ServiceAccount token the
//! kubelet rewrites before it expires (`docs/eventing.md`, "Authentication"). The operator and the
//! autoscaler send it with their platform events (`--events-sink-token-file`).
//!
//! The file is looked at (one `stat`) on every use and read again when it changed (modification
//! time, size or inode: the kubelet swaps a symlink to a new file) or when the last read is older
//! than [`TokenFile::max_age`], in case a rewrite kept all three. All file access goes through
//! `tokio::fs`, so the runtime never blocks on the disk.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use http::HeaderValue;
use tokio::{sync::Mutex, time::Instant};

/// Longest time a token read from the file is used without reading the file again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// Why the token file gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read (missing, no permission, ...).
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file holds nothing but white space.
    #[error("the token file {0} is empty")]
    Empty(PathBuf),
    /// The token cannot be sent in an HTTP header (control characters, non-ASCII bytes).
    #[error("the token in {0} is not a valid http header value")]
    NotAHeader(PathBuf),
}

/// What identifies one version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

struct Cached {
    stamp: Stamp,
    read_at: Instant,
    header: HeaderValue,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The failure last logged, so a file that stays missing is warned about once, not per event.
    failing: Option<String>,
}

/// A token file and the last token read from it; share it behind an `Arc`.
pub struct TokenFile {
    path: PathBuf,
    max_age: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// The token in `path`, read again at least every [`DEFAULT_MAX_AGE`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_max_age(path, DEFAULT_MAX_AGE)
    }

    /// The token in `path`, read again at least every `max_age`.
    pub fn with_max_age(path: impl Into<PathBuf>, max_age: Duration) -> Self {
        Self {
            path: path.into(),
            max_age,
            state: Mutex::new(State::default()),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Longest time a read token is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// `Bearer <token>` (marked sensitive), or the reason there is none.
    pub async fn try_authorization(&self) -> Result<HeaderValue, TokenFileError> {
        let mut state = self.state.lock().await;
        let read_error = |source| TokenFileError::Read {
            path: self.path.clone(),
            source,
        };
        let result = match tokio::fs::metadata(&self.path).await {
            Err(e) => Err(read_error(e)),
            Ok(meta) => {
                let stamp = Stamp::of(&meta);
                match &state.cached {
                    Some(c) if c.stamp == stamp && c.read_at.elapsed() < self.max_age => {
                        return Ok(c.header.clone());
                    }
                    _ => self.read(stamp).await,
                }
            }
        };
        match result {
            Ok(cached) => {
                let header = cached.header.clone();
                state.cached = Some(cached);
                if state.failing.take().is_some() {
                    tracing::info!(file = %self.path.display(), "token file readable again");
                }
                Ok(header)
            }
            Err(e) => {
                state.cached = None;
                Err(e)
            }
        }
    }

    /// Like [`TokenFile::try_authorization`], but a failure is logged (a warning naming the file the
    /// first time, then at debug level while it lasts) and gives `None`: the caller sends without a
    /// token and the receiver decides (the broker answers 401).
    pub async fn authorization(&self) -> Option<HeaderValue> {
        match self.try_authorization().await {
            Ok(header) => Some(header),
            Err(e) => {
                let why = e.to_string();
                let mut state = self.state.lock().await;
                if state.failing.as_deref() == Some(why.as_str()) {
                    tracing::debug!(file = %self.path.display(), error = %why, "sending without a token");
                } else {
                    tracing::warn!(file = %self.path.display(), error = %why, "sending without a token");
                    state.failing = Some(why);
                }
                None
            }
        }
    }

    async fn read(&self, stamp: Stamp) -> Result<Cached, TokenFileError> {
        let read_at = Instant::now();
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|source| TokenFileError::Read {
                path: self.path.clone(),
                source,
            })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenFileError::Empty(self.path.clone()));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| TokenFileError::NotAHeader(self.path.clone()))?;
        header.set_sensitive(true);
        Ok(Cached {
            stamp,
            read_at,
            header,
        })
    }
}

#[cfg(test)]
#[path = "token_file_tests.rs"]
mod tests;
