// The CUDA backend's entry points (fastsoftmax/cuda.h): the implementation object, validation and
// planning of device calls, explain(), and the typed functions over them.
#include <cuda_runtime_api.h>

#include <mutex>
#include <string>
#include <vector>

#include "cuda/execute.h"
#include "cuda/launch_plan.h"
#include "fastsoftmax/cuda.h"
#include "implementation.h"
#include "validate.h"

namespace fastsoftmax::cuda {
namespace {

static_assert(kMaxTopk == kDeviceMaxTopk && kMaxTopk == kTopkCapacity, "one largest k for the CUDA backend");

thread_local std::string last_error_message;

// The driver and device count, asked once: with no driver, cudaGetDeviceCount fails (and leaves
// the count unset, so it is read only on success).
struct Availability {
  bool available = false;
  std::string reason;
};
const Availability& availability() {
  static const Availability answer = [] {
    Availability a;
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess) {
      a.reason = std::string("no usable CUDA driver or device: cudaGetDeviceCount returned ") +
                 cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")";
      cudaGetLastError();  // clear the sticky error state of this thread
    } else if (count == 0) {
      a.reason = "no CUDA device: cudaGetDeviceCount found 0";
    } else {
      a.available = true;
    }
    return a;
  }();
  return answer;
}

class CudaImplementation final : public Implementation {
 public:
  const char* name() const override { return "cuda"; }
  const char* backend() const override { return "cuda"; }
  const char* description() const override {
    return "NVIDIA GPUs: warp, block and split-row kernels for the four algorithms, float32/float16/bfloat16";
  }
  const char* required_features() const override { return "a CUDA driver and device"; }
  int priority() const override { return 100; }
  bool compiled() const override { return true; }
  bool supported() const override { return availability().available; }
};
const CudaImplementation& cuda_implementation() {
  static const CudaImplementation instance;
  return instance;
}

// The limits of the current device, read once per device.
constexpr int kMaxDevices = 64;
bool device_limits(DeviceLimits* out, std::string* error) {
  int device = 0;
  *error = [&] {
    const cudaError_t e = cudaGetDevice(&device);
    return e == cudaSuccess ? std::string() : std::string("cudaGetDevice: ") + cudaGetErrorString(e);
  }();
  if (!error->empty() || device < 0 || device >= kMaxDevices) {
    if (error->empty()) *error = "device index out of range";
    return false;
  }
  static std::mutex mutex;
  static DeviceLimits cache[kMaxDevices];
  std::lock_guard<std::mutex> lock(mutex);
  DeviceLimits& limits = cache[device];
  if (limits.sm_count == 0) {
    int sms = 0, threads = 0, shared_block = 0, shared_sm = 0;
    cudaDeviceProp properties{};
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&shared_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&shared_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) != cudaSuccess ||
        cudaGetDeviceProperties(&properties, device) != cudaSuccess) {
      *error = std::string("reading the device's limits: ") + cudaGetErrorString(cudaGetLastError());
      return false;
    }
    limits.name = properties.name;
    limits.max_threads_per_sm = threads;
    limits.max_shared_per_block = static_cast<std::size_t>(shared_block);
    limits.shared_per_sm = static_cast<std::size_t>(shared_sm);
    limits.sm_count = sms;
  }
  *out = limits;
  return true;
}

// Operands must be device (or managed) memory: a host pointer would fault inside a kernel.
std::string host_operand(const Call& call) {
  auto check = [](const void* p, const char* name) -> std::string {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
      cudaGetLastError();
      return std::string(name) + " is not a CUDA pointer";
    }
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
      return std::string(name) + " is host memory, not device memory";
    }
    return "";
  };
  std::string e = check(call.inputs[0].data, "x");
  if (e.empty()) e = check(call.outputs[0].data, call.operation == Operation::kSoftmaxTopk ? "values" : "y");
  if (e.empty() && call.operation == Operation::kSoftmaxTopk) e = check(call.outputs[1].data, "indices");
  return e;
}

Status device_error(const std::string& message) {
  last_error_message = message;
  return Status::kDeviceError;
}

template <class T>
DataType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DataType::kFloat32;
  if constexpr (std::is_same_v<T, Float16>) return DataType::kFloat16;
  return DataType::kBFloat16;
}

