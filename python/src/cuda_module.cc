// fastsoftmax._cuda: the CUDA backend for Python, imported only when a call meets a device array
// (or asks about the backend), so `import fastsoftmax` and the CPU paths never load it. Arrays come
// in through DLPack capsules or __cuda_array_interface__ dicts (dlpack.h); the fastsoftmax
// package allocates results in the caller's framework and passes the caller's current stream.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arguments.h"
#include "cuda/device_math.h"
#include "cuda/launch_plan.h"
#include "dlpack.h"
#include "fastsoftmax/cuda.h"
#include "validate.h"

namespace py = pybind11;
using namespace fastsoftmax;
using namespace fastsoftmax::python;

namespace {

ArrayView view_of(py::handle source, const char* name) {
  if (py::isinstance<py::capsule>(source)) return ArrayView::from_capsule(py::reinterpret_borrow<py::capsule>(source), name);
  if (py::isinstance<py::dict>(source)) {
    return ArrayView::from_cuda_array_interface(py::reinterpret_borrow<py::dict>(source), name);
  }
  throw py::type_error(std::string(name) + ": expected a DLPack capsule or a __cuda_array_interface__ dict");
}

bool on_cuda_device(const ArrayView& v) {
  return v.device_type == dlpack::kDLCUDA || v.device_type == dlpack::kDLCUDAManaged;
}

// Rows of an array along `axis`: n elements with stride 1, the other axes collapsed into one row
// stride (they must be: every layout a framework's contiguous or sliced tensor has).
struct Rows {
  std::int64_t rows = 1;
  std::int64_t n = 0;
  std::int64_t row_stride = 0;
  std::int64_t stride = 1;
};
Rows rows_of(const ArrayView& v, int axis, const char* name) {
  Rows r;
  r.n = v.shape[axis];
  r.stride = v.strides[axis];
  std::int64_t previous_stride = 0, previous_extent = 0;
  bool first = true;
  for (int d = 0; d < static_cast<int>(v.shape.size()); ++d) {
    if (d == axis) continue;
    r.rows *= v.shape[d];
    if (v.shape[d] == 1) continue;
    if (!first && previous_stride != v.strides[d] * v.shape[d]) {
      throw py::value_error(std::string(name) +
                            ": its rows cannot be described by one row stride on the device; make it contiguous "
                            "(e.g. x.contiguous())");
    }
    (void)previous_extent;
    previous_stride = v.strides[d];
    first = false;
  }
  r.row_stride = first ? r.n : previous_stride;
  return r;
}

cudaStream_t stream_of(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// Runs `body` with the array's device current, restoring the caller's after.
template <class F>
void on_device(const ArrayView& x, F&& body) {
  int device = x.device_id;
  if (device < 0) {  // __cuda_array_interface__: the pointer says which
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, x.data) != cudaSuccess) {
      cudaGetLastError();
      throw py::value_error("x: not a CUDA device pointer");
    }
    device = attributes.device;
  }
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    std::string reason;
    cuda::available(&reason);
    throw std::runtime_error("fastsoftmax: cannot use CUDA device " + std::to_string(device) + ": " + reason);
  }
  try {
    body();
  } catch (...) {
    cudaSetDevice(previous);
    throw;
  }
  cudaSetDevice(previous);
}

void check_status(Status status) {
  if (status == Status::kOk) return;
  if (status == Status::kDeviceError) throw std::runtime_error("fastsoftmax CUDA: " + cuda::last_error());
  throw py::value_error(cuda::last_error());
}

Operation operation_argument(const std::string& name) {
  if (name == "softmax") return Operation::kSoftmax;
  if (name == "log_softmax") return Operation::kLogSoftmax;
  if (name == "softmax_topk") return Operation::kSoftmaxTopk;
  throw py::value_error("unknown operation '" + name + "'; expected softmax, log_softmax or softmax_topk");
}

