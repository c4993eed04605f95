//! PyTorch checkpoints in both `torch.save` layouts read to the values PyTorch wrote
//! (`tests/fixtures/torch/make_torch_files.py`).

use std::collections::HashMap;
use std::path::Path;
use whichgan::io::read_torch_tensors;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch")
        .join(name)
}

/// name → (shape, values) from a values file.
fn expected(values: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let text = std::fs::read_to_string(fixture(values)).unwrap();
    text.lines()
        .map(|line| {
            let (head, values) = line.split_once(" : ").unwrap();
            let mut head = head.split(' ');
            let name = head.next().unwrap().to_owned();
            let shape = head
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().unwrap())
                .collect();
            let values = values.split(' ').map(|v| v.parse().unwrap()).collect();
            (name, (shape, values))
        })
        .collect()
}

#[test]
fn legacy_and_zip_checkpoints_hold_the_saved_values() {
    for (values, files) in [
        ("values.txt", ["legacy.pth", "zip.pth"]),
        ("nested_values.txt", ["nested_legacy.pth", "nested_zip.pth"]),
    ] {
        check_files(values, files);
    }
}

fn check_files(values: &str, files: [&str; 2]) {
    let want = expected(values);
    for file in files {
        let got = read_torch_tensors(&fixture(file)).unwrap();
        assert_eq!(got.len(), want.len(), "{file}");
        for (name, (shape, values)) in &want {
            let t = &got[name];
            assert_eq!(&t.shape, shape, "{file} {name}");
            assert_eq!(&t.data, values, "{file} {name}");
        }
    }
}

#[test]
fn a_file_of_another_kind_is_refused() {
    let err = read_torch_tensors(&fixture("values.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("values.txt") && err.contains("neither a PyTorch zip checkpoint"),
        "{err}"
    );
}
