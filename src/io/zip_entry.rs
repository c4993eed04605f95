//! Zip entries read with their sizes checked first: a small archive must not unpack into more
//! memory than its contents can honestly need (a "zip bomb").

use std::io::{Read, Seek};

/// The largest entry read whole: 1 GiB, above any image, statistics file or checkpoint
/// pickle this project reads.
pub const ZIP_ENTRY_LIMIT: u64 = 1 << 30;

/// How many times its compressed size an entry may inflate to. Images, float arrays and
/// pickles compress a few times at most; only crafted data compresses near deflate's ~1000.
const MAX_INFLATION: u64 = 100;

/// The bytes of entry `name`, refused before reading when it declares more than `limit` bytes
/// or inflates more than [`MAX_INFLATION`] times; reading stops at the declared size, so a
/// header that lies about it cannot make it inflate further. The error names the entry, not
/// the archive.
pub fn read_zip_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {name}: {e}");
    let entry = zip.by_name(name).map_err(|e| cannot(&e))?;
    let size = entry.size();
    if size > limit {
        return Err(format!(
            "{name} unpacks to {size} bytes, more than the {limit} it may hold"
        ));
    }
    let packed = entry.compressed_size().max(1);
    if entry.compression() != zip::CompressionMethod::Stored && size / packed > MAX_INFLATION {
        return Err(format!(
            "{name} unpacks from {packed} to {size} bytes, more than {MAX_INFLATION} times \
             (a crafted archive?)"
        ));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| cannot(&e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn archive(name: &str, bytes: &[u8]) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn an_entry_that_inflates_a_thousandfold_is_refused_before_reading() {
        let mut zip = archive("bomb.bin", &vec![0u8; 4 << 20]);
        let e = read_zip_entry(&mut zip, "bomb.bin", ZIP_ENTRY_LIMIT).unwrap_err();
        assert!(e.contains("bomb.bin unpacks from"), "{e}");
    }

    #[test]
    fn an_entry_over_the_limit_is_refused_and_others_are_read() {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| ((i * 2_654_435_761) >> 24) as u8)
            .collect();
        let mut zip = archive("a.bin", &data);
        let e = read_zip_entry(&mut zip, "a.bin", 100).unwrap_err();
        assert!(e.contains("a.bin unpacks to 4096 bytes"), "{e}");
        assert_eq!(read_zip_entry(&mut zip, "a.bin", 4096).unwrap(), data);
        let e = read_zip_entry(&mut zip, "b.bin", 4096).unwrap_err();
        assert!(e.starts_with("cannot read b.bin"), "{e}");
    }
}
