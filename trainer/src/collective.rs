//! The processes that train one run together, data-parallel: each computes the gradients of its
//! share of a step's micro-batches, their sums are the step's, and every process applies the
//! same update. [`SingleProcess`] is the one process of an ordinary run; `primer-distributed` provides
//! MPI's. Sums go through host memory, so every backend takes part.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

/// A group of processes that train one run.
pub trait Collective {
    /// This process's place in the group: 0 writes the run (metrics, samples, status,
    /// checkpoints, weights); the others only compute.
    fn rank(&self) -> usize;

    /// How many processes the group has.
    fn size(&self) -> usize;

    /// Replaces `values` with their elementwise sums over the group.
    fn sum_f64(&self, values: &mut [f64]);

    /// Replaces `values` with their elementwise sums over the group.
    fn sum_f32(&self, values: &mut [f32]);

    /// Returns once every process of the group has called it.
    fn barrier(&self);

    /// Whether this process writes the run.
    fn writes(&self) -> bool {
        self.rank() == 0
    }

    /// Whether `flag` holds on any process of the group.
    fn any(&self, flag: bool) -> bool {
        if self.size() == 1 {
            return flag;
        }
        let mut count = [f64::from(u8::from(flag))];
        self.sum_f64(&mut count);
        count[0] > 0.0
    }
}

/// The single process of an ordinary run.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f64(&self, _values: &mut [f64]) {}

    fn sum_f32(&self, _values: &mut [f32]) {}

    fn barrier(&self) {}
}

/// The micro-batches of a step this process computes: `rank`, `rank + size`, ... of `micros`,
/// so that together the group computes each once, with the seeds one process would use.
pub fn my_micro_batches(collective: &dyn Collective, micros: usize) -> Vec<usize> {
    (collective.rank()..micros).step_by(collective.size()).collect()
}

/// Replaces every gradient with its sum over the group: one call of [`Collective::sum_f32`] on
/// all of them, laid end to end in the module's parameter order (the same in every process).
pub fn sum_gradients<M: Module>(module: &M, grads: &mut GradientsParams, collective: &dyn Collective) {
    if collective.size() == 1 {
        return;
    }
    struct Gather<'a> {
        grads: &'a GradientsParams,
        flat: Vec<f32>,
    }
    impl ModuleVisitor for Gather<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let data = grad.into_data().convert::<f32>();
                self.flat
                    .extend_from_slice(data.as_slice::<f32>().expect("f32 gradients"));
            }
        }
    }
    struct Scatter<'a> {
        grads: &'a mut GradientsParams,
        flat: &'a [f32],
        offset: usize,
    }
    impl ModuleVisitor for Scatter<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                let shape = grad.shape();
                let len = shape.num_elements();
                let values = self.flat[self.offset..self.offset + len].to_vec();
                self.offset += len;
                let summed = Tensor::<D>::from_data(TensorData::new(values, shape), &grad.device());
                self.grads.register(param.id, summed);
            }
        }
    }
    let mut gather = Gather {
        grads,
        flat: Vec::new(),
    };
    module.visit(&mut gather);
    let mut flat = gather.flat;
    collective.sum_f32(&mut flat);
    module.visit(&mut Scatter {
        grads,
        flat: &flat,
        offset: 0,
    });
}
