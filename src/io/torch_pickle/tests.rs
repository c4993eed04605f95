//! Tests of the PyTorch checkpoint reader: hostile pickles, sizes, both layouts.

use super::*;
use std::io::Write;

/// What `pickle.dump(…, protocol=4)` writes for `{'G': {'layer.weight': 3 floats,
/// 'layer.bias': the first 2 of them}}`, both viewing storage `0` (from Python, with
/// stand-ins for torch's classes).
const PROTOCOL_4: &[u8] = b"\x80\x04\x95\xd8\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01G\x94\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94(\x8c\x0clayer.weight\x94\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94((\x8c\x07storage\x94\x8c\x05torch\x94\x8c\x0cFloatStorage\x94\x93\x94\x8c\x010\x94\x8c\x03cpu\x94K\x03t\x94QK\x00K\x03\x85\x94K\x01\x85\x94\x89h\x04)R\x94t\x94R\x94\x8c\nlayer.bias\x94h\t((h\nh\rh\x0eh\x0fK\x03t\x94QK\x00K\x02\x85\x94h\x12\x89h\x04)R\x94t\x94R\x94us.";

fn text(s: &str) -> Vec<u8> {
    [&[b'X'][..], &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat()
}

fn int(v: i64) -> Vec<u8> {
    [&[0x8a, 8][..], &v.to_le_bytes()].concat()
}

fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    [b"(".to_vec(), items.concat(), b"t".to_vec()].concat()
}

/// A protocol-2 pickle of `{'w': tensor}`, the tensor a view of float storage `0`.
fn state_dict(offset: i64, shape: &[i64], stride: &[i64]) -> Vec<u8> {
    let storage_id = tuple(&[
        text("storage"),
        b"ctorch\nFloatStorage\n".to_vec(),
        text("0"),
        text("cpu"),
        int(4),
    ]);
    let args = tuple(&[
        [storage_id, b"Q".to_vec()].concat(),
        int(offset),
        tuple(&shape.iter().map(|&n| int(n)).collect::<Vec<_>>()),
        tuple(&stride.iter().map(|&n| int(n)).collect::<Vec<_>>()),
        b"\x89".to_vec(),
    ]);
    [
        b"\x80\x02}(".to_vec(),
        text("w"),
        b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec(),
        args,
        b"Ru.".to_vec(),
    ]
    .concat()
}

/// A zip checkpoint of `pickle` and storage `0`, stored or deflated; read back.
fn read_pt(
    pickle: &[u8],
    storage: &[u8],
    method: zip::CompressionMethod,
) -> Result<HashMap<String, TorchTensor>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pt");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in [("archive/data.pkl", pickle), ("archive/data/0", storage)] {
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    read_torch_tensors(&path)
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn error_of(pickle: &[u8], storage: &[u8]) -> String {
    read_pt(pickle, storage, zip::CompressionMethod::Stored)
        .unwrap_err()
        .to_string()
}

#[test]
fn reads_views_of_a_storage() {
    let storage = floats(&[1.0, 2.0, 3.0, 4.0]);
    let t = read_pt(&state_dict(1, &[3], &[1]), &storage, Default::default()).unwrap();
    assert_eq!(t["w"].data, vec![2.0, 3.0, 4.0]);
    let t = read_pt(
        &state_dict(0, &[2, 2], &[1, 2]),
        &storage,
        Default::default(),
    )
    .unwrap();
    assert_eq!(t["w"].data, vec![1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn protocol_4_pickles_are_read() {
    let t = read_pt(PROTOCOL_4, &floats(&[1.0, 2.0, 3.0]), Default::default()).unwrap();
    assert_eq!(t["G.layer.weight"].data, vec![1.0, 2.0, 3.0]);
    assert_eq!(t["G.layer.bias"].data, vec![1.0, 2.0]);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 30_000;
    let pickle = [
        b"\x80\x02".to_vec(),
        vec![b']'; depth],
        vec![b'a'; depth - 1],
        b".".to_vec(),
    ]
    .concat();
    let e = error_of(&pickle, &[]);
    assert!(e.contains("nest deeper than 1000 levels"), "{e}");
}

#[test]
fn memo_copies_that_double_a_value_are_refused() {
    let round = b"](h\x00h\x00eq\x00";
    let pickle = [b"\x80\x02]q\x00".to_vec(), round.repeat(60), b".".to_vec()].concat();
    let e = error_of(&pickle, &[]);
    assert!(e.contains("memo copies more values"), "{e}");
}

#[test]
fn broadcast_views_larger_than_their_storage_are_refused() {
    let e = error_of(
        &state_dict(0, &[100_000, 100_000], &[0, 0]),
        &floats(&[1.0]),
    );
    assert!(
        e.contains("holds 10000000000 elements, more than the 1"),
        "{e}"
    );
    let e = error_of(&state_dict(0, &[1 << 62], &[0]), &floats(&[1.0]));
    assert!(e.contains("more than the 1 of storage 0"), "{e}");
}

#[test]
fn sizes_and_offsets_that_overflow_are_refused() {
    let storage = floats(&[0.0; 16]);
    let e = error_of(&state_dict(0, &[1 << 32, 1 << 32], &[0, 0]), &storage);
    assert!(e.contains("is too large"), "{e}");
    let e = error_of(&state_dict((1 << 62) + 10, &[1], &[1]), &storage);
    assert!(e.contains("storage 0 is too short"), "{e}");
    let e = error_of(&state_dict(1, &[2, 2], &[i64::MAX / 2, 1]), &storage);
    assert!(e.contains("storage 0 is too short"), "{e}");
    let e = error_of(&state_dict(-1, &[1], &[1]), &storage);
    assert!(e.contains("negative storage offset"), "{e}");
}

#[test]
fn a_storage_that_inflates_a_thousandfold_is_refused() {
    let pickle = state_dict(0, &[1 << 20], &[1]);
    let e = read_pt(&pickle, &[0u8; 4 << 20], zip::CompressionMethod::Deflated)
        .unwrap_err()
        .to_string();
    assert!(e.contains("archive/data/0 unpacks from"), "{e}");
}

#[test]
fn half_precision_values() {
    assert_eq!(half_to_f32(0x3c00), 1.0);
    assert_eq!(half_to_f32(0xc000), -2.0);
    assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
}