template <class T>
Status rowwise(Operation operation, const T* x, T* y, const RowLayout& layout, const Options& options,
               cudaStream_t stream) {
  Call call;
  call.operation = operation;
  call.dtype = dtype_of<T>();
  call.rows = layout.rows;
  call.n = layout.n;
  call.inputs[0] = {x, layout.x_row_stride, layout.x_stride};
  call.outputs[0] = {y, layout.y_row_stride, layout.y_stride};
  call.options = options;
  return run(call, stream);
}

template <class T>
Status topk(const T* x, T* values, std::int64_t* indices, const RowLayout& layout, std::size_t k, bool sorted,
            const Options& options, cudaStream_t stream) {
  Call call;
  call.operation = Operation::kSoftmaxTopk;
  call.dtype = dtype_of<T>();
  call.rows = layout.rows;
  call.n = layout.n;
  call.inputs[0] = {x, layout.x_row_stride, layout.x_stride};
  call.outputs[0] = {values, layout.y_row_stride, layout.y_stride};
  call.outputs[1] = {indices, layout.y_row_stride, layout.y_stride};
  call.k = static_cast<std::int64_t>(k);
  call.sorted = sorted;
  call.options = options;
  return run(call, stream);
}

}  // namespace

bool available(std::string* reason) {
  if (reason != nullptr) *reason = availability().reason;
  return availability().available;
}

ImplementationInfo implementation() {
  const CudaImplementation& c = cuda_implementation();
  return {Isa::kAuto, c.name(), c.backend(), c.description(), c.required_features(), c.priority(),
          c.compiled(), c.supported()};
}

std::vector<KernelInfo> kernels() { return catalogue(); }

Status run(const Call& call, cudaStream_t stream) {
  const Status refused = validate_device(call);
  if (refused != Status::kOk) {
    last_error_message = error_message(refused, call);
    return refused;
  }
  if (call.rows == 0 || call.n == 0) return Status::kOk;
  std::string reason;
  if (!available(&reason)) return device_error(reason);
  if (const std::string e = host_operand(call); !e.empty()) {
    last_error_message = e;
    return Status::kDeviceHostMemory;
  }
  DeviceLimits limits;
  if (!device_limits(&limits, &reason)) return device_error(reason);
  const std::string e = execute_on_device(call, plan_launch(call, limits), stream);
  return e.empty() ? Status::kOk : device_error(e);
}

Explanation explain(const Call& call) {
  Explanation e;
  e.status = validate_device(call);
  if (e.status != Status::kOk) {
    e.error = error_message(e.status, call);
    return e;
  }
  DeviceLimits limits = reference_device();
  std::string device_reason = "no CUDA device here: planned for the reference device";
  std::string error;
  if (available() && device_limits(&limits, &error)) device_reason = "the current device: " + limits.name;
  const LaunchPlan p = plan_launch(call, limits);
  e.implementation = "cuda";
  e.kernel = p.kernel;
  e.algorithm = algorithm_name(p.algorithm);
  e.schedule = family_name(p.family);
  e.threads = p.threads;
  e.reasons = {{"implementation", "the data is in CUDA device memory; " + device_reason},
               {"kernel", "the family's kernel for " + std::string(dtype_name(call.dtype)) + " and the algorithm"},
               {"algorithm", p.algorithm_reason},
               {"schedule", p.family_reason},
               {"threads", "threads per block; grid: " + p.grid_reason}};
  return e;
}

std::string last_error() { return last_error_message; }

Status softmax(const float* x, float* y, const RowLayout& layout, const Options& options, cudaStream_t stream) {
  return rowwise(Operation::kSoftmax, x, y, layout, options, stream);
}
Status softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options, cudaStream_t stream) {
  return rowwise(Operation::kSoftmax, x, y, layout, options, stream);
}
Status softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options, cudaStream_t stream) {
  return rowwise(Operation::kSoftmax, x, y, layout, options, stream);
}
Status log_softmax(const float* x, float* y, const RowLayout& layout, const Options& options, cudaStream_t stream) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options, stream);
}
Status log_softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options,
                   cudaStream_t stream) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options, stream);
}
Status log_softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options,
                   cudaStream_t stream) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options, stream);
}
Status softmax_topk(const float* x, float* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options, cudaStream_t stream) {
  return topk(x, values, indices, layout, k, sorted, options, stream);
}
Status softmax_topk(const Float16* x, Float16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options, cudaStream_t stream) {
  return topk(x, values, indices, layout, k, sorted, options, stream);
}
Status softmax_topk(const BFloat16* x, BFloat16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options, cudaStream_t stream) {
  return topk(x, values, indices, layout, k, sorted, options, stream);
}

}  // namespace fastsoftmax::cuda
