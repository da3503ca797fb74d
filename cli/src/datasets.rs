//! `primer datasets`: the named data sets `--corpus` accepts.

/// Runs `primer datasets`: one line per named data set.
pub fn run() {
    for dataset in primer_datasets::named::REGISTRY {
        println!("{:<20} {}", dataset.name, dataset.about);
    }
}
