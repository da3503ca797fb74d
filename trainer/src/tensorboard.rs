//! `RUN_DIR/tensorboard/events.out.tfevents.*`: the metrics as TensorBoard scalars, for users of
//! TensorBoard or of W&B (`wandb sync --sync-tensorboard`).
//!
//! An event file is a sequence of TFRecords, each an `Event` protocol buffer: the first holds
//! the file version, every later one a `Summary` of scalar values at one step. Each resumed
//! process writes a new file; TensorBoard reads every file of the directory in order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde::Serialize;

use crate::error::TrainError;

/// `tensorflow.Event`, with the two members of its `what` union that primer writes.
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` holding a scalar.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// Fields of a metrics record that are its coordinates, not values to plot.
const COORDINATES: [&str; 2] = ["step", "split"];

/// Writes the metrics records of one process to a new event file.
pub struct TensorBoardWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl TensorBoardWriter {
    /// Creates a new event file in `dir` (created if missing).
    pub fn create(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "localhost".into());
        let name = format!(
            "events.out.tfevents.{}.{}.{}.{}",
            now.as_secs(),
            host.trim(),
            std::process::id(),
            now.subsec_nanos()
        );
        let path = dir.join(name);
        let file = File::create_new(&path).map_err(|e| TrainError::io(&path, e))?;
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        writer.write_event(&Event {
            wall_time: now.as_secs_f64(),
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        })?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every number of `record` (a metrics record with a `step`) as a scalar tagged
    /// `{split}/{name}` (e.g. `train/loss`, `valid/bpb`) at that step, the numbers of a nested
    /// table (`objective_metrics`) by their own names (`valid/discriminator_auc`), and flushes.
    pub fn append<R: Serialize>(&mut self, record: &R) -> Result<(), TrainError> {
        let serde_json::Value::Object(fields) = serde_json::to_value(record).expect("records serialize") else {
            panic!("a metrics record serializes to an object");
        };
        let step = fields
            .get("step")
            .and_then(serde_json::Value::as_i64)
            .expect("metrics records have a step");
        let prefix = fields
            .get("split")
            .and_then(serde_json::Value::as_str)
            .map_or(String::new(), |split| format!("{split}/"));
        let numbers = fields
            .iter()
            .filter(|(name, _)| !COORDINATES.contains(&name.as_str()))
            .flat_map(|(name, value)| match value {
                serde_json::Value::Object(table) => table.iter().collect(),
                _ => vec![(name, value)],
            });
        let value = numbers
            .filter_map(|(name, value)| {
                Some(SummaryValue {
                    tag: format!("{prefix}{name}"),
                    simple_value: Some(value.as_f64()? as f32),
                })
            })
            .collect();
        let wall_time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.write_event(&Event {
            wall_time: wall_time.as_secs_f64(),
            step,
            file_version: None,
            summary: Some(Summary { value }),
        })
    }

    /// Appends one TFRecord: length, its masked CRC-32C, the event, the event's masked CRC-32C.
    fn write_event(&mut self, event: &Event) -> Result<(), TrainError> {
        let data = event.encode_to_vec();
        let length = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&length);
        record.extend_from_slice(&masked_crc(&length).to_le_bytes());
        record.extend_from_slice(&data);
        record.extend_from_slice(&masked_crc(&data).to_le_bytes());
        self.out
            .write_all(&record)
            .and_then(|()| self.out.flush())
            .map_err(|e| TrainError::io(&self.path, e))
    }
}

/// TFRecord's checksum: CRC-32C, rotated and offset so that CRCs of CRCs stay distinct.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an event file into its records' payloads, checking lengths and checksums.
    fn read_events(bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (length, tail) = rest.split_at(8);
            let len = u64::from_le_bytes(length.try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(tail[..4].try_into().unwrap()), masked_crc(length));
            let data = &tail[4..4 + len];
            assert_eq!(
                u32::from_le_bytes(tail[4 + len..8 + len].try_into().unwrap()),
                masked_crc(data)
            );
            events.push(Event::decode(data).unwrap());
            rest = &tail[8 + len..];
        }
        events
    }

    #[test]
    fn writes_a_version_event_then_scalars_per_record() {
        #[derive(Serialize)]
        struct Record {
            step: u64,
            split: &'static str,
            loss: f64,
            grad_norm: Option<f64>,
            objective_metrics: std::collections::BTreeMap<&'static str, f64>,
        }
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TensorBoardWriter::create(dir.path()).unwrap();
        let record = Record {
            step: 7,
            split: "train",
            loss: 0.0,
            grad_norm: None,
            objective_metrics: [("discriminator_auc", 0.75)].into(),
        };
        writer.append(&record).unwrap();
        let events = read_events(&std::fs::read(writer.path()).unwrap());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!(events[1].step, 7);
        let values = &events[1].summary.as_ref().unwrap().value;
        assert_eq!(
            values.len(),
            2,
            "the step, the split and missing values are not scalars"
        );
        assert_eq!(values[0].tag, "train/loss");
        assert_eq!(values[0].simple_value, Some(0.0), "a zero is written, not dropped");
        assert_eq!(
            values[1].tag, "train/discriminator_auc",
            "an objective's own metrics by their names"
        );
        assert_eq!(values[1].simple_value, Some(0.75));
    }
}
