//! What a request may name: run directories under the runs directory, and input files under the
//! runs directory or a directory given with `--allow`, never a way out of them through `..` or a
//! link.

use std::path::{Component, Path, PathBuf};

use crate::error::ApiError;
use crate::runs;

/// The places a dashboard reads and writes.
pub struct Roots {
    /// The runs directory (canonical).
    pub root: PathBuf,
    /// Other directories whose files jobs may read (canonical).
    pub allowed: Vec<PathBuf>,
}

/// A relative id that stays inside the root: no absolute paths, no `..`.
pub fn confined(id: &str) -> Result<PathBuf, ApiError> {
    let path = Path::new(id);
    if id.is_empty() || path.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ApiError::forbidden(format!(
            "{id:?}: give a path relative to the runs directory, without `..`"
        )));
    }
    Ok(path.to_path_buf())
}

impl Roots {
    /// The directory of an existing run or report.
    pub fn run_dir(&self, id: &str) -> Result<PathBuf, ApiError> {
        let dir = self.root.join(confined(id)?);
        let canonical = dir
            .canonicalize()
            .map_err(|_| ApiError::not_found(format!("no run {id:?} under the runs directory")))?;
        if !canonical.starts_with(&self.root) {
            return Err(ApiError::forbidden(format!("{id:?} leads outside the runs directory")));
        }
        if runs::escapes(&self.root, &canonical) {
            return Err(ApiError::forbidden(format!(
                "{id:?} holds a link that leads outside the runs directory"
            )));
        }
        if runs::config_path(&canonical).is_none() {
            return Err(ApiError::not_found(format!("{id:?} is not a run directory")));
        }
        Ok(canonical)
    }

    /// Where a run named `name` is created: under the runs directory once every link on the
    /// way is resolved, so a linked folder cannot send it elsewhere.
    pub fn output_dir(&self, name: &str) -> Result<PathBuf, ApiError> {
        let out = self.root.join(confined(name)?);
        let existing = out.ancestors().find(|path| path.exists()).unwrap_or(&self.root);
        if !runs::inside(&self.root, existing) {
            return Err(ApiError::forbidden(format!(
                "{name:?} leads outside the runs directory through a link"
            )));
        }
        Ok(out)
    }

    /// The input `value` of option `key`: a name as it is when `named` says it is one and no
    /// file of that name exists; otherwise an existing path inside the runs directory or an
    /// allowed directory, made absolute.
    pub fn input(&self, key: &str, value: &str, named: bool) -> Result<String, ApiError> {
        let path = Path::new(value);
        if named && !path.exists() {
            return Ok(value.to_string());
        }
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let canonical = absolute.canonicalize().map_err(|_| {
            let what = if named {
                "neither a named data set nor an existing path"
            } else {
                "not an existing path"
            };
            ApiError::bad(format!("{key} {value:?} is {what}"))
        })?;
        if !std::iter::once(&self.root)
            .chain(&self.allowed)
            .any(|root| canonical.starts_with(root))
        {
            return Err(ApiError::forbidden(format!(
                "{key} {value:?} is outside the dashboard's allowed roots (--runs and --allow)"
            )));
        }
        Ok(canonical.display().to_string())
    }
}