// The Call of a device array: x along `axis`, the outputs (when given) with their own rows.
Call device_call(Operation operation, const ArrayView& x, const ArrayView* out, const ArrayView* indices,
                 py::handle axis, py::handle algorithm, py::handle temperature, py::handle k, py::handle sorted) {
  if (x.shape.empty()) throw py::value_error("x must have at least one dimension");
  Call call;
  call.operation = operation;
  call.dtype = library_dtype(x, "x");
  const int a = axis_argument(axis, static_cast<int>(x.shape.size()));
  const Rows xr = rows_of(x, a, "x");
  call.rows = static_cast<std::size_t>(xr.rows);
  call.n = static_cast<std::size_t>(xr.n);
  call.inputs[0] = {x.data, xr.row_stride, xr.stride};
  call.options.algorithm = algorithm_argument(algorithm);
  call.options.temperature = temperature_argument(temperature);
  if (operation == Operation::kSoftmaxTopk) {
    call.k = k_argument(k);
    call.sorted = sorted_argument(sorted);
  }
  // The call's own rules (k, temperature, algorithm, dtype) before the outputs' shapes.
  if (const Status early = validate_device(call); early != Status::kOk && early != Status::kNullPointer) {
    throw py::value_error(error_message(early, call));
  }
  if (!on_cuda_device(x)) throw py::value_error("x is not in CUDA device memory");
  const ArrayView* outputs[2] = {out, indices};
  for (int i = 0; i < 2 && outputs[i] != nullptr; ++i) {
    const ArrayView& o = *outputs[i];
    const char* name = i == 0 ? "out" : "indices";
    if (!on_cuda_device(o)) throw py::value_error(std::string(name) + " is not in CUDA device memory");
    if (o.read_only) throw py::value_error(std::string(name) + " is read-only");
    if (x.device_id >= 0 && o.device_id >= 0 && o.device_id != x.device_id) {
      throw py::value_error(std::string(name) + " is on CUDA device " + std::to_string(o.device_id) +
                            ", x on device " + std::to_string(x.device_id) + ": they must be on the same device");
    }
    if (o.shape.size() != x.shape.size()) throw py::value_error(std::string(name) + " must have x's dimensions");
    if (i == 0 && o.dtype != x.dtype) {
      throw py::value_error("out has dtype " + o.dtype + "; the result's dtype is " + x.dtype);
    }
    if (i == 1 && o.dtype != "int64") throw py::value_error("indices must be int64, got " + o.dtype);
    const Rows orows = rows_of(o, a, name);
    if (orows.rows != xr.rows ||
        orows.n != (operation == Operation::kSoftmaxTopk ? call.k : xr.n)) {
      throw py::value_error(std::string(name) + " has the wrong shape for this call");
    }
    call.outputs[i] = {o.data, orows.row_stride, orows.stride};
  }
  return call;
}

void run_call(const std::string& operation_name, py::handle x_source, py::handle out_source,
              py::handle indices_source, py::handle axis, py::handle algorithm, py::handle temperature, py::handle k,
              py::handle sorted, std::uintptr_t stream) {
  const Operation operation = operation_argument(operation_name);
  const ArrayView x = view_of(x_source, "x");
  const ArrayView out = view_of(out_source, "out");
  ArrayView indices;
  if (operation == Operation::kSoftmaxTopk) indices = view_of(indices_source, "indices");
  const Call call = device_call(operation, x, &out, operation == Operation::kSoftmaxTopk ? &indices : nullptr,
                                axis, algorithm, temperature, k, sorted);
  on_device(x, [&] {
    Status status;
    {
      py::gil_scoped_release release;
      status = cuda::run(call, stream_of(stream));
    }
    check_status(status);
  });
}

Explanation explain_call(const std::string& operation_name, py::handle x_source, py::handle axis,
                         py::handle algorithm, py::handle temperature, py::handle k) {
  const Operation operation = operation_argument(operation_name);
  const ArrayView x = view_of(x_source, "x");
  if (operation == Operation::kSoftmaxTopk && k.is_none()) throw py::type_error("explain(function='softmax_topk') needs k");
  Call call = device_call(operation, x, nullptr, nullptr, axis, algorithm, temperature, k, py::bool_(true));
  // explain() reads no outputs; stand-ins with the layout a result allocated for x would have.
  call.outputs[0] = {x.data, static_cast<std::ptrdiff_t>(operation == Operation::kSoftmaxTopk ? call.k : call.n), 1};
  call.outputs[1] = call.outputs[0];
  return cuda::explain(call);
}

py::dict kernel_dict(const KernelInfo& k) {
  return py::dict(py::arg("name") = k.name, py::arg("dtype") = dtype_name(k.dtype),
                  py::arg("operation") = operation_name(k.operation), py::arg("algorithm") = k.algorithm,
                  py::arg("target") = k.implementation, py::arg("layout") = k.layout,
                  py::arg("implementation") = k.implementation);
}

// ---- Host-side checks of the device code (no GPU needed) --------------------------------------

DataType dtype_argument(const std::string& name) {
  if (name == "float32") return DataType::kFloat32;
  if (name == "float16") return DataType::kFloat16;
  if (name == "bfloat16") return DataType::kBFloat16;
  if (name == "float64") return DataType::kFloat64;
  throw py::value_error("unknown dtype '" + name + "'");
}

