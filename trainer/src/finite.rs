//! Checks of a module's values.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The path of the first parameter of `module` holding a NaN or an infinity, if any: weights a
/// corrupt file or a diverged run left, which would only give NaN losses and garbage text.
pub fn first_non_finite<M: Module>(module: &M) -> Option<String> {
    /// The module path being visited, and the first bad parameter's path.
    struct Finder(Vec<String>, Option<String>);
    impl ModuleVisitor for Finder {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.1.is_none() && !param.val().is_finite().all().into_scalar::<bool>() {
                self.1 = Some(self.0.join("."));
            }
        }
    }
    let mut finder = Finder(Vec::new(), None);
    module.visit(&mut finder);
    finder.1
}
