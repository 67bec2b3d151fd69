//! Loading and verifying a model bundle directory (`manifest.json` + ONNX files).
//!
//! A bundle is refused, with the reason, when its format version or preprocessing version
//! is not the one this build implements, when a path leaves the directory, or when any
//! listed file is missing or its size or SHA-256 differs from the manifest.

use std::path::{Path, PathBuf};

use sleeve_shared::fsutil::verify_model_file;
use sleeve_shared::manifest::{
    BUNDLE_FORMAT_VERSION, BundleManifest, MANIFEST_FILE, MIN_BUNDLE_FORMAT_VERSION, ModelEntry,
    ModelFile, is_supported_format,
};

use crate::error::{EdgeError, Result};

/// A verified bundle: its directory and manifest.
#[derive(Clone, Debug)]
pub struct Bundle {
    dir: PathBuf,
    manifest: BundleManifest,
}

impl Bundle {
    /// Reads `dir/manifest.json`, validates it and checks every listed file's size and
    /// SHA-256.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|error| EdgeError::BundleIo {
                path: manifest_path.clone(),
                error,
            })?;
        let refuse = |reason: String| EdgeError::BundleRefused {
            path: dir.to_path_buf(),
            reason,
        };
        // Look at the version before the schema, so an old or new bundle gets a clear
        // "format version" message instead of a confusing missing-field error.
        let raw: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| refuse(format!("{MANIFEST_FILE} is not JSON: {e}")))?;
        let version = raw.get("format_version");
        match version.map(|v| (v, v.as_u64())) {
            Some((_, Some(v))) if is_supported_format(v) => {}
            Some((_, Some(v))) => {
                return Err(refuse(format!(
                    "bundle format version {v} is not supported (this build reads \
                     {MIN_BUNDLE_FORMAT_VERSION} to {BUNDLE_FORMAT_VERSION})"
                )));
            }
            Some((v, None)) => {
                return Err(refuse(format!(
                    "{MANIFEST_FILE} format_version must be a whole number like {BUNDLE_FORMAT_VERSION}, not {v}"
                )));
            }
            None => return Err(refuse(format!("{MANIFEST_FILE} has no format_version"))),
        }
        let manifest = BundleManifest::from_json(&text).map_err(|e| refuse(e.to_string()))?;
        let bundle = Self {
            dir: dir.to_path_buf(),
            manifest,
        };
        for (role, entry) in bundle.models() {
            for file in &entry.files {
                bundle.verify_file(role, file)?;
            }
        }
        tracing::info!(bundle = %dir.display(), name = %bundle.manifest.name, "bundle verified");
        Ok(bundle)
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    /// Absolute path of a bundle file.
    pub fn path_of(&self, file: &ModelFile) -> PathBuf {
        self.dir.join(&file.path)
    }

    /// The models in the bundle with their role names (`"joint"` for a format-2 joint
    /// model).
    pub fn models(&self) -> Vec<(&'static str, &ModelEntry)> {
        let mut v = vec![("classifier", &self.manifest.classifier)];
        if let Some(d) = &self.manifest.detector {
            v.push(("detector", &d.model));
        }
        if let Some(j) = &self.manifest.joint {
            v.push(("joint", &j.model));
        }
        v
    }

    fn verify_file(&self, role: &str, file: &ModelFile) -> Result<()> {
        verify_model_file(&self.dir, file).map_err(|e| EdgeError::BundleRefused {
            path: self.dir.clone(),
            reason: format!("{role} file {e}"),
        })
    }
}
