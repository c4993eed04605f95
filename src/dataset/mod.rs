//! Image datasets: a folder (searched recursively) or a zip archive in the layout of the
//! official `dataset_tool.py` (images anywhere in the archive, optional `dataset.json`), of PNG
//! and JPEG files, read in sorted path order as RGB in [0, 1].
//!
//! Sizes: by default every image must have the size of the first one (an error names the first
//! that does not). `Resize::CenterCrop(r)` instead crops each image to a centred square of its
//! shorter side and resizes it to r × r with a Lanczos-3 filter — what `dataset_tool.py
//! --transform=center-crop` does (PIL's Lanczos; small differences at the filter level).
//! An image that cannot be decoded is an error naming it, unless bad images are skipped (then
//! they are counted).

mod synth;
mod writer;

pub use synth::{synth_image, write_synth, write_synth_counted, SynthSpec, MAX_CLASSES};
pub use writer::DatasetWriter;

use crate::io::{check_readable_file, read_zip_entry, ZIP_ENTRY_LIMIT};
use crate::{Error, Result};
use image::imageops::FilterType;
use image::RgbImage;
use indicatif::ProgressBar;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File extensions read as images (lower case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Where a dataset's files live.
#[derive(Debug, Clone)]
enum Storage {
    Folder(PathBuf),
    Zip(PathBuf),
}

/// How images are brought to one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Every image must have the first image's size.
    None,
    /// Centred square crop of the shorter side, then a Lanczos-3 resize to r × r.
    CenterCrop(u32),
}

/// The image files of a dataset, in sorted order.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    storage: Storage,
    /// Paths relative to the folder, or names inside the zip.
    names: Vec<String>,
    /// A folder's files as the file system names them (a name that is not UTF-8 reads back
    /// only by its own bytes), in the order of `names`.
    files: Vec<PathBuf>,
}

/// A batch of decoded images: [n, 3, height, width] f32 values in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    pub n: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
    /// Names of the images that were skipped as unreadable.
    pub skipped: Vec<String>,
}

