// The public entry points: every call becomes a Call, which is validated and planned once
// (plan.cc) and run by the CPU backend (cpu/execute.cc); explain() describes the same plan.
#include <limits>
#include <string>
#include <vector>

#include "catalogue.h"
#include "cpu/execute.h"
#include "cpu/normalizer.h"
#include "cpu/targets.h"
#include "kernels/half.h"
#include "plan.h"
#include "speed_bound.h"

namespace fastsoftmax {
namespace {

template <class T>
constexpr DataType dtype_of() {
  if constexpr (std::is_same_v<T, float>) {
    return DataType::kFloat32;
  } else if constexpr (std::is_same_v<T, double>) {
    return DataType::kFloat64;
  } else if constexpr (std::is_same_v<T, Float16>) {
    return DataType::kFloat16;
  } else {
    return DataType::kBFloat16;
  }
}

// A typed function's call: x's layout from the x fields, every output's from the y fields.
template <class T>
Call typed_call(Operation operation, const T* x, const RowLayout& layout, const Options& options) {
  Call call;
  call.operation = operation;
  call.dtype = dtype_of<T>();
  call.rows = layout.rows;
  call.n = layout.n;
  call.inputs[0] = {x, layout.x_row_stride, layout.x_stride};
  call.options = options;
  return call;
}

template <class T>
Status rowwise(Operation operation, const T* x, T* y, const RowLayout& layout, const Options& options) {
  Call call = typed_call(operation, x, layout, options);
  call.outputs[0] = {y, layout.y_row_stride, layout.y_stride};
  return run(call);
}

template <class T>
Status topk(const T* x, T* values, std::int64_t* indices, const RowLayout& layout, std::size_t k, bool sorted,
            const Options& options) {
  Call call = typed_call(Operation::kSoftmaxTopk, x, layout, options);
  call.outputs[0] = {values, layout.y_row_stride, layout.y_stride};
  call.outputs[1] = {indices, layout.y_row_stride, layout.y_stride};
  call.k = static_cast<std::int64_t>(k);
  call.sorted = sorted;
  return run(call);
}

// logsumexp and softmax_state: one result per row, at out + r * layout.y_row_stride.
template <class T, class Out>
Status per_row(Operation operation, const T* x, Out* out, const RowLayout& layout, const Options& options) {
  Call call = typed_call(operation, x, layout, options);
  call.outputs[0] = {out, layout.y_row_stride, 1};
  return run(call);
}

template <class T>
Status from_state(Operation operation, const T* x, const NormalizerState* states, T* y, const RowLayout& layout,
                  const Options& options) {
  Call call = typed_call(operation, x, layout, options);
  call.inputs[1] = {states, layout.y_row_stride, 1};
  call.outputs[0] = {y, layout.y_row_stride, layout.y_stride};
  return run(call);
}

template <class T>
Status sample_rows(const T* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,
                   std::uint64_t seed, const Options& options) {
  Call call = typed_call(Operation::kSample, x, layout, options);
  call.inputs[1] = {&params, 0, 1};  // every row's parameters
  call.outputs[0] = {ids, layout.y_row_stride, 1};
  call.seed = seed;
  return run(call);
}

std::vector<Isa> isas_where(bool (CpuTarget::*property)() const) {
  std::vector<Isa> isas;
  for (int i = 0; i < kNumCpuTargets; ++i) {
    if ((cpu_targets()[i]->*property)()) isas.push_back(cpu_targets()[i]->isa());
  }
  return isas;
}

}  // namespace

Status run(const Call& call) {
  const Plan planned = plan(call);
  if (planned.status != Status::kOk) return planned.status;
  // Empty rows still have a logsumexp (-inf), a state (the empty one) and a sample (none to draw).
  const bool per_row_results = call.operation == Operation::kLogSumExp || call.operation == Operation::kSoftmaxState ||
                               call.operation == Operation::kSample;
  if (call.rows > 0 && (call.n > 0 || per_row_results)) execute_on_cpu(call, planned);
  return Status::kOk;
}

Explanation explain(const Call& call) {
  Explanation e;
  const Plan planned = plan(call);
  e.status = planned.status;
  if (planned.status != Status::kOk) {
    e.error = error_message(planned.status, call);
    return e;
  }
  e.implementation = planned.implementation->name();
  e.kernel = planned_kernel_name(call, planned);
  e.algorithm = algorithm_name(planned.algorithm);
  e.schedule = schedule_name(planned.schedule);
  e.threads = static_cast<int>(planned.threads);
  e.reasons = {{"implementation", planned.implementation_reason},
               {"kernel", planned.kernel_reason},
               {"algorithm", planned.algorithm_reason},
               {"schedule", planned.schedule_reason},
               {"threads", planned.threads_reason}};
  return e;
}

std::string Explanation::text() const {
  if (status != Status::kOk) return "error: " + error + "\n";
  const std::string values[] = {implementation, kernel, algorithm, schedule, std::to_string(threads)};
  std::string out;
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    out += reasons[i].first + ": " + values[i] + " (" + reasons[i].second + ")\n";
  }
  return out;
}

