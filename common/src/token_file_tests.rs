use std::path::PathBuf;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("zs-token-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// Replaces `name` the way the kubelet does: write a new file, then rename it over the old one.
    fn rotate(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        let next = self.0.join(format!(".{name}.next"));
        std::fs::write(&next, content).expect("write");
        std::fs::rename(&next, &path).expect("rename");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn reads_the_token_as_a_sensitive_bearer_header() {
    let dir = TempDir::new();
    let path = dir.rotate("token", "abc.def.ghi\n");
    let file = TokenFile::new(&path);
    let header = file.try_authorization().await.expect("token");
    assert_eq!(header, "Bearer abc.def.ghi");
    assert!(header.is_sensitive());
    assert!(
        !format!("{file:?}").contains("abc"),
        "Debug never shows the token"
    );
}

#[tokio::test]
async fn a_rotated_file_is_read_again() {
    let dir = TempDir::new();
    let path = dir.rotate("token", "first");
    let file = TokenFile::new(&path);
    assert_eq!(file.try_authorization().await.expect("first"), "Bearer first");
    dir.rotate("token", "second");
    assert_eq!(file.try_authorization().await.expect("second"), "Bearer second");
}

#[tokio::test]
async fn an_unchanged_file_is_not_read_again_until_it_is_old() {
    let dir = TempDir::new();
    let path = dir.rotate("token", "cached");
    let file = TokenFile::with_max_age(&path, Duration::from_secs(3600));
    assert_eq!(file.try_authorization().await.expect("read"), "Bearer cached");
    // Overwrite in place with the same length, keeping the modification time: the stamp is the same,
    // so the cached token is still used.
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&path, "CACHED").expect("overwrite");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(modified))
        .expect("keep mtime");
    assert_eq!(file.try_authorization().await.expect("cached"), "Bearer cached");
    // With no reuse allowed, the same stamp is read again.
    let fresh = TokenFile::with_max_age(&path, Duration::ZERO);
    assert_eq!(fresh.try_authorization().await.expect("read"), "Bearer CACHED");
    std::fs::write(&path, "later").expect("overwrite");
    assert_eq!(fresh.try_authorization().await.expect("read"), "Bearer later");
}

#[tokio::test]
async fn missing_empty_and_malformed_files_give_no_token_and_say_why() {
    let dir = TempDir::new();
    let missing = TokenFile::new(dir.0.join("absent"));
    let err = missing.try_authorization().await.expect_err("missing");
    assert!(matches!(err, TokenFileError::Read { .. }), "{err}");
    assert!(err.to_string().contains("absent"), "names the file: {err}");
    assert!(missing.authorization().await.is_none());

    let empty = TokenFile::new(dir.rotate("empty", " \n"));
    let err = empty.try_authorization().await.expect_err("empty");
    assert!(matches!(err, TokenFileError::Empty(_)), "{err}");

    let bad = TokenFile::new(dir.rotate("bad", "a\u{1}b"));
    let err = bad.try_authorization().await.expect_err("control character");
    assert!(matches!(err, TokenFileError::NotAHeader(_)), "{err}");

    // A file that appears later is picked up, and a token that disappears is not reused.
    let path = dir.0.join("late");
    let late = TokenFile::new(&path);
    assert!(late.authorization().await.is_none());
    dir.rotate("late", "now");
    assert_eq!(late.authorization().await.expect("appeared"), "Bearer now");
    std::fs::remove_file(&path).expect("remove");
    assert!(late.authorization().await.is_none());
}
