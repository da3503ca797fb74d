//! Data-parallel pre-training across processes and machines: the group of processes a
//! launcher (`mpirun`, `srun`) started, as the trainer's [`Collective`]. With the `mpi` feature
//! it is MPI's world; without it, only a single process.

use primer_trainer::collective::{Collective, SingleProcess};

#[cfg(feature = "mpi")]
mod mpi_world;

/// Environment variables by which launchers tell a process how many ranks it is one of:
/// Open MPI's `mpirun`, PMI (MPICH's Hydra, Slurm's PMI2), PMIx, and Slurm's `srun`.
const SIZE_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"];

/// How many ranks a launcher started this process as one of, by its environment (1 when none).
fn launched_ranks() -> usize {
    SIZE_VARIABLES
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(1)
}

/// The processes this one trains with.
pub enum World {
    /// A single process.
    SingleProcess(SingleProcess),
    /// MPI's world of ranks.
    #[cfg(feature = "mpi")]
    Mpi(mpi_world::MpiWorld),
}

impl World {
    /// Joins the ranks a launcher started, or stands alone when none did. A process launched as
    /// one of several ranks by a primer built without MPI fails, saying how to build one.
    pub fn join() -> anyhow::Result<World> {
        let ranks = launched_ranks();
        #[cfg(feature = "mpi")]
        if ranks > 1 {
            return Ok(World::Mpi(mpi_world::MpiWorld::init()?));
        }
        #[cfg(not(feature = "mpi"))]
        if ranks > 1 {
            anyhow::bail!(
                "launched as one of {ranks} ranks, but this primer was built without MPI: build it with `cargo build --release --features mpi` (needs libopenmpi-dev and libclang-dev)"
            );
        }
        Ok(World::SingleProcess(SingleProcess))
    }

    /// The group as the trainer takes it.
    pub fn collective(&self) -> &dyn Collective {
        match self {
            World::SingleProcess(alone) => alone,
            #[cfg(feature = "mpi")]
            World::Mpi(world) => world,
        }
    }

    /// Ends every rank of the group at once, with `code`: after an error on one rank, so the
    /// others do not wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        match self {
            World::SingleProcess(_) => std::process::exit(code),
            #[cfg(feature = "mpi")]
            World::Mpi(world) => world.abort(code),
        }
    }
}

/// Whether this primer can join MPI ranks, and the MPI library it was built with.
pub fn mpi_library() -> Option<String> {
    #[cfg(feature = "mpi")]
    return Some(mpi_world::library_version());
    #[cfg(not(feature = "mpi"))]
    None
}