const char* status_message(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kUnknownOperation: return "Call::operation is not an Operation value";
    case Status::kUnknownDtype: return "Call::dtype is not a DataType value";
    case Status::kUnknownAlgorithm: return "the algorithm is not an Algorithm value";
    case Status::kUnknownIsa: return "the isa is not an Isa value";
    case Status::kNegativeThreads: return "num_threads is negative (0 means get_num_threads())";
    case Status::kBadTemperature: return "the temperature is not finite and > 0";
    case Status::kNotFusedAlgorithm:
      return "softmax_topk, topk_softmax and sample run their own passes: algorithm must be kAuto or kOnline";
    case Status::kBadK: return "k is not in 1..n (the row length)";
    case Status::kNullPointer: return "an input or output pointer is null";
    case Status::kOutputOverlapsItself:
      return "an output's strides would write several results to one element (a stride of 0, or rows that overlap)";
    case Status::kOverlappingMemory:
      return "an output overlaps x (without being x exactly, in place) or another output";
    case Status::kIsaNotCompiled: return "the isa asked for is not compiled into this build";
    case Status::kIsaNotSupported: return "the isa asked for is not supported by this CPU";
    case Status::kBadEnvironmentIsa: return "FASTSOFTMAX_ISA names no ISA, or one not available here";
    case Status::kDeviceDtype: return "float64 is not supported on CUDA devices (computed in float32)";
    case Status::kDeviceElementStride: return "the elements of a row are not adjacent in device memory";
    case Status::kDeviceTopkTooLarge: return "k is above the CUDA kernels' capacity (cuda::kMaxTopk)";
    case Status::kMismatchedStates: return "the states to merge have different temperatures";
    case Status::kBadRouterGroups:
      return "the expert groups do not divide n, topk_group is not in 1..groups, or k exceeds their experts";
    case Status::kBadRouterOptions: return "an unknown Scoring, or a scaling that is not finite";
    case Status::kBadSamplingParams:
      return "a row's sampling parameters are out of range (temperature finite and >= 0, top_k >= -1, top_p in "
             "(0, 1], min_p in [0, 1])";
    case Status::kDeviceOperation: return "the CUDA backend does not run this operation, or masks (CPU only)";
    case Status::kDeviceHostMemory: return "a pointer of a device call is not device (or managed) memory";
    case Status::kDeviceError: return "the CUDA runtime failed (fastsoftmax::cuda::last_error() says how)";
  }
  return "unknown status";
}

Status softmax(const float* x, float* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kSoftmax, x, y, layout, options);
}
Status softmax(const double* x, double* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kSoftmax, x, y, layout, options);
}
Status softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kSoftmax, x, y, layout, options);
}
Status softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kSoftmax, x, y, layout, options);
}
Status log_softmax(const float* x, float* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options);
}
Status log_softmax(const double* x, double* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options);
}
Status log_softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options);
}
Status log_softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options) {
  return rowwise(Operation::kLogSoftmax, x, y, layout, options);
}

Status softmax_topk(const float* x, float* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options) {
  return topk(x, values, indices, layout, k, sorted, options);
}
Status softmax_topk(const double* x, double* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options) {
  return topk(x, values, indices, layout, k, sorted, options);
}
Status softmax_topk(const Float16* x, Float16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options) {
  return topk(x, values, indices, layout, k, sorted, options);
}
Status softmax_topk(const BFloat16* x, BFloat16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted, const Options& options) {
  return topk(x, values, indices, layout, k, sorted, options);
}

#define FASTSOFTMAX_STATE_FUNCTIONS(T)                                                                       \
  Status logsumexp(const T* x, T* out, const RowLayout& layout, const Options& options) {                    \
    return per_row(Operation::kLogSumExp, x, out, layout, options);                                           \
  }                                                                                                           \
  Status softmax_state(const T* x, NormalizerState* states, const RowLayout& layout, const Options& options) { \
    return per_row(Operation::kSoftmaxState, x, states, layout, options);                                     \
  }                                                                                                           \
  Status softmax_from_state(const T* x, const NormalizerState* states, T* y, const RowLayout& layout,         \
                            const Options& options) {                                                         \
    return from_state(Operation::kSoftmaxFromState, x, states, y, layout, options);                           \
  }                                                                                                           \
  Status log_softmax_from_state(const T* x, const NormalizerState* states, T* y, const RowLayout& layout,     \
                                const Options& options) {                                                     \
    return from_state(Operation::kLogSoftmaxFromState, x, states, y, layout, options);                        \
  }