// The launch plan of a call described by its shape, on a device described by `limits` (None: the
// reference device), with its operand addresses aligned or not.
py::dict plan_for(const std::string& dtype, const std::string& operation, std::int64_t rows, std::int64_t n,
                  py::handle algorithm, std::int64_t k, bool aligned, py::object limits) {
  Call call;
  call.operation = operation_argument(operation);
  call.dtype = dtype_argument(dtype);
  call.rows = static_cast<std::size_t>(rows);
  call.n = static_cast<std::size_t>(n);
  call.k = k;
  call.options.algorithm = algorithm_argument(algorithm);
  // Stand-in addresses: only their alignment is read. Each operand gets its own span (at most
  // rows x n elements of 8 bytes, rounded to keep the alignment), as the overlap check asks.
  const std::uintptr_t base = aligned ? 0x10000 : 0x10002;
  const std::uintptr_t span = (static_cast<std::uintptr_t>(rows) * static_cast<std::uintptr_t>(n) * 8 + 255) & ~std::uintptr_t{255};
  const auto operand_at = [&](int i) {
    return Operand{reinterpret_cast<const void*>(base + i * span), static_cast<std::ptrdiff_t>(n), 1};
  };
  call.inputs[0] = operand_at(0);
  call.outputs[0] = operand_at(1);
  call.outputs[1] = operand_at(2);
  const Status refused = validate_device(call);
  if (refused != Status::kOk) throw py::value_error(error_message(refused, call));
  cuda::DeviceLimits device = cuda::reference_device();
  if (!limits.is_none()) {
    const py::dict d = limits.cast<py::dict>();
    device.name = "given limits";
    device.sm_count = d["sm_count"].cast<int>();
    device.max_threads_per_sm = d["max_threads_per_sm"].cast<int>();
    device.max_shared_per_block = d["max_shared_per_block"].cast<std::size_t>();
    device.shared_per_sm = d["shared_per_sm"].cast<std::size_t>();
    device.reference = false;
  }
  const cuda::LaunchPlan p = cuda::plan_launch(call, device);
  return py::dict(py::arg("family") = cuda::family_name(p.family), py::arg("algorithm") = algorithm_name(p.algorithm),
                  py::arg("threads") = p.threads, py::arg("grid") = p.grid, py::arg("lanes") = p.lanes,
                  py::arg("columns") = p.columns, py::arg("chunks") = p.chunks,
                  py::arg("chunk_elements") = p.chunk_elements, py::arg("shared_bytes") = p.shared_bytes,
                  py::arg("workspace_bytes") = p.workspace_bytes, py::arg("kernel") = p.kernel,
                  py::arg("reasons") = py::make_tuple(p.family_reason, p.algorithm_reason, p.grid_reason));
}

}  // namespace

void bind_emulation(py::module_& m);  // emulate.cc

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastsoftmax CUDA backend (use the functions of the fastsoftmax package instead)";
  py::module_::import("fastsoftmax._core");  // registers Explanation, shared with this module
  m.def("available",
        [] {
          std::string reason;
          const bool ok = cuda::available(&reason);
          return py::make_tuple(ok, reason);
        },
        "(True, '') when a CUDA driver and device are usable, else (False, why not).");
  m.def("implementation",
        [] {
          const ImplementationInfo i = cuda::implementation();
          return py::dict(py::arg("name") = i.name, py::arg("backend") = i.backend,
                          py::arg("description") = i.description, py::arg("required_features") = i.required_features,
                          py::arg("priority") = i.priority, py::arg("compiled") = i.compiled,
                          py::arg("supported") = i.supported);
        },
        "The CUDA backend as an implementation.");
  m.def("kernels",
        [] {
          py::list out;
          for (const KernelInfo& k : cuda::kernels()) out.append(kernel_dict(k));
          return out;
        },
        "The CUDA kernels of the catalogue.");
  m.def("run", &run_call,
        "run(operation, x, out, indices, axis, algorithm, temperature, k, sorted, stream): x, out, indices are "
        "DLPack capsules or __cuda_array_interface__ dicts (indices None unless softmax_topk); stream a "
        "cudaStream_t as an integer (0: the legacy default stream).");
  m.def("explain", &explain_call, "explain(operation, x, axis, algorithm, temperature, k) for a device array.");
  m.def("plan", &plan_for, py::arg("dtype"), py::arg("operation"), py::arg("rows"), py::arg("n"),
        py::arg("algorithm") = "auto", py::arg("k") = 1, py::arg("aligned") = true, py::arg("limits") = py::none(),
        "The launch plan of a call of this shape (host only: for tests and explain).");
  m.attr("MAX_TOPK") = cuda::kMaxTopk;
  m.attr("ARCHITECTURES") = FASTSOFTMAX_CUDA_ARCHITECTURES;
  bind_emulation(m);
}
