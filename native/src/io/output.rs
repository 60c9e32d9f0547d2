//! Writing results: output folders checked before any compute, files written atomically
//! (a temporary file in the same folder, then a link or rename, so a failure never leaves a
//! partial file), free names instead of silent overwrites, and never onto an input file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Creates `dir` if needed and checks that a file can be created in it.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let probe = tempfile::Builder::new()
        .prefix(".consistentid-probe")
        .tempfile_in(dir)
        .with_context(|| format!("the output folder {} is not writable", dir.display()))?;
    drop(probe);
    Ok(())
}

/// Checks, before any compute, that `file` can be written: its folder exists (or is created)
/// and is writable, and it is none of `inputs`.
pub fn ensure_writable_file(file: &Path, inputs: &[&Path]) -> Result<()> {
    if is_input(file, inputs) {
        bail!(
            "the output {} is one of the input files; choose another --out",
            file.display()
        );
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_writable_dir(dir)
}

/// Whether `path` is (after resolving links) one of `inputs`.
fn is_input(path: &Path, inputs: &[&Path]) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    inputs
        .iter()
        .any(|i| std::fs::canonicalize(i).is_ok_and(|c| c == target))
}

/// How [`write_new`] names files that already exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collision {
    /// Take the next free name: `{stem}-1.{ext}`, `{stem}-2.{ext}`, …
    NextFreeName,
    /// Replace the existing file (never an input file).
    Overwrite,
}

/// Writes `bytes` as `{dir}/{stem}.{ext}` (or a free variant of that name), atomically, and
/// returns the path written. Input files are never replaced.
pub fn write_new(
    dir: &Path,
    stem: &str,
    ext: &str,
    bytes: &[u8],
    collision: Collision,
    inputs: &[&Path],
) -> Result<PathBuf> {
    for n in 0..10_000 {
        let name = if n == 0 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        if is_input(&path, inputs) {
            continue;
        }
        match collision {
            Collision::Overwrite => {
                write_atomic(&path, bytes)?;
                return Ok(path);
            }
            Collision::NextFreeName => {
                if path.exists() {
                    continue;
                }
                let tmp = temp_with(dir, bytes)?;
                // A hard link fails when the name was taken meanwhile: no race with others.
                match std::fs::hard_link(tmp.path(), &path) {
                    Ok(()) => return Ok(path),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    // Filesystems without hard links: rename (the name was free a moment ago).
                    Err(_) => {
                        tmp.persist_noclobber(&path)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        return Ok(path);
                    }
                }
            }
        }
    }
    bail!("no free file name for {stem}.{ext} in {}", dir.display())
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    temp_with(dir, bytes)?
        .persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn temp_with(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".consistentid-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn free_names_overwrites_and_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let input = dir.join("1-0-1.png");
        std::fs::write(&input, b"face").unwrap();
        let inputs = [input.as_path()];
        let a = write_new(dir, "1-0", "png", b"a", Collision::NextFreeName, &inputs).unwrap();
        let b = write_new(dir, "1-0", "png", b"b", Collision::NextFreeName, &inputs).unwrap();
        assert_eq!(a, dir.join("1-0.png"));
        // 1-0-1.png is taken (by the input): the next free name.
        assert_eq!(b, dir.join("1-0-2.png"));
        let c = write_new(dir, "1-0", "png", b"c", Collision::Overwrite, &inputs).unwrap();
        assert_eq!(c, a);
        assert_eq!(std::fs::read(&a).unwrap(), b"c");
        assert_eq!(std::fs::read(&input).unwrap(), b"face");
        // No temporary files left behind.
        assert_eq!(names(dir), ["1-0-1.png", "1-0-2.png", "1-0.png"]);
    }

    #[test]
    fn an_input_is_never_overwritten_even_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let face = tmp.path().join("5-0.png");
        std::fs::write(&face, b"face").unwrap();
        let inputs = [face.as_path()];
        let p = write_new(
            tmp.path(),
            "5-0",
            "png",
            b"x",
            Collision::Overwrite,
            &inputs,
        )
        .unwrap();
        assert_eq!(p, tmp.path().join("5-0-1.png"));
        assert_eq!(std::fs::read(&face).unwrap(), b"face");
        let err = ensure_writable_file(&face, &inputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("one of the input files"), "{err}");
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // The target is a folder: the rename fails, and the temporary file goes away.
        let target = tmp.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"").unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        assert_eq!(names(tmp.path()), ["taken"]);
    }
}
