//! Data-parallel pre-training under `mpirun`: two ranks train exactly as one process does with
//! all of a step's micro-batches, a killed rank stops the job, and the run resumes under two
//! ranks; without MPI compiled in, a launched rank says how to build one that can join.

use std::path::Path;
use std::process::Output;

mod common;
use common::*;

/// A tiny masked-LM run (MLM draws uneven target counts per micro-batch, which the sum over
/// ranks must weigh as one process does) of 4 micro-batches per step.
fn tiny_args(run: &Path, steps: u64) -> String {
    format!(
        "pretrain --objective mlm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 2 --d-model 32 \
         --heads 2 --seq-len 32 --batch-size 4 --grad-accum 4 --steps {steps} --lr 3e-3 --warmup-steps 5 \
         --eval-every 10 --eval-batches 2 --checkpoint-every 5",
        shakespeare(),
        run.display()
    )
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs on a primer built with `--features mpi`, under Open MPI's `mpirun`.
#[cfg(feature = "mpi")]
mod with_mpi {
    use std::path::Path;
    use std::process::Command;

    use serde_json::Value;

    use super::*;

    /// `mpirun -n RANKS primer ARGS` on this machine: as root, more ranks than cores allowed, one
    /// thread per rank, shared memory without the kernel's cross-memory attach (which containers
    /// often forbid).
    fn mpirun(cache: &Path, ranks: usize, args: &str) -> Command {
        let mut command = Command::new("mpirun");
        command
            .args(["--allow-run-as-root", "--oversubscribe", "-n", &ranks.to_string()])
            .args(["-x", "PRIMER_DATA", "-x", "PRIMER_CACHE", "-x", "RAYON_NUM_THREADS"])
            .arg(env!("CARGO_BIN_EXE_primer"))
            .args(args.split_whitespace())
            .env("PRIMER_DATA", shared_data())
            .env("PRIMER_CACHE", cache)
            .env("RAYON_NUM_THREADS", "1")
            .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
            .env_remove("PRIMER_BACKEND");
        command
    }

    fn train_losses(run: &Path) -> Vec<f64> {
        records(&metrics(run), "train")
            .iter()
            .map(|record| record["loss"].as_f64().unwrap())
            .collect()
    }

    fn assert_close(what: &str, a: &[f64], b: &[f64], tolerance: f64) {
        assert_eq!(a.len(), b.len(), "{what}: {} values against {}", a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * y.abs().max(1.0),
                "{what} {i}: {x} against {y} (tolerance {tolerance})"
            );
        }
    }

    /// Every parameter of a finished run's model, in module order.
    fn parameters(run: &Path) -> Vec<f64> {
        use burn::module::{Module, ModuleVisitor, Param};
        use burn::tensor::{Device, Tensor};
        use primer_trainer::run_dir::RunDir;
        struct Collect(Vec<f64>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let data = param.val().into_data().convert::<f32>();
                self.0
                    .extend(data.as_slice::<f32>().unwrap().iter().map(|&v| f64::from(v)));
            }
        }
        let dir = RunDir::new(run);
        let config = dir.read_config().unwrap();
        let model = primer_trainer::networks::load_model(&dir, &config, &Device::flex()).unwrap();
        let mut collect = Collect(Vec::new());
        model.visit(&mut collect);
        collect.0
    }

    #[test]
    fn two_ranks_train_as_one_process_with_all_the_micro_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        let (single, ranked) = (tmp.path().join("single"), tmp.path().join("two-ranks"));
        primer_ok(cache, &tiny_args(&single, 20));
        let output = mpirun(cache, 2, &tiny_args(&ranked, 20)).output().unwrap();
        assert!(output.status.success(), "mpirun failed:\n{}", text(&output));
        assert!(text(&output).contains("on 2 ranks"), "{}", text(&output));

        // Rank 0 alone wrote the logs: one record per step, as one process writes them.
        assert_eq!(metrics(&ranked).len(), metrics(&single).len());
        assert_close(
            "train loss of step",
            &train_losses(&ranked),
            &train_losses(&single),
            1e-5,
        );
        assert_close("parameter", &parameters(&ranked), &parameters(&single), 1e-5);
        let grad_norms = |run: &Path| -> Vec<f64> {
            records(&metrics(run), "train")
                .iter()
                .map(|r| r["grad_norm"].as_f64().unwrap())
                .collect()
        };
        assert_close(
            "gradient norm of step",
            &grad_norms(&ranked),
            &grad_norms(&single),
            1e-4,
        );

        // A run halted by one process resumes under two ranks, logging what one process would.
        let switched = tmp.path().join("switched");
        primer_ok(cache, &format!("{} --halt-after 10", tiny_args(&switched, 20)));
        let output = mpirun(cache, 2, &format!("pretrain --resume {} --no-tui", switched.display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the resume under two ranks failed:\n{}",
            text(&output)
        );
        assert_close(
            "train loss of step",
            &train_losses(&switched),
            &train_losses(&single),
            1e-5,
        );

        // primer backends, launched as two ranks, says MPI is in and the world's size.
        let output = mpirun(cache, 2, "backends --json").output().unwrap();
        let lines = json_lines(&String::from_utf8_lossy(&output.stdout));
        let mpi: Vec<&Value> = lines.iter().filter(|l| l["data_parallel"] == "mpi").collect();
        assert_eq!(mpi.len(), 2, "one line from each rank: {}", text(&output));
        assert!(
            mpi.iter().all(|l| l["compiled"] == true && l["world_size"] == 2),
            "{mpi:?}"
        );

        // Refusals name the rank and the fix, and end every rank.
        let bad = mpirun(
            cache,
            2,
            &tiny_args(&tmp.path().join("bad"), 20).replace("--grad-accum 4", "--grad-accum 3"),
        )
        .output()
        .unwrap();
        assert!(!bad.status.success());
        let said = text(&bad);
        assert!(
            said.contains("error: rank 0 of 2: --grad-accum 3 does not split over 2 ranks"),
            "{said}"
        );
        assert!(!tmp.path().join("bad").exists(), "a refused run writes nothing");
        let other = mpirun(cache, 2, &format!("eval {}", single.display()))
            .output()
            .unwrap();
        assert!(
            !other.status.success() && text(&other).contains("only `primer pretrain` trains data-parallel"),
            "{}",
            text(&other)
        );
    }

    #[test]
    fn a_killed_rank_stops_the_job_and_the_run_resumes_exactly_under_two_ranks() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        let (reference, run) = (tmp.path().join("reference"), tmp.path().join("killed"));
        primer_ok(cache, &tiny_args(&reference, 40));

        let job = mpirun(cache, 2, &tiny_args(&run, 40))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for a checkpoint and a few steps past it, then kill the rank that does not write.
        let started = std::time::Instant::now();
        while records(&metrics_or_none(&run), "train").len() < 12 {
            assert!(started.elapsed().as_secs() < 120, "the ranks did not train");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let writer = primer_files::lock::holder(&run).expect("rank 0 holds the run's lock");
        let ranks = children_running_primer(job.id());
        assert_eq!(ranks.len(), 2, "two ranks under mpirun: {ranks:?}");
        let other = *ranks.iter().find(|&&pid| pid != writer).unwrap();
        Command::new("kill").args(["-9", &other.to_string()]).status().unwrap();
        let output = job.wait_with_output().unwrap();
        assert!(!output.status.success(), "the job ends when a rank dies");
        let said = text(&output);
        assert!(
            said.contains("rank 1") && said.contains("signal 9"),
            "mpirun names the rank and the cause:\n{said}"
        );
        // Every rank ends with its launcher (each checks every 200 ms).
        let ended = std::time::Instant::now();
        while primer_files::lock::is_locked(&run) {
            assert!(ended.elapsed().as_secs() < 10, "a rank runs on after mpirun ended");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }

        let output = mpirun(cache, 2, &format!("pretrain --resume {} --no-tui", run.display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "the resume failed:\n{}", text(&output));
        assert_close(
            "train loss of step",
            &train_losses(&run),
            &train_losses(&reference),
            1e-5,
        );
    }

    /// The metrics of a run that may not have started yet.
    fn metrics_or_none(run: &Path) -> Vec<Value> {
        std::fs::read_to_string(run.join("metrics.jsonl")).map_or(Vec::new(), |text| json_lines(&text))
    }

    /// The processes running `primer` among the children of `parent` (the ranks `mpirun` started).
    fn children_running_primer(parent: u32) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                let ppid = after_name.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                ppid == Some(parent) && cmdline.contains("pretrain")
            })
            .collect()
    }
}

#[cfg(not(feature = "mpi"))]
#[test]
fn a_rank_of_a_primer_built_without_mpi_says_how_to_build_one() {
    let tmp = tempfile::tempdir().unwrap();
    let output = primer_command(tmp.path(), &tiny_args(&tmp.path().join("run"), 2))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--features mpi"), "{}", text(&output));
    assert!(!tmp.path().join("run").exists());
}
