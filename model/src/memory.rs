//! The machine's memory, which a model's sizes are checked against before anything is
//! allocated: a training run's in `primer-trainer`, an imported checkpoint's in `primer-hf`.

/// The machine's memory, bytes: the smaller of `MemTotal` and the cgroup's limit (Linux);
/// `None` where neither can be read.
pub fn machine_bytes() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kib: f64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok());
    Some(limit.map_or(total_kib * 1024.0, |limit| limit.min(total_kib * 1024.0)))
}