FASTSOFTMAX_STATE_FUNCTIONS(float)
FASTSOFTMAX_STATE_FUNCTIONS(double)
FASTSOFTMAX_STATE_FUNCTIONS(Float16)
FASTSOFTMAX_STATE_FUNCTIONS(BFloat16)
#undef FASTSOFTMAX_STATE_FUNCTIONS

#define FASTSOFTMAX_SAMPLE_FUNCTION(T)                                                                     \
  Status sample(const T* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,     \
                std::uint64_t seed, const Options& options) {                                             \
    return sample_rows(x, ids, layout, params, seed, options);                                            \
  }
FASTSOFTMAX_SAMPLE_FUNCTION(float)
FASTSOFTMAX_SAMPLE_FUNCTION(double)
FASTSOFTMAX_SAMPLE_FUNCTION(Float16)
FASTSOFTMAX_SAMPLE_FUNCTION(BFloat16)
#undef FASTSOFTMAX_SAMPLE_FUNCTION

Status merge_states(const NormalizerState* parts, std::size_t count, NormalizerState* merged) {
  if (count == 0) {
    *merged = {-std::numeric_limits<double>::infinity(), 0.0, 0.0, 0.0, 1.0};
    return Status::kOk;
  }
  if (parts == nullptr || merged == nullptr) return Status::kNullPointer;
  const double temperature = parts[0].temperature;
  std::vector<RowState<double>> states(count);
  for (std::size_t i = 0; i < count; ++i) {
    // (A NaN temperature matches none.)
    if (!(parts[i].temperature == temperature)) return Status::kMismatchedStates;
    states[i] = row_state<double>(parts[i]);
  }
  const Temperature t = {temperature, 1.0 / temperature};
  *merged = public_state(merge_row_states(static_cast<int>(count), states.data(), t), t);
  return Status::kOk;
}

double logsumexp_from_state(const NormalizerState& state) {
  return static_cast<double>(logsumexp_of(row_state<double>(state), {state.temperature, 1.0 / state.temperature}));
}

Float16 to_float16(float value) { return narrow<Float16>(value); }
BFloat16 to_bfloat16(float value) { return narrow<BFloat16>(value); }
float to_float(Float16 value) { return widen(value); }
float to_float(BFloat16 value) { return widen(value); }

Status read_twice_write_once(const float* x, float* y, std::size_t n, Isa isa) {
  Call call;
  call.n = n;
  call.inputs[0] = {x, 0, 1};
  call.outputs[0] = {y, 0, 1};
  call.options.cpu.isa = isa;
  // The bound of the target whose float32 kernels a softmax of the row would run.
  const Plan planned = plan(call);
  if (planned.status != Status::kOk) return planned.status;
  if (n > 0) planned.kernel_target->kernels()->read_twice_write_once(n, x, y);
  return Status::kOk;
}

std::vector<ImplementationInfo> implementations() {
  std::vector<ImplementationInfo> list;
  for (int i = 0; i < kNumCpuTargets; ++i) {
    const CpuTarget& t = *cpu_targets()[i];
    list.push_back({t.isa(), t.name(), t.backend(), t.description(), t.required_features(), t.priority(),
                    t.compiled(), t.supported()});
  }
  return list;
}

std::vector<std::pair<std::string, bool>> cpu_feature_flags() {
  int count = 0;
  const CpuFeature* features = cpu_feature_list(&count);
  std::vector<std::pair<std::string, bool>> flags;
  for (int f = 0; f < count; ++f) flags.emplace_back(features[f].name, cpu_features().*features[f].flag);
  return flags;
}

std::vector<Isa> compiled_isas() { return isas_where(&CpuTarget::compiled); }
std::vector<Isa> supported_isas() { return isas_where(&CpuTarget::supported); }
bool isa_supported(Isa isa) {
  const int i = static_cast<int>(isa);
  return isa == Isa::kAuto || (i > 0 && i <= kNumCpuTargets && cpu_target(isa).supported());
}

Status auto_isa(Isa* isa) {
  const AutoIsa& choice = auto_isa_choice();
  if (!choice.ok) return Status::kBadEnvironmentIsa;
  *isa = choice.isa;
  return Status::kOk;
}

}  // namespace fastsoftmax
