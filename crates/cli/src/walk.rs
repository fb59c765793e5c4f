//! Expanding command-line paths into the files to process.

use std::path::{Path, PathBuf};

/// One input: a file to process, or a path that could not be listed.
#[derive(Debug)]
pub enum Input {
    /// A regular file (or a symbolic link to one).
    File(PathBuf),
    /// A path that does not exist or a folder entry that could not be read.
    Unreadable(PathBuf, String),
}

/// Expands `paths` in order: files as given, folders recursively in name order. Symbolic links
/// to folders are not followed, so a link loop cannot make the walk endless.
pub fn expand(paths: &[PathBuf]) -> Vec<Input> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut out),
            Ok(_) => out.push(Input::File(p.clone())),
            Err(e) => out.push(Input::Unreadable(p.clone(), e.to_string())),
        }
    }
    out
}

fn walk_dir(dir: &Path, out: &mut Vec<Input>) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(e) => {
                let ft = e.file_type();
                if ft.is_file() {
                    out.push(Input::File(e.into_path()));
                } else if ft.is_symlink() {
                    // A link to a file is processed; a link to a folder is skipped (loops).
                    if std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) {
                        out.push(Input::File(e.into_path()));
                    }
                }
            }
            Err(e) => {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.into());
                out.push(Input::Unreadable(path, e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_sorted_and_missing_paths_are_reported() {
        let dir = std::env::temp_dir().join(format!("sg-walk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.jpg"), b"x").unwrap();
        std::fs::write(dir.join("a.png"), b"x").unwrap();
        std::fs::write(dir.join("sub/c.gif"), b"x").unwrap();
        let got = expand(&[dir.clone(), dir.join("missing")]);
        let names: Vec<String> = got
            .iter()
            .map(|i| match i {
                Input::File(p) => p.strip_prefix(&dir).unwrap().display().to_string(),
                Input::Unreadable(p, _) => format!("!{}", p.file_name().unwrap().to_string_lossy()),
            })
            .collect();
        assert_eq!(names, ["a.png", "b.jpg", "sub/c.gif", "!missing"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
