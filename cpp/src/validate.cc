// Every check of a call, in one place, and the words for each failure.
#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <string>

#include "cpu/targets.h"

namespace fastsoftmax {
namespace {

constexpr int kNumOperations = 9;
constexpr int kNumDtypes = 4;
constexpr int kNumAlgorithmValues = 5;  // kAuto and the four
constexpr int kNumIsaValues = 5;        // kAuto and the four targets

// The operands of each operation, named as in the Python API: how many elements each holds per
// row, of which type, and whether it may be absent (null data).
enum class PerRow { kN, kK, kOne };
enum class Element { kData, kIndex, kState, kFloat32, kInt32, kSamplingParams };  // the call's dtype, int64, NormalizerState, ...
struct OperandSpec {
  const char* name;
  PerRow per_row;
  Element element;
  bool optional;
};
struct OperationSpec {
  int inputs;
  OperandSpec input[Call::kMaxInputs];
  int outputs;
  OperandSpec output[Call::kMaxOutputs];
};
constexpr OperandSpec kX = {"x", PerRow::kN, Element::kData, false};
constexpr OperandSpec kY = {"y", PerRow::kN, Element::kData, false};
constexpr OperandSpec kStates = {"states", PerRow::kOne, Element::kState, false};
constexpr OperationSpec kOperationSpecs[kNumOperations] = {
    {1, {kX}, 1, {kY}},  // kSoftmax
    {1, {kX}, 1, {kY}},  // kLogSoftmax
    {1, {kX}, 2, {{"values", PerRow::kK, Element::kData, false}, {"indices", PerRow::kK, Element::kIndex, false}}},
    {2, {kX, {"b", PerRow::kN, Element::kData, true}},  // kLogSumExp
     2, {{"lse", PerRow::kOne, Element::kData, false}, {"sign", PerRow::kOne, Element::kData, true}}},
    {1, {kX}, 1, {kStates}},          // kSoftmaxState
    {2, {kX, kStates}, 1, {kY}},      // kSoftmaxFromState
    {2, {kX, kStates}, 1, {kY}},      // kLogSoftmaxFromState
    {2, {kX, {"correction_bias", PerRow::kN, Element::kFloat32, true}},  // kTopkSoftmax
     2, {{"weights", PerRow::kK, Element::kFloat32, false}, {"ids", PerRow::kK, Element::kInt32, false}}},
    {2, {kX, {"params", PerRow::kOne, Element::kSamplingParams, false}},  // kSample
     2, {{"ids", PerRow::kOne, Element::kIndex, false}, {"probabilities", PerRow::kOne, Element::kFloat32, true}}},
};
// The mask of any operation: one byte per element of x.
constexpr OperandSpec kMask = {"where", PerRow::kN, Element::kData, true};

// The operations with k results per row.
bool selects_k(const Call& call) {
  return call.operation == Operation::kSoftmaxTopk || call.operation == Operation::kTopkSoftmax;
}
// The operations that run their own passes (no algorithm to choose).
bool runs_own_passes(const Call& call) { return selects_k(call) || call.operation == Operation::kSample; }

// A row's sampling parameters within their ranges (SamplingParams).
bool good_sampling_params(const SamplingParams& p) {
  return std::isfinite(p.temperature) && p.temperature >= 0 && p.top_k >= -1 && p.top_p > 0 && p.top_p <= 1 &&
         p.min_p >= 0 && p.min_p <= 1;
}
// The first row of a sample call whose parameters are out of range, or -1 (the parameters are the
// one operand validation reads: a bad one refuses the call before anything is written).
std::int64_t bad_sampling_row(const Call& call) {
  if (call.operation != Operation::kSample || call.inputs[1].data == nullptr) return -1;
  const auto* params = static_cast<const SamplingParams*>(call.inputs[1].data);
  for (std::size_t r = 0; r < call.rows; ++r) {
    if (!good_sampling_params(params[static_cast<std::ptrdiff_t>(r) * call.inputs[1].row_stride])) {
      return static_cast<std::int64_t>(r);
    }
  }
  return -1;
}

template <class Enum>
bool known(Enum value, int count) {
  const int i = static_cast<int>(value);
  return i >= 0 && i < count;
}

std::size_t element_size(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return 4;
    case DataType::kFloat64: return 8;
    default: return 2;
  }
}
std::size_t element_size(Element element, DataType dtype) {
  switch (element) {
    case Element::kData: return element_size(dtype);
    case Element::kIndex: return sizeof(std::int64_t);
    case Element::kState: return sizeof(NormalizerState);
    case Element::kFloat32: return sizeof(float);
    case Element::kInt32: return sizeof(std::int32_t);
    case Element::kSamplingParams: return sizeof(SamplingParams);
  }
  return 1;
}
std::size_t per_row_count(PerRow per_row, const Call& call) {
  switch (per_row) {
    case PerRow::kN: return call.n;
    case PerRow::kK: return static_cast<std::size_t>(call.k);
    case PerRow::kOne: return 1;
  }
  return 0;
}

// One operand as the overlap check sees it: where its elements are and how many a row has.
struct OperandSpan {
  const Operand* operand;
  const char* name;
  std::size_t per_row;
  std::size_t element_bytes;
};
// The addresses [first, last) an operand's elements span (strides may be negative).
struct Extent {
  std::intptr_t first, last;
};
Extent extent_of(const OperandSpan& o, std::size_t rows) {
  std::intptr_t low = 0, high = 0;  // in elements, from data
  const auto spread = [&](std::ptrdiff_t stride, std::size_t count) {
    const std::intptr_t reach = static_cast<std::intptr_t>(stride) * static_cast<std::intptr_t>(count - 1);
    (reach < 0 ? low : high) += reach;
  };
  spread(o.operand->row_stride, rows);
  spread(o.operand->stride, o.per_row);
  const auto data = reinterpret_cast<std::intptr_t>(o.operand->data);
  const auto bytes = static_cast<std::intptr_t>(o.element_bytes);
  return {data + low * bytes, data + (high + 1) * bytes};
}
// The same elements in the same places: an output computed in place over its input.
bool same_layout(const OperandSpan& a, const OperandSpan& b, std::size_t rows) {
  return a.operand->data == b.operand->data && a.per_row == b.per_row && a.element_bytes == b.element_bytes &&
         (rows == 1 || a.operand->row_stride == b.operand->row_stride) &&
         (a.per_row == 1 || a.operand->stride == b.operand->stride);
}

// Whether an output's strides put two of its results on one element: a stride of 0 where there
// are several, or (checked conservatively) the smaller step's run reaching the larger step.
bool overlaps_itself(const Operand& out, std::size_t rows, std::size_t per_row) {
  struct Step {
    std::size_t size, count;
  };
  Step a{static_cast<std::size_t>(std::abs(out.stride)), per_row};
  Step b{static_cast<std::size_t>(std::abs(out.row_stride)), rows};
  if (a.count <= 1) a = {0, 1};
  if (b.count <= 1) b = {0, 1};
  if ((a.count > 1 && a.size == 0) || (b.count > 1 && b.size == 0)) return true;
  if (a.count == 1 || b.count == 1) return false;
  if (a.size > b.size) std::swap(a, b);
  return b.size <= a.size * (a.count - 1);
}

// The first operand whose data is null, whose strides would write several results to one
// element, or which overlaps another operand (an output may be its input exactly, in place;
// softmax_topk's outputs never: they are not the input's shape). `other` names the second
// operand of an overlap.
struct OperandProblem {
  Status status;
  const char* operand;
  const char* other;
};
OperandProblem operand_problem(const Call& call) {
  const OperationSpec& spec = kOperationSpecs[static_cast<int>(call.operation)];
  OperandSpan spans[Call::kMaxInputs + 1 + Call::kMaxOutputs];
  int count = 0;
  const auto add = [&](const Operand& operand, const OperandSpec& s, std::size_t bytes) {
    spans[count++] = {&operand, s.name, per_row_count(s.per_row, call), bytes};
  };
  // Operands with no elements (x and y of empty rows, whose states and logsumexp are still
  // written) are neither read nor written: nothing to check.
  const auto empty = [&](const OperandSpec& s) { return per_row_count(s.per_row, call) == 0; };
  for (int i = 0; i < spec.inputs; ++i) {
    const OperandSpec& s = spec.input[i];
    if (empty(s)) continue;
    if (call.inputs[i].data == nullptr) {
      if (s.optional) continue;
      return {Status::kNullPointer, s.name, nullptr};
    }
    add(call.inputs[i], s, element_size(s.element, call.dtype));
  }
  if (call.mask.data != nullptr && !empty(kMask)) add(call.mask, kMask, 1);
  const int inputs = count;
  for (int i = 0; i < spec.outputs; ++i) {
    const Operand& out = call.outputs[i];
    const OperandSpec& s = spec.output[i];
    if (empty(s)) continue;
    if (out.data == nullptr) {
      if (s.optional) continue;
      return {Status::kNullPointer, s.name, nullptr};
    }
    if (overlaps_itself(out, call.rows, per_row_count(s.per_row, call))) {
      return {Status::kOutputOverlapsItself, s.name, nullptr};
    }
    add(out, s, element_size(s.element, call.dtype));
  }
  for (int o = inputs; o < count; ++o) {  // each output against every operand before it
    const Extent out = extent_of(spans[o], call.rows);
    for (int other = 0; other < o; ++other) {
      const Extent e = extent_of(spans[other], call.rows);
      // In place: an output of x's shape over x itself (the top-k and per-row outputs never).
      const bool in_place = spans[other].operand == &call.inputs[0] && spans[o].per_row == call.n &&
                            !selects_k(call) && same_layout(spans[o], spans[other], call.rows);
      if (out.first < e.last && e.first < out.last && !in_place) {
        return {Status::kOverlappingMemory, spans[o].name, spans[other].name};
      }
    }
  }
  return {Status::kOk, nullptr, nullptr};
}

std::string isa_list(bool supported_only) {
  std::string names;
  for (int i = 0; i < kNumCpuTargets; ++i) {
    const CpuTarget& target = *cpu_targets()[i];
    if (!(supported_only ? target.supported() : target.compiled())) continue;
    names += (names.empty() ? "" : ", ") + std::string(target.name());
  }
  return names;
}

// Why an ISA is not available here: not compiled in, or the CPU lacks what it needs.
std::string unavailable_reason(const CpuTarget& target) {
  if (!target.compiled()) return "not compiled into this build (compiled in: " + isa_list(false) + ")";
  return "not supported by this CPU, which lacks some of " + std::string(target.required_features()) +
         " (supported here: " + isa_list(true) + ")";
}

// The shortest decimal that reads back as `value` (0.1, not 0.10000000000000001).
std::string number(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

// The rules of every call, whatever runs it: known enums, the temperature, the fused algorithm.
Status validate_common(const Call& call) {
  const Options& options = call.options;
  if (!known(call.operation, kNumOperations)) return Status::kUnknownOperation;
  if (!known(call.dtype, kNumDtypes)) return Status::kUnknownDtype;
  if (!known(options.algorithm, kNumAlgorithmValues)) return Status::kUnknownAlgorithm;
  if (!(options.temperature > 0 && std::isfinite(options.temperature))) return Status::kBadTemperature;
  if (runs_own_passes(call) && options.algorithm != Algorithm::kAuto && options.algorithm != Algorithm::kOnline) {
    return Status::kNotFusedAlgorithm;
  }
  if (call.operation == Operation::kTopkSoftmax) {
    const RouterOptions& router = call.router;
    if (!known(router.scoring, 2) || !std::isfinite(router.scaling)) return Status::kBadRouterOptions;
  }
  return Status::kOk;
}

bool bad_k(const Call& call) {
  return selects_k(call) && (call.k < 1 || static_cast<std::size_t>(call.k) > call.n);
}

// The experts of the kept groups, or 0 when the groups are not valid for n.
std::size_t experts_in_kept_groups(const Call& call) {
  const RouterOptions& router = call.router;
  if (router.groups == 0) return router.topk_group == 0 ? call.n : 0;
  if (router.groups < 0 || call.n % static_cast<std::size_t>(router.groups) != 0 || router.topk_group < 1 ||
      router.topk_group > router.groups) {
    return 0;
  }
  return call.n / static_cast<std::size_t>(router.groups) * static_cast<std::size_t>(router.topk_group);
}
bool bad_groups(const Call& call) {
  return call.operation == Operation::kTopkSoftmax && call.n > 0 &&
         experts_in_kept_groups(call) < static_cast<std::size_t>(std::max<std::int64_t>(call.k, 1));
}

}  // namespace

Status validate_device(const Call& call) {
  if (const Status common = validate_common(call); common != Status::kOk) return common;
  const bool device_operation = call.operation == Operation::kSoftmax || call.operation == Operation::kLogSoftmax ||
                                call.operation == Operation::kSoftmaxTopk;
  if (!device_operation || call.mask.data != nullptr) return Status::kDeviceOperation;
  if (call.dtype == DataType::kFloat64) return Status::kDeviceDtype;
  if (bad_k(call)) return Status::kBadK;
  if (call.operation == Operation::kSoftmaxTopk && call.k > kDeviceMaxTopk) return Status::kDeviceTopkTooLarge;
  if (call.rows == 0 || call.n == 0) return Status::kOk;
  const Status operands = operand_problem(call).status;
  if (operands != Status::kOk) return operands;
  const bool adjacent = call.n == 1 || (call.inputs[0].stride == 1 &&
                                        (call.operation == Operation::kSoftmaxTopk || call.outputs[0].stride == 1));
  return adjacent ? Status::kOk : Status::kDeviceElementStride;
}

Status validate(const Call& call) {
  const Options& options = call.options;
  if (const Status common = validate_common(call); common != Status::kOk) return common;
  if (!known(options.cpu.isa, kNumIsaValues)) return Status::kUnknownIsa;
  if (options.cpu.num_threads < 0) return Status::kNegativeThreads;
  if (options.cpu.isa == Isa::kAuto) {
    const AutoIsa& choice = auto_isa_choice();
    if (!choice.ok) return Status::kBadEnvironmentIsa;
  } else if (!cpu_target(options.cpu.isa).compiled()) {
    return Status::kIsaNotCompiled;
  } else if (!cpu_target(options.cpu.isa).supported()) {
    return Status::kIsaNotSupported;
  }
  if (bad_k(call)) return Status::kBadK;
  if (bad_groups(call)) return Status::kBadRouterGroups;
  if (call.rows == 0) return Status::kOk;  // nothing to read or write
  const Status operands = operand_problem(call).status;
  if (operands != Status::kOk) return operands;
  return bad_sampling_row(call) >= 0 ? Status::kBadSamplingParams : Status::kOk;
}

std::string error_message(Status status, const Call& call) {
  const Options& options = call.options;
  switch (status) {
    case Status::kOk: return "";
    case Status::kUnknownOperation:
      return "unknown operation value " + std::to_string(static_cast<int>(call.operation));
    case Status::kUnknownDtype: return "unknown dtype value " + std::to_string(static_cast<int>(call.dtype));
    case Status::kUnknownAlgorithm:
      return "unknown algorithm value " + std::to_string(static_cast<int>(options.algorithm));
    case Status::kUnknownIsa: return "unknown isa value " + std::to_string(static_cast<int>(options.cpu.isa));
    case Status::kNegativeThreads:
      return "num_threads must be >= 0 (0: get_num_threads()), got " + std::to_string(options.cpu.num_threads);
    case Status::kBadTemperature: return "temperature must be finite and > 0, got " + number(options.temperature);
    case Status::kNotFusedAlgorithm:
      return std::string(operation_name(call.operation)) +
             " runs its own passes (the online normalizer, fused with the selection): algorithm must be auto or "
             "online, got " +
             algorithm_name(options.algorithm);
    case Status::kBadK:
      return "k must be in 1..n (n = " + std::to_string(call.n) + ", the row length), got " + std::to_string(call.k);
    case Status::kNullPointer:
      return std::string(operand_problem(call).operand) + " is a null pointer";
    case Status::kOutputOverlapsItself:
      return std::string(operand_problem(call).operand) +
             "'s strides would write several results to one element (a stride of 0, or rows that overlap)";
    case Status::kIsaNotCompiled:
    case Status::kIsaNotSupported:
      return "isa '" + std::string(isa_name(options.cpu.isa)) +
             "' is not available here: " + unavailable_reason(cpu_target(options.cpu.isa));
    case Status::kOverlappingMemory: {
      const OperandProblem overlap = operand_problem(call);
      return std::string(overlap.operand) + " overlaps " + overlap.other +
             " in memory; an output may be its input exactly (the same data and strides: in place), but must "
             "not otherwise share memory with x or another output";
    }
    case Status::kBadEnvironmentIsa: {
      const std::string& variable = auto_isa_choice().variable;
      Isa isa = Isa::kScalar;
      if (!parse_isa(variable, &isa)) {
        std::string names;
        for (const std::string& name : isa_names()) names += (names.empty() ? "" : ", ") + name;
        return "FASTSOFTMAX_ISA='" + variable + "' names no ISA; use one of " + names;
      }
      return "FASTSOFTMAX_ISA='" + variable + "' is not available here: " + unavailable_reason(cpu_target(isa));
    }
    case Status::kMismatchedStates: return "the states to merge have different temperatures";
    case Status::kBadRouterGroups: {
      const RouterOptions& router = call.router;
      return "num_expert_group (" + std::to_string(router.groups) + ") must divide the experts (" +
             std::to_string(call.n) + "), topk_group (" + std::to_string(router.topk_group) +
             ") must be in 1..num_expert_group (both 0: no groups), and k (" + std::to_string(call.k) +
             ") at most the experts of topk_group groups";
    }
    case Status::kBadRouterOptions:
      return "scoring must be softmax or sigmoid and routed_scaling_factor finite, got scoring value " +
             std::to_string(static_cast<int>(call.router.scoring)) + " and " + number(call.router.scaling);
    case Status::kBadSamplingParams: {
      const std::int64_t r = bad_sampling_row(call);
      const auto& p = *(static_cast<const SamplingParams*>(call.inputs[1].data) + r * call.inputs[1].row_stride);
      return "the sampling parameters of row " + std::to_string(r) + " are out of range: temperature " +
             number(p.temperature) + " (finite and >= 0), top_k " + std::to_string(p.top_k) +
             " (>= 1, or 0 or -1: all), top_p " + number(p.top_p) + " (in (0, 1]), min_p " + number(p.min_p) +
             " (in [0, 1])";
    }
    case Status::kDeviceDtype:
      return std::string("dtype ") + dtype_name(call.dtype) +
             " is not supported on CUDA devices: the CUDA kernels compute in float32 (float32, float16 and "
             "bfloat16 arrays); convert the array, or compute on the CPU";
    case Status::kDeviceElementStride:
      return "the elements of each row must be adjacent in device memory (x stride " +
             std::to_string(call.inputs[0].stride) + ", y stride " + std::to_string(call.outputs[0].stride) +
             "): make the axis contiguous first";
    case Status::kDeviceTopkTooLarge:
      return "k = " + std::to_string(call.k) + " is more than the CUDA kernels select (at most " +
             std::to_string(kDeviceMaxTopk) + ")";
    case Status::kDeviceOperation:
      return call.mask.data != nullptr
                 ? std::string("masks (where) are not supported on CUDA devices yet: compute on the CPU")
                 : std::string(operation_name(call.operation)) + " is not supported on CUDA devices yet: compute on the CPU";
    case Status::kDeviceHostMemory: return "a pointer of the call is not device (or managed) memory";
    case Status::kDeviceError: return "the CUDA runtime failed";
  }
  return "unknown status " + std::to_string(static_cast<int>(status));
}

}  // namespace fastsoftmax
