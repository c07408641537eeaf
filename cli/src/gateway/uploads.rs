//! Multipart uploads in progress: each client upload is one backend upload of a
//! table-layout object, whose parts the client sizes as it likes. The gateway keeps the
//! object key and each part's record (core's [`TableUpload`]) in memory until the upload
//! completes or aborts (or sits unused for a week), so an upload must finish on the gateway
//! process that began it (a restart answers NoSuchUpload and the client starts over;
//! SPEC.md §18.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isec_core::ObjectKey;
use isec_core::s3::gateway::{PartRecord, TableUpload};

use crate::s3::object::Carried;

/// One client upload.
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub okey: ObjectKey,
    /// The object's metadata (user metadata and the envelope).
    pub meta: Vec<(String, String)>,
    pub headers: Carried,
    pub table: TableUpload,
    /// When the client began it.
    pub initiated: std::time::SystemTime,
}

/// How long an upload's key is kept without a request: past it the upload is forgotten (its
/// object key wiped), as an S3 lifecycle rule would abort the backend upload.
const IDLE_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The uploads this process began, by upload id (the backend's), with their last use.
#[derive(Default)]
pub struct Uploads(Mutex<HashMap<String, (Shared, Instant)>>);

/// One upload, shared by its requests.
type Shared = Arc<Mutex<Upload>>;

impl Uploads {
    pub fn insert(&self, id: &str, up: Upload) {
        if let Ok(mut m) = self.0.lock() {
            let now = Instant::now();
            m.retain(|_, (_, used)| now.duration_since(*used) < IDLE_LIMIT);
            m.insert(id.to_string(), (Arc::new(Mutex::new(up)), now));
        }
    }

    /// The upload `id` of `bucket/key`.
    pub fn get(&self, id: &str, bucket: &str, key: &str) -> Option<Shared> {
        let up = {
            let mut m = self.0.lock().ok()?;
            let (up, used) = m.get_mut(id)?;
            *used = Instant::now();
            up.clone()
        };
        let same = up.lock().ok().is_some_and(|u| u.bucket == bucket && u.key == key);
        same.then_some(up)
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }

    /// The open uploads of `bucket` whose key starts with `prefix`, in key order:
    /// `(key, id, initiated)`.
    pub fn listed(&self, bucket: &str, prefix: &str) -> Vec<(String, String, std::time::SystemTime)> {
        let Ok(m) = self.0.lock() else { return Vec::new() };
        let mut v: Vec<(String, String, std::time::SystemTime)> = m
            .iter()
            .filter_map(|(id, (u, _))| {
                let u = u.lock().ok()?;
                (u.bucket == bucket && u.key.starts_with(prefix)).then(|| (u.key.clone(), id.clone(), u.initiated))
            })
            .collect();
        v.sort();
        v
    }

    /// Every open upload: `(id, bucket, key)`.
    pub fn all(&self) -> Vec<(String, String, String)> {
        let Ok(m) = self.0.lock() else { return Vec::new() };
        m.iter()
            .filter_map(|(id, (u, _))| u.lock().ok().map(|u| (id.clone(), u.bucket.clone(), u.key.clone())))
            .collect()
    }
}

/// Records part `n` of an upload.
pub fn record(up: &Mutex<Upload>, n: u32, part: PartRecord) {
    if let Ok(mut u) = up.lock() {
        u.table.record(n, part);
    }
}
