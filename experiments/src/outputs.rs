//! Output paths are checked before any work starts, so that a long run does not end in an error
//! about where its results should go (or, with several outputs, leave some of them behind).

use std::path::{Path, PathBuf};
use whichgan::{Error, Result};

/// Checks output files, each named by its option (`--out`): its folder exists, it is not itself
/// a folder, no two options name the same file, and none names one of the command's `inputs`
/// (which it would replace).
pub fn check_output_files(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> Result<()> {
    for (i, &(option, path)) in outputs.iter().enumerate() {
        if let Some(dir) = folder_of(path) {
            if !dir.is_dir() {
                let problem = if dir.exists() {
                    "is not a folder"
                } else {
                    "does not exist"
                };
                return Err(Error::in_file(
                    path,
                    format!("folder {} {problem}", dir.display()),
                ));
            }
        }
        if path.is_dir() {
            return Err(Error::in_file(
                path,
                format!("is a folder; {option} takes a file name"),
            ));
        }
        if let Some(&(first, _)) = outputs[..i]
            .iter()
            .find(|(_, other)| resolved(other) == resolved(path))
        {
            return Err(Error::in_file(
                path,
                format!("given to both {first} and {option}; one would overwrite the other"),
            ));
        }
        if let Some(&(input, _)) = inputs
            .iter()
            .find(|(_, other)| resolved(other) == resolved(path))
        {
            return Err(Error::in_file(
                path,
                format!("given to both {input} and {option}; the output would replace the input"),
            ));
        }
    }
    Ok(())
}

/// The folder a relative or absolute file name lies in; `None` for a bare name (the current
/// folder).
fn folder_of(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// The file's path with its folder resolved (`./a.npy` and `a.npy` are one file); the folder
/// exists when this is called.
fn resolved(path: &Path) -> PathBuf {
    let dir = folder_of(path).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    match path.file_name() {
        Some(name) => dir.join(name),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_spelt_two_ways_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.npy");
        let b = dir.path().join(".").join("x.npy");
        let e = check_output_files(&[("--out", &a), ("--grad", &b)], &[]).unwrap_err();
        assert!(e.to_string().contains("both --out and --grad"), "{e}");
        let c = dir.path().join("y.npy");
        check_output_files(&[("--out", &a), ("--grad", &c)], &[]).unwrap();
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("x.npy");
        std::fs::write(&images, b"").unwrap();
        let same = dir.path().join(".").join("x.npy");
        let e = check_output_files(&[("--out", &same)], &[("--images", &images)]).unwrap_err();
        assert!(e.to_string().contains("both --images and --out"), "{e}");
        let other = dir.path().join("y.npy");
        check_output_files(&[("--out", &other)], &[("--images", &images)]).unwrap();
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("feats").join("f.npy");
        let e = check_output_files(&[("--out", &out)], &[]).unwrap_err();
        assert!(e.to_string().ends_with("does not exist"), "{e}");
        assert!(e.to_string().contains("folder "), "{e}");
    }
}
