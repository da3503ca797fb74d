//! What a request may name: run directories under the runs directory, input files under the
//! runs directory or a directory given with `--allow`, and outputs that are new paths under the
//! runs directory, never a way out of them through `..` or a link.

use std::path::{Component, Path, PathBuf};

use primer_files::roots::confine;

use crate::error::ApiError;
use crate::runs::{self, Kind};

/// The dashboard's own folder in the runs directory: the queue, its lock and the jobs' logs.
pub const DASHBOARD_DIR: &str = ".dashboard";

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

    /// Where the output `name` of a job of `command` is written: see [`output_path`].
    pub fn output_dir(&self, command: &str, name: &str) -> Result<PathBuf, ApiError> {
        output_path(&self.root, command, name)
    }

    /// The input `value` of option `key`: a name as it is when `named` says it is one and no
    /// file of that name exists; otherwise an existing path inside the runs directory or an
    /// allowed directory (checked as the CLI checks what its jobs read), made absolute.
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
        let roots: Vec<PathBuf> = std::iter::once(&self.root).chain(&self.allowed).cloned().collect();
        let canonical = confine(&roots, key, &absolute)
            .map_err(|refusal| ApiError::forbidden(refusal.to_string()))?
            .ok_or_else(|| {
                let what = if named {
                    "neither a named data set nor an existing path"
                } else {
                    "not an existing path"
                };
                ApiError::bad(format!("{key} {value:?} is {what}"))
            })?;
        Ok(canonical.display().to_string())
    }
}

/// The commands that may name an existing directory of their own kind as their output: to
/// resume it or, with `--overwrite`, replace it (the command itself then decides).
const OWN_KIND: [(&str, Kind); 3] = [
    ("pretrain", Kind::Pretrain),
    ("finetune", Kind::Finetune),
    ("compare", Kind::Report),
];

/// Where the output `name` (a file or folder, relative to the runs directory `root`) of a job
/// of `command` is written: a new path under `root` once every link on the way is resolved,
/// never `root` itself nor anything under `.dashboard`. An existing path is refused, but for a
/// run or report of the command's own kind (see [`OWN_KIND`]): a job never writes over a file
/// of another run, nor the dashboard's queue.
pub fn output_path(root: &Path, command: &str, name: &str) -> Result<PathBuf, ApiError> {
    let out = root.join(confined(name)?);
    let existing = out
        .ancestors()
        .find(|path| path.symlink_metadata().is_ok())
        .unwrap_or(root);
    let resolved = existing
        .canonicalize()
        .ok()
        .filter(|resolved| resolved.starts_with(root))
        .ok_or_else(|| {
            ApiError::forbidden(format!(
                "--out {name:?} leads outside the runs directory through a link"
            ))
        })?;
    let dashboard = root.join(DASHBOARD_DIR);
    if out.starts_with(&dashboard) || resolved.starts_with(&dashboard) {
        return Err(ApiError::forbidden(format!(
            "--out {name:?} is in the dashboard's own folder {DASHBOARD_DIR}: give a new path under the runs directory"
        )));
    }
    if existing != out {
        return Ok(out);
    }
    if resolved == root {
        return Err(ApiError::forbidden(format!(
            "--out {name:?} is the runs directory itself: give a new path under it"
        )));
    }
    let own = OWN_KIND
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, kind)| *kind);
    if own.is_some() && runs::Config::of(&resolved).map(|config| config.kind()) == own {
        return Ok(out);
    }
    Err(ApiError::forbidden(format!(
        "--out {name:?} already exists under the runs directory: a job writes only new paths (pretrain, finetune and compare may name a run of their own kind to resume or replace it)"
    )))
}
