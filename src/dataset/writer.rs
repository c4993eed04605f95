//! Writing datasets as zips in the official `dataset_tool.py` layout: `00000/img00000000.png`
//! (1000 images per folder) and `dataset.json` with `{"labels": [[name, class], …]}` or
//! `{"labels": null}`. The archive appears only when complete.

use crate::{Error, Result};
use image::RgbImage;
use std::io::Write;
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

pub struct DatasetWriter {
    out: PathBuf,
    partial: PathBuf,
    /// Taken by `finish`.
    zip: Option<zip::ZipWriter<std::fs::File>>,
    labels: Vec<(String, Option<u32>)>,
    size: Option<(u32, u32)>,
}

impl DatasetWriter {
    pub fn create(out: &Path) -> Result<Self> {
        if crate::io::extension(out).as_deref() != Some("zip") {
            return Err(Error::in_file(out, "the dataset must be written as a .zip"));
        }
        let partial = crate::io::temporary_beside(out);
        let file = std::fs::File::create(&partial).map_err(|e| Error::io(out, e))?;
        Ok(DatasetWriter {
            out: out.to_owned(),
            partial,
            zip: Some(zip::ZipWriter::new(file)),
            labels: Vec::new(),
            size: None,
        })
    }

    /// Appends one image (all must share one size) with its class, if any.
    pub fn push(&mut self, image: &RgbImage, label: Option<u32>) -> Result<()> {
        let size = image.dimensions();
        if *self.size.get_or_insert(size) != size {
            return Err(Error::invalid(format!(
                "image {} is {}×{}, the dataset's first image {}×{}",
                self.labels.len(),
                size.0,
                size.1,
                self.size.unwrap().0,
                self.size.unwrap().1
            )));
        }
        let i = self.labels.len();
        let name = format!("{:05}/img{i:08}.png", i / 1000);
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::invalid(format!("cannot encode {name}: {e}")))?;
        // PNGs are already compressed.
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let zip = self.zip.as_mut().expect("open until finish");
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(&png).map_err(Into::into))
            .map_err(|e| Error::in_file(&self.out, e.to_string()))?;
        self.labels.push((name, label));
        Ok(())
    }

    /// Writes `dataset.json`, closes the archive and moves it into place; returns the count.
    pub fn finish(mut self) -> Result<usize> {
        if self.labels.is_empty() {
            std::fs::remove_file(&self.partial).ok();
            return Err(Error::in_file(&self.out, "no images to write"));
        }
        let labelled = self.labels.iter().all(|(_, l)| l.is_some());
        let labels = if labelled {
            serde_json::Value::Array(
                self.labels
                    .iter()
                    .map(|(n, l)| serde_json::json!([n, l.expect("labelled")]))
                    .collect(),
            )
        } else {
            serde_json::Value::Null
        };
        let json = serde_json::json!({ "labels": labels }).to_string();
        let n = self.labels.len();
        let mut zip = self.zip.take().expect("open until finish");
        zip.start_file("dataset.json", SimpleFileOptions::default())
            .and_then(|()| zip.write_all(json.as_bytes()).map_err(Into::into))
            .and_then(|()| zip.finish().map(|_| ()))
            .map_err(|e| Error::in_file(&self.out, e.to_string()))?;
        std::fs::rename(&self.partial, &self.out).map_err(|e| Error::io(&self.out, e))?;
        Ok(n)
    }
}

impl Drop for DatasetWriter {
    /// An unfinished archive leaves nothing behind.
    fn drop(&mut self) {
        std::fs::remove_file(&self.partial).ok();
    }
}
