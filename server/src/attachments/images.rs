//! Images of attachments (PNG, JPEG, GIF, WebP): what is served carries no metadata (EXIF, with
//! its GPS position and camera serial, XMP, text chunks), dimensions are recorded, a thumbnail
//! is made, and decoding is bounded so a decompression bomb is refused instead of eating memory.
//!
//! The stored file is read whole (at most `max_image_bytes`) and decoded at most
//! [`DECODES_AT_ONCE`] at a time, each within `max_image_pixels` × 8 bytes: memory stays
//! bounded however many images arrive. Decoding runs on the blocking pool.

use super::{blob_path, storage_error, too_large, AttachmentConfig, Which};
use crate::error::{ApiError, ApiResult};
use crate::store::UploadRecord;
use axum::body::Bytes;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::{ImageEXIF, ImageICC};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use protocol::ErrorCode;
use std::io::Cursor;
use std::sync::{Arc, LazyLock};

/// Images decoded at once by this process.
pub const DECODES_AT_ONCE: usize = 2;
static DECODES: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(DECODES_AT_ONCE));

/// The format of an image type this server processes, if it is one.
fn format(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Whether uploads of this type are processed as images.
pub fn is_image(content_type: &str) -> bool {
    format(content_type).is_some()
}

/// What processing an image produced.
#[derive(Debug)]
pub struct Processed {
    /// The file to serve, when it differs from the upload (metadata stripped, or turned
    /// upright by its EXIF orientation).
    pub file: Option<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
}

fn unreadable() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedType,
        "the image could not be read (damaged, or a variant this server does not decode)",
    )
}

fn bomb(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the image has more pixels than this server decodes ({limit})"),
    )
}

/// Strips metadata from the stored image, records its dimensions and stores a thumbnail.
pub async fn process(
    blobs: &Arc<dyn ObjectStore>,
    config: &AttachmentConfig,
    record: &mut UploadRecord,
) -> ApiResult<()> {
    let Some(fmt) = format(&record.content_type) else {
        return Ok(());
    };
    if record.size > config.max_image_bytes {
        return Err(too_large(config.max_image_bytes));
    }
    let _permit = DECODES
        .acquire()
        .await
        .map_err(|_| ApiError::new(ErrorCode::ServerBusy, "shutting down"))?;
    let path = blob_path(&record.id, Which::Original);
    let bytes = blobs
        .get(&path)
        .await
        .map_err(storage_error)?
        .bytes()
        .await
        .map_err(storage_error)?;
    let (max_pixels, px) = (config.max_image_pixels, config.thumbnail_px);
    let processed = tokio::task::spawn_blocking(move || prepare(bytes, fmt, max_pixels, px))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error"))??;
    if let Some(file) = processed.file {
        record.size = file.len() as u64;
        blobs
            .put(&path, PutPayload::from(file))
            .await
            .map_err(storage_error)?;
    }
    blobs
        .put(
            &blob_path(&record.id, Which::Thumbnail),
            PutPayload::from(processed.thumbnail),
        )
        .await
        .map_err(storage_error)?;
    record.width = Some(processed.width);
    record.height = Some(processed.height);
    record.thumbnail = true;
    Ok(())
}

/// Decodes (bounded), strips and makes the thumbnail of an image file. Pure: no I/O.
pub fn prepare(bytes: Bytes, fmt: ImageFormat, max_pixels: u64, px: u32) -> ApiResult<Processed> {
    // Dimensions from the header first: a bomb is refused before anything is allocated.
    let (w, h) = reader(&bytes, fmt, max_pixels)
        .into_dimensions()
        .map_err(|e| decode_error(e, max_pixels))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(bomb(max_pixels));
    }
    let mut decoder = reader(&bytes, fmt, max_pixels)
        .into_decoder()
        .map_err(|e| decode_error(e, max_pixels))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(e, max_pixels))?;
    let upright = orientation == image::metadata::Orientation::NoTransforms;
    let file = if upright {
        strip(&bytes, fmt)?
    } else {
        // The EXIF orientation goes with the metadata: turn the pixels instead (re-encoded).
        img.apply_orientation(orientation);
        Some(encode(&img, fmt)?)
    };
    let thumb = img.thumbnail(px, px);
    // As `super::thumbnail_type` says: JPEG for photos, PNG otherwise.
    let thumb_fmt = if fmt == ImageFormat::Jpeg {
        ImageFormat::Jpeg
    } else {
        ImageFormat::Png
    };
    let thumbnail = encode(&thumb, thumb_fmt)?;
    Ok(Processed {
        file,
        width: img.width(),
        height: img.height(),
        thumbnail,
    })
}

fn reader(bytes: &Bytes, fmt: ImageFormat, max_pixels: u64) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), fmt);
    let mut limits = Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // RGBA with 16 bits per channel, plus room for the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    reader
}

fn decode_error(e: image::ImageError, max_pixels: u64) -> ApiError {
    match e {
        image::ImageError::Limits(_) => bomb(max_pixels),
        _ => unreadable(),
    }
}

fn encode(img: &DynamicImage, fmt: ImageFormat) -> ApiResult<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    let result = match fmt {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            // JPEG has no alpha channel.
            img.to_rgb8().write_with_encoder(encoder)
        }
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP => {
            img.write_to(&mut out, ImageFormat::Png)
        }
        _ => return Err(unreadable()),
    };
    result.map_err(|e| {
        tracing::warn!(error = %e, "could not encode an image");
        unreadable()
    })?;
    Ok(out.into_inner())
}

/// The file without its metadata, or `None` when there was none to strip. Lossless: only
/// metadata segments and chunks go, the pixels are not re-encoded.
fn strip(bytes: &Bytes, fmt: ImageFormat) -> ApiResult<Option<Vec<u8>>> {
    match fmt {
        ImageFormat::Jpeg => {
            let mut jpeg =
                img_parts::jpeg::Jpeg::from_bytes(bytes.clone()).map_err(|_| unreadable())?;
            let before = jpeg.segments().len();
            // APP1 (EXIF, XMP), APP3..APP15 (IPTC in APP13, maker data), comments. APP0 (JFIF)
            // and APP2 (the ICC colour profile) stay: they change how the pixels look.
            for marker in (0xE1..=0xEF).filter(|m| *m != 0xE2).chain([0xFE]) {
                jpeg.remove_segments_by_marker(marker);
            }
            Ok((jpeg.segments().len() != before).then(|| jpeg.encoder().bytes().to_vec()))
        }
        ImageFormat::Png => {
            let mut png =
                img_parts::png::Png::from_bytes(bytes.clone()).map_err(|_| unreadable())?;
            let before = png.chunks().len();
            for kind in [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"] {
                png.remove_chunks_by_type(kind);
            }
            Ok((png.chunks().len() != before).then(|| png.encoder().bytes().to_vec()))
        }
        ImageFormat::WebP => {
            let mut webp =
                img_parts::webp::WebP::from_bytes(bytes.clone()).map_err(|_| unreadable())?;
            let had = webp.exif().is_some() || webp.has_chunk(*b"XMP ");
            if !had {
                return Ok(None);
            }
            let icc = webp.icc_profile();
            webp.remove_chunks_by_id(*b"XMP ");
            webp.set_exif(None);
            webp.set_icc_profile(icc);
            Ok(Some(webp.encoder().bytes().to_vec()))
        }
        // GIF carries no EXIF; its comment and application blocks are left as they are.
        _ => Ok(None),
    }
}