impl ImageDataset {
    /// Opens a folder or a `.zip` archive; an error when it holds no images.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let (storage, mut entries) = if meta.is_dir() {
            let mut entries = Vec::new();
            collect_folder(path, path, &mut entries)?;
            (Storage::Folder(path.to_owned()), entries)
        } else if crate::io::extension(path).as_deref() == Some("zip") {
            let zip = open_zip(path)?;
            let entries = zip
                .file_names()
                .filter_map(|n| n.ok().map(|n| n.into_owned()))
                .filter(|n| is_image_name(n))
                .map(|n| (n.clone(), PathBuf::from(n)))
                .collect();
            (Storage::Zip(path.to_owned()), entries)
        } else {
            return Err(Error::in_file(
                path,
                "expected an image folder or a .zip dataset",
            ));
        };
        if entries.is_empty() {
            return Err(Error::in_file(path, "holds no PNG or JPEG images"));
        }
        entries.sort();
        let (names, files) = entries.into_iter().unzip();
        Ok(ImageDataset {
            storage,
            names,
            files,
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The folder or archive.
    pub fn path(&self) -> &Path {
        match &self.storage {
            Storage::Folder(p) | Storage::Zip(p) => p,
        }
    }

    /// Image names in reading order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The raw (encoded) bytes of every image in `range`, in order.
    pub fn read_raw(&self, range: std::ops::Range<usize>) -> Result<Vec<Vec<u8>>> {
        let names = &self.names[range.clone()];
        match &self.storage {
            Storage::Folder(root) => self.files[range]
                .iter()
                .map(|n| {
                    let p = root.join(n);
                    check_readable_file(&p)?;
                    std::fs::read(&p).map_err(|e| Error::io(&p, e))
                })
                .collect(),
            Storage::Zip(path) => {
                let mut zip = open_zip(path)?;
                names
                    .iter()
                    .map(|n| {
                        read_zip_entry(&mut zip, n, ZIP_ENTRY_LIMIT)
                            .map_err(|m| Error::in_file(path, m))
                    })
                    .collect()
            }
        }
    }

    /// The class labels of the dataset's `dataset.json` (at the top of the folder or archive, as
    /// the official `dataset_tool.py` writes and reads it), by image name; `None` when there is
    /// no such file or it says `"labels": null`.
    pub fn labels(&self) -> Result<Option<HashMap<String, u32>>> {
        const NAME: &str = "dataset.json";
        let text = match &self.storage {
            Storage::Folder(root) => {
                let path = root.join(NAME);
                if !path.is_file() {
                    return Ok(None);
                }
                std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?
            }
            Storage::Zip(path) => {
                let mut zip = open_zip(path)?;
                if zip.index_for_name(NAME).is_none() {
                    return Ok(None);
                }
                let bytes = read_zip_entry(&mut zip, NAME, ZIP_ENTRY_LIMIT)
                    .map_err(|m| Error::in_file(path, m))?;
                String::from_utf8(bytes)
                    .map_err(|_| Error::in_file(path, format!("{NAME} is not UTF-8 text")))?
            }
        };
        let bad = |why: &str| Error::invalid(format!("{}: {why}", self.locate(NAME)));
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let labels = match json.get("labels") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::Array(labels)) => labels,
            Some(_) => return Err(bad("\"labels\" must be a list or null")),
        };
        labels
            .iter()
            .map(|entry| {
                let pair = entry.as_array().filter(|p| p.len() == 2);
                match pair.map(|p| (p[0].as_str(), p[1].as_u64())) {
                    Some((Some(name), Some(class))) if class <= u32::MAX as u64 => {
                        Ok((name.to_owned(), class as u32))
                    }
                    _ => Err(bad(&format!(
                        "label entry {entry} is not [image name, class number]"
                    ))),
                }
            })
            .collect::<Result<HashMap<_, _>>>()
            .map(Some)
    }

    /// Where image `name` lives, for messages.
    fn locate(&self, name: &str) -> String {
        match &self.storage {
            Storage::Folder(root) => root.join(name).display().to_string(),
            Storage::Zip(path) => format!("{} (in {})", name, path.display()),
        }
    }

    /// Decodes the images in `range` (in parallel) to one batch of size `size` (the size the
    /// dataset's images share, from [`ImageDataset::image_size`]).
    pub fn load(
        &self,
        range: std::ops::Range<usize>,
        resize: Resize,
        size: (u32, u32),
        skip_bad: bool,
    ) -> Result<ImageBatch> {
        use rayon::prelude::*;
        let raw = self.read_raw(range.clone())?;
        let names = &self.names[range];
        let decoded: Vec<Result<Option<RgbImage>>> = raw
            .par_iter()
            .zip(names)
            .map(|(bytes, name)| self.decode(name, bytes, resize, Some(size), skip_bad))
            .collect();
        let (width, height) = (size.0 as usize, size.1 as usize);
        let mut batch = ImageBatch {
            n: 0,
            height,
            width,
            data: Vec::new(),
            skipped: Vec::new(),
        };
        for (img, name) in decoded.into_iter().zip(names) {
            match img? {
                Some(img) => {
                    batch.n += 1;
                    push_chw(&img, &mut batch.data);
                }
                None => batch.skipped.push(name.clone()),
            }
        }
        Ok(batch)
    }

    /// One image as RGB after `resize`; an error names it when it cannot be decoded (or `None`
    /// when skipping) or, with `size`, when it has another size.
    pub fn decode(
        &self,
        name: &str,
        bytes: &[u8],
        resize: Resize,
        size: Option<(u32, u32)>,
        skip_bad: bool,
    ) -> Result<Option<RgbImage>> {
        let img = match image::load_from_memory(bytes) {
            Ok(img) => apply_resize(img.to_rgb8(), resize),
            Err(_) if skip_bad => return Ok(None),
            Err(e) => {
                return Err(Error::invalid(format!(
                    "{}: cannot decode image ({e})",
                    self.locate(name)
                )))
            }
        };
        match size {
            Some(size) if img.dimensions() != size => Err(Error::invalid(format!(
                "{}: image is {}×{}, expected {}×{} like the dataset's first image \
                 (use a centre-crop resize to bring images to one size)",
                self.locate(name),
                img.width(),
                img.height(),
                size.0,
                size.1
            ))),
            _ => Ok(Some(img)),
        }
    }

    /// The size (width, height) images of this dataset have after `resize`: that of the first
    /// decodable image.
    pub fn image_size(&self, resize: Resize, skip_bad: bool) -> Result<(u32, u32)> {
        if let Resize::CenterCrop(r) = resize {
            return Ok((r, r));
        }
        for i in 0..self.len() {
            let raw = self.read_raw(i..i + 1)?;
            match image::load_from_memory(&raw[0]) {
                Ok(img) => return Ok((img.width(), img.height())),
                Err(_) if skip_bad => continue,
                Err(e) => {
                    return Err(Error::invalid(format!(
                        "{}: cannot decode image ({e})",
                        self.locate(&self.names[i])
                    )))
                }
            }
        }
        Err(Error::in_file(self.path(), "holds no decodable image"))
    }
}

