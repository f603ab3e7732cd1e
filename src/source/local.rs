//! Local sources: read a file under the `Base::Dir` folder, never outside it, capped in size.
//!
//! Confinement is checked on canonical paths, so `..` and symlinks that point out of the folder
//! are refused (symlinks inside it are followed). It does not guard against someone with write
//! access to the folder swapping a path for a symlink between the check and the open; the folder
//! is trusted configuration, not client input.

use std::path::{Component, Path};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::SourceError;

/// The path must be relative and made of plain names only (what `parse` produces).
pub(super) fn check_shape(path: &Path) -> Result<(), SourceError> {
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || path.as_os_str().is_empty() {
        return Err(escape());
    }
    Ok(())
}

pub(super) async fn read(base: &Path, rel: &Path, max_bytes: u64) -> Result<Bytes, SourceError> {
    check_shape(rel)?;
    let base = tokio::fs::canonicalize(base)
        .await
        .map_err(|_| SourceError::Origin("source folder unavailable".to_owned()))?;
    // Fails for missing files, a file used as a folder (ENOTDIR) and dangling symlinks.
    let path = tokio::fs::canonicalize(base.join(rel))
        .await
        .map_err(|_| SourceError::NotFound)?;
    if !path.starts_with(&base) {
        return Err(escape());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| SourceError::NotFound)?;
    let meta = file.metadata().await.map_err(|_| SourceError::NotFound)?;
    if !meta.is_file() {
        return Err(SourceError::NotFound);
    }
    let too_large = SourceError::TooLarge { limit: max_bytes };
    if meta.len() > max_bytes {
        return Err(too_large);
    }
    // The file may grow after the metadata check, so the read is capped as well.
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .await
        .map_err(|_| SourceError::NotFound)?;
    if buf.len() as u64 > max_bytes {
        return Err(too_large);
    }
    Ok(Bytes::from(buf))
}

/// The folder, size, modification time and inode of `base/rel` (one `stat`, following
/// symlinks); empty when it cannot be read.
pub(super) async fn identity(base: &Path, rel: &Path) -> String {
    let Ok(meta) = tokio::fs::metadata(base.join(rel)).await else {
        return String::new();
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("{}\0{}:{modified}:{inode}", base.display(), meta.len())
}

fn escape() -> SourceError {
    SourceError::Forbidden("path outside the source folder".to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    struct Tree {
        _root: tempfile::TempDir,
        base: PathBuf,
        outside: PathBuf,
    }

    /// `<root>/base/{cat.jpg, sub/dog.jpg, big.bin, folder/}` and `<root>/secret.txt`.
    fn tree() -> Tree {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        std::fs::create_dir_all(base.join("sub")).unwrap();
        std::fs::create_dir_all(base.join("folder")).unwrap();
        std::fs::write(base.join("cat.jpg"), b"cat").unwrap();
        std::fs::write(base.join("sub/dog.jpg"), b"dog").unwrap();
        std::fs::write(base.join("big.bin"), vec![7u8; 100]).unwrap();
        let outside = root.path().join("secret.txt");
        std::fs::write(&outside, b"secret").unwrap();
        Tree {
            base,
            outside,
            _root: root,
        }
    }

    #[tokio::test]
    async fn local_existing_file_read() {
        let t = tree();
        let got = read(&t.base, Path::new("cat.jpg"), 10).await;
        assert_eq!(got, Ok(Bytes::from_static(b"cat")));
        let got = read(&t.base, Path::new("sub/dog.jpg"), 3).await;
        assert_eq!(got, Ok(Bytes::from_static(b"dog")));
    }

    #[tokio::test]
    async fn local_missing_or_directory_not_found() {
        let t = tree();
        for p in ["nope.jpg", "sub/nope.jpg", "cat.jpg/x", "folder", "sub"] {
            assert_eq!(
                read(&t.base, Path::new(p), 10).await,
                Err(SourceError::NotFound),
                "{p}"
            );
        }
    }

    #[tokio::test]
    async fn local_dotdot_cannot_escape_forbidden() {
        let t = tree();
        for p in ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", ""] {
            let got = read(&t.base, Path::new(p), 10).await;
            assert!(
                matches!(got, Err(SourceError::Forbidden(_))),
                "{p}: {got:?}"
            );
        }
        // Through `parse`, `..` never even becomes a path.
        let base = super::super::Base::Dir(t.base.clone());
        let parsed = super::super::parse("sub/%2e%2e/%2e%2e/secret.txt", None, &base);
        assert!(matches!(parsed, Err(SourceError::Forbidden(_))));
    }

    #[tokio::test]
    async fn local_symlink_pointing_outside_forbidden() {
        let t = tree();
        std::os::unix::fs::symlink(&t.outside, t.base.join("link.jpg")).unwrap();
        std::os::unix::fs::symlink(t.outside.parent().unwrap(), t.base.join("up")).unwrap();
        std::os::unix::fs::symlink(t.base.join("cat.jpg"), t.base.join("inside.jpg")).unwrap();
        let got = read(&t.base, Path::new("link.jpg"), 10).await;
        assert!(matches!(got, Err(SourceError::Forbidden(_))), "{got:?}");
        let got = read(&t.base, Path::new("up/secret.txt"), 10).await;
        assert!(matches!(got, Err(SourceError::Forbidden(_))), "{got:?}");
        let got = read(&t.base, Path::new("inside.jpg"), 10).await;
        assert_eq!(got, Ok(Bytes::from_static(b"cat")));
    }

    #[tokio::test]
    async fn local_oversize_too_large() {
        let t = tree();
        let got = read(&t.base, Path::new("big.bin"), 99).await;
        assert_eq!(got, Err(SourceError::TooLarge { limit: 99 }));
        let got = read(&t.base, Path::new("big.bin"), 100).await;
        assert_eq!(got.map(|b| b.len()), Ok(100));
    }

    #[tokio::test]
    async fn local_base_through_symlink_still_works() {
        let t = tree();
        let alias = t.base.parent().unwrap().join("alias");
        std::os::unix::fs::symlink(&t.base, &alias).unwrap();
        let got = read(&alias, Path::new("cat.jpg"), 10).await;
        assert_eq!(got, Ok(Bytes::from_static(b"cat")));
    }
}
