//! MPI's world of ranks, through rsmpi.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use primer_trainer::collective::Collective;

/// `MPI_COMM_WORLD`, and the MPI environment it lives in (finalized when dropped).
pub struct MpiWorld {
    world: SimpleCommunicator,
    _universe: Universe,
}

impl MpiWorld {
    /// Initialises MPI. Only the main thread calls MPI (`MPI_THREAD_FUNNELED`); the backends'
    /// own threads never do.
    pub fn init() -> anyhow::Result<Self> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| anyhow::anyhow!("MPI was initialised already in this process"))?;
        let world = universe.world();
        end_with_the_launcher(world.rank(), world.size());
        Ok(Self {
            world,
            _universe: universe,
        })
    }

    /// `MPI_Abort` on the world.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn barrier(&self) {
        self.world.barrier();
    }
}

/// How often a rank checks that its launcher still runs.
const LAUNCHER_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// Ends this rank when the process that launched it (`mpirun`, or Slurm's step daemon) ends.
/// When a rank dies, `mpirun` signals the others and exits; one waiting in a collective for the
/// dead rank would otherwise wait forever, holding the run's lock. A checkpoint being written
/// then is lost whole (they are written atomically), and the run resumes from the one before.
fn end_with_the_launcher(rank: i32, size: i32) {
    let launcher = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(LAUNCHER_CHECK);
            if std::os::unix::process::parent_id() != launcher {
                eprintln!("error: rank {rank} of {size}: its launcher (process {launcher}) has ended: stopping");
                std::process::exit(1);
            }
        }
    });
}

/// The MPI library's own name and version (`Open MPI v4.1.4, ...`), its first line.
pub fn library_version() -> String {
    mpi::environment::library_version()
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}
