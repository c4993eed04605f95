//! Official StyleGAN2-ADA network pickles (`tests/fixtures/pkl`, written by the official code;
//! see its README): the networks read from a pickle equal their saved state dicts bit for bit,
//! with the constructor arguments and the augmentation probability the pickle holds.

use std::path::{Path, PathBuf};
use whichgan::io::read_network_pickle;

fn set(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pkl")
        .join(name)
}

#[test]
fn a_pickle_holds_its_state_dicts_bit_for_bit() {
    // (set, z_dim, c_dim, D architecture, mbstd group, conv_clamp)
    for (name, z_dim, c_dim, arch, mbstd, clamp) in [
        ("setA", 64, 0, "resnet", 2, None),
        ("setC", 64, 5, "resnet", 2, Some(256)),
        ("setD", 96, 10, "orig", 4, None),
    ] {
        let dir = set(name);
        let pickle = read_network_pickle(&dir.join("network-snapshot-000100.pkl")).unwrap();
        for net in ["G", "D", "G_ema"] {
            let expected = candle_core::safetensors::load(
                dir.join(format!("{net}.safetensors")),
                &candle_core::Device::Cpu,
            )
            .unwrap();
            let ours: Vec<&String> = pickle
                .tensors
                .keys()
                .filter(|k| k.starts_with(&format!("{net}.")))
                .collect();
            assert_eq!(ours.len(), expected.len(), "{name} {net}: tensor count");
            for (key, tensor) in &expected {
                let t = &pickle.tensors[&format!("{net}.{key}")];
                assert_eq!(t.shape, tensor.dims(), "{name} {net}.{key}");
                let values: Vec<f32> = tensor
                    .to_dtype(candle_core::DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let same = values
                    .iter()
                    .zip(&t.data)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name} {net}.{key} differs");
            }
        }
        assert!((pickle.arguments.augment_p.unwrap() - 0.137).abs() < 1e-6);
        let g = &pickle.arguments.kwargs["G"];
        assert_eq!(g["z_dim"], z_dim);
        assert_eq!(g["img_resolution"], 32);
        assert_eq!(g["c_dim"], c_dim);
        let d = &pickle.arguments.kwargs["D"];
        assert_eq!(d["architecture"], arch);
        assert_eq!(d["epilogue_kwargs"]["mbstd_group_size"], mbstd);
        let stated = &g["synthesis_kwargs"]["conv_clamp"];
        assert_eq!(stated.as_u64(), clamp, "{name}");
        assert_eq!(pickle.arguments.classes["G"], "Generator");
    }
}

/// Truncated and bit-flipped copies of a real pickle: each is read or refused with an error,
/// never a panic (a panic fails the test), and refusals are one line naming the file.
#[test]
fn damaged_pickles_are_refused_cleanly() {
    let original = std::fs::read(set("setC").join("network-snapshot-000100.pkl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.pkl");
    let mut refused = 0;
    let mut check = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        if let Err(e) = read_network_pickle(&path) {
            let text = e.to_string();
            assert!(text.starts_with(path.to_str().unwrap()), "{text}");
            assert!(!text.contains('\n'), "{text}");
            refused += 1;
        }
    };
    for cut in (0..original.len()).step_by(original.len() / 97) {
        check(&original[..cut]);
    }
    // Deterministic positions all over the file, each byte flipped in one bit.
    let mut state = 12345u64;
    for _ in 0..300 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (state >> 33) as usize % original.len();
        let mut bytes = original.clone();
        bytes[at] ^= 1 << ((state >> 29) % 8);
        check(&bytes);
    }
    // Every truncation is refused (a pickle ends with STOP).
    assert!(refused >= 97, "{refused} refusals");
}