/// What [`pack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSummary {
    pub images: usize,
    pub skipped: usize,
    pub resolution: (u32, u32),
    /// Class names in label order: the sub-folders' names with labels from sub-folders, the
    /// class numbers with labels kept from the source's `dataset.json`; empty without labels.
    pub classes: Vec<String>,
}

/// Packs an image folder (or zip) into a dataset zip in the official layout: images decoded to
/// RGB, optionally centre-cropped and resized, all of one square size. The labels of the
/// source's `dataset.json` are kept (every image must have one); with `labels_from_folders`,
/// each image's class is instead its top-level sub-folder (sorted names → 0, 1, …), which a
/// source with labels of its own refuses. `bar` counts the images.
pub fn pack(
    source: &Path,
    out: &Path,
    resize: Resize,
    skip_bad: bool,
    labels_from_folders: bool,
    bar: &ProgressBar,
) -> Result<PackSummary> {
    let data = ImageDataset::open(source)?;
    let class_of = |name: &str| {
        name.split(['/', '\\'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let kept = data.labels()?;
    if let Some(labels) = &kept {
        if labels_from_folders {
            return Err(Error::in_file(
                source,
                "has class labels in its dataset.json, which are kept; \
                 --labels-from-folders would replace them by its folder names",
            ));
        }
        if let Some(name) = data.names().iter().find(|n| !labels.contains_key(*n)) {
            return Err(Error::invalid(format!(
                "{}: no label in the dataset.json that labels the other images",
                data.locate(name)
            )));
        }
    }
    let mut classes: Vec<String> = Vec::new();
    if labels_from_folders {
        classes = data
            .names()
            .iter()
            .filter(|n| n.contains(['/', '\\']))
            .map(|n| class_of(n))
            .collect();
        classes.sort();
        classes.dedup();
        // The official layout stores images in folders of 1000 (`00000/`, `00001/`, …): those
        // are not classes.
        let chunked = |c: &String| c.len() == 5 && c.bytes().all(|b| b.is_ascii_digit());
        if !classes.is_empty() && classes.iter().all(chunked) {
            return Err(Error::in_file(
                source,
                format!(
                    "its folders ({}) are the official layout's chunks of 1000 images, \
                     not classes; drop --labels-from-folders",
                    classes.join(", ")
                ),
            ));
        }
        if let Some(loose) = data.names().iter().find(|n| !n.contains(['/', '\\'])) {
            return Err(Error::invalid(format!(
                "{}: not in a class sub-folder (labels come from sub-folders)",
                data.locate(loose)
            )));
        }
    }
    let size = data.image_size(resize, skip_bad)?;
    if size.0 != size.1 {
        return Err(Error::in_file(
            source,
            format!(
                "images are {}×{}; training needs square images (use a centre-crop resize)",
                size.0, size.1
            ),
        ));
    }
    if let Some(labels) = &kept {
        let mut numbers: Vec<u32> = labels.values().copied().collect();
        numbers.sort_unstable();
        numbers.dedup();
        classes = numbers.iter().map(u32::to_string).collect();
    }
    let mut writer = DatasetWriter::create(out)?;
    bar.set_length(data.len() as u64);
    let mut skipped = 0;
    const CHUNK: usize = 256;
    for start in (0..data.len()).step_by(CHUNK) {
        let range = start..(start + CHUNK).min(data.len());
        let raw = data.read_raw(range.clone())?;
        for (name, bytes) in data.names()[range].iter().zip(raw) {
            match data.decode(name, &bytes, resize, Some(size), skip_bad)? {
                Some(img) => {
                    let label = match &kept {
                        Some(labels) => Some(labels[name]),
                        None => labels_from_folders.then(|| {
                            classes
                                .iter()
                                .position(|c| *c == class_of(name))
                                .expect("listed") as u32
                        }),
                    };
                    writer.push(&img, label)?;
                }
                None => skipped += 1,
            }
            bar.inc(1);
        }
    }
    let images = writer.finish()?;
    Ok(PackSummary {
        images,
        skipped,
        resolution: size,
        classes,
    })
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<std::fs::File>> {
    check_readable_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    zip::ZipArchive::new(file)
        .map_err(|e| Error::in_file(path, format!("not a readable zip archive ({e})")))
}

fn is_image_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files below `dir`, skipping hidden entries (`.name`): the temporary files of an
/// interrupted write, `.ipynb_checkpoints` and the like are not part of a dataset.
fn collect_folder(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_folder(root, &path, out)?;
        } else if is_image_name(&path.to_string_lossy()) {
            let relative = path.strip_prefix(root).expect("below the root");
            out.push((relative.to_string_lossy().into_owned(), relative.to_owned()));
        }
    }
    Ok(())
}

fn apply_resize(img: RgbImage, resize: Resize) -> RgbImage {
    match resize {
        Resize::None => img,
        Resize::CenterCrop(r) => {
            let (w, h) = img.dimensions();
            let side = w.min(h);
            let cropped =
                image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side)
                    .to_image();
            if side == r {
                cropped
            } else {
                image::imageops::resize(&cropped, r, r, FilterType::Lanczos3)
            }
        }
    }
}

/// Appends an RGB image as planar [3, H, W] values k / 255.
fn push_chw(img: &RgbImage, out: &mut Vec<f32>) {
    for c in 0..3 {
        out.extend(img.pixels().map(|p| p.0[c] as f32 / 255.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_by_extension() {
        assert!(is_image_name("a/b/img001.PNG"));
        assert!(is_image_name("x.jpeg"));
        assert!(!is_image_name("dataset.json"));
        assert!(!is_image_name("png"));
    }

    #[test]
    fn folders_skip_hidden_files_and_folders() {
        let dir = std::env::temp_dir().join(format!("whichgan-folder-{}", std::process::id()));
        for name in [
            "a.png",
            "sub/b.jpg",
            ".x.tmp-1-0.png",
            ".ipynb_checkpoints/c.png",
        ] {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let mut names = Vec::new();
        collect_folder(&dir, &dir, &mut names).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        names.sort();
        let names: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["a.png", "sub/b.jpg"]);
    }

    #[test]
    fn centre_crop_keeps_the_middle_square() {
        let mut img = RgbImage::new(6, 4);
        img.put_pixel(1, 0, image::Rgb([9, 9, 9]));
        img.put_pixel(4, 3, image::Rgb([7, 7, 7]));
        let out = apply_resize(img, Resize::CenterCrop(4));
        assert_eq!(out.dimensions(), (4, 4));
        assert_eq!(out.get_pixel(0, 0).0, [9, 9, 9]);
        assert_eq!(out.get_pixel(3, 3).0, [7, 7, 7]);
    }
}
