// libtorch's fused AdamW (`at::_fused_adamw_`, what `torch.optim.AdamW(fused=True)` runs) on one
// parameter, in place, for primer-kernels: tch 0.22 generates no bindings for tensor-list ops.
// Tensors arrive as tch passes them, pointers to `at::Tensor`; an error comes back as a
// message the caller frees with `primer_free_error`.

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

extern "C" char *primer_fused_adamw(at::Tensor *param, const at::Tensor *grad, at::Tensor *moment_1,
                                    at::Tensor *moment_2, double lr, double beta_1, double beta_2,
                                    double weight_decay, double epsilon, int64_t time) {
  try {
    // The kernel reads the update's number from a float tensor on the parameter's device.
    at::Tensor steps = at::full({}, static_cast<double>(time), param->options().dtype(at::kFloat));
    at::_fused_adamw_({*param}, {*grad}, {*moment_1}, {*moment_2}, {}, {steps}, lr, beta_1, beta_2,
                      weight_decay, epsilon, /*amsgrad=*/false, /*maximize=*/false);
    return nullptr;
  } catch (const std::exception &error) {
    return strdup(error.what());
  }
}

extern "C" void primer_free_error(char *error) { free(error); }
