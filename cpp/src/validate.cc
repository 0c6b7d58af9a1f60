// Every check of a call, in one place, and the words for each failure.
#include "validate.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cpu/targets.h"

namespace fastsoftmax {
namespace {

constexpr int kNumOperations = 3;
constexpr int kNumDtypes = 4;
constexpr int kNumAlgorithmValues = 5;  // kAuto and the four
constexpr int kNumIsaValues = 5;        // kAuto and the four targets

// The operands of each operation, named as in the Python API, and how many elements each output
// holds per row.
struct OperandSpec {
  const char* name;
  bool per_row_k;  // k elements per row (softmax_topk's results), else n
};
struct OperationSpec {
  int inputs;
  OperandSpec input[Call::kMaxInputs];
  int outputs;
  OperandSpec output[Call::kMaxOutputs];
};
constexpr OperationSpec kOperationSpecs[kNumOperations] = {
    {1, {{"x", false}}, 1, {{"y", false}}},                       // kSoftmax
    {1, {{"x", false}}, 1, {{"y", false}}},                       // kLogSoftmax
    {1, {{"x", false}}, 2, {{"values", true}, {"indices", true}}},  // kSoftmaxTopk
};

template <class Enum>
bool known(Enum value, int count) {
  const int i = static_cast<int>(value);
  return i >= 0 && i < count;
}

// The first operand whose data is null or whose strides would write several results to one element.
struct OperandProblem {
  Problem problem;
  const char* operand;
};
OperandProblem operand_problem(const Call& call) {
  const OperationSpec& spec = kOperationSpecs[static_cast<int>(call.operation)];
  for (int i = 0; i < spec.inputs; ++i) {
    if (call.inputs[i].data == nullptr) return {Problem::kNullOperand, spec.input[i].name};
  }
  for (int i = 0; i < spec.outputs; ++i) {
    const Operand& out = call.outputs[i];
    const std::size_t per_row = spec.output[i].per_row_k ? static_cast<std::size_t>(call.k) : call.n;
    if (out.data == nullptr) return {Problem::kNullOperand, spec.output[i].name};
    if ((per_row > 1 && out.stride == 0) || (call.rows > 1 && out.row_stride == 0)) {
      return {Problem::kZeroOutputStride, spec.output[i].name};
    }
  }
  return {Problem::kNone, nullptr};
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
Problem validate_common(const Call& call) {
  const Options& options = call.options;
  if (!known(call.operation, kNumOperations)) return Problem::kUnknownOperation;
  if (!known(call.dtype, kNumDtypes)) return Problem::kUnknownDtype;
  if (!known(options.algorithm, kNumAlgorithmValues)) return Problem::kUnknownAlgorithm;
  if (!(options.temperature > 0 && std::isfinite(options.temperature))) return Problem::kBadTemperature;
  if (call.operation == Operation::kSoftmaxTopk && options.algorithm != Algorithm::kAuto &&
      options.algorithm != Algorithm::kOnline) {
    return Problem::kNotFusedAlgorithm;
  }
  return Problem::kNone;
}

bool bad_k(const Call& call) {
  return call.operation == Operation::kSoftmaxTopk && (call.k < 1 || static_cast<std::size_t>(call.k) > call.n);
}

}  // namespace

Problem validate_device(const Call& call) {
  if (const Problem common = validate_common(call); common != Problem::kNone) return common;
  if (call.dtype == DataType::kFloat64) return Problem::kDeviceDtype;
  if (bad_k(call)) return Problem::kBadK;
  if (call.operation == Operation::kSoftmaxTopk && call.k > kDeviceMaxTopk) return Problem::kDeviceTopkTooLarge;
  if (call.rows == 0 || call.n == 0) return Problem::kNone;
  const Problem operands = operand_problem(call).problem;
  if (operands != Problem::kNone) return operands;
  const bool adjacent = call.n == 1 || (call.inputs[0].stride == 1 &&
                                        (call.operation == Operation::kSoftmaxTopk || call.outputs[0].stride == 1));
  return adjacent ? Problem::kNone : Problem::kDeviceElementStride;
}

Problem validate(const Call& call) {
  const Options& options = call.options;
  if (const Problem common = validate_common(call); common != Problem::kNone) return common;
  if (!known(options.cpu.isa, kNumIsaValues)) return Problem::kUnknownIsa;
  if (options.cpu.num_threads < 0) return Problem::kNegativeThreads;
  if (options.cpu.isa == Isa::kAuto) {
    const AutoIsa& choice = auto_isa_choice();
    if (!choice.ok) return choice.known ? Problem::kEnvIsaUnsupported : Problem::kEnvIsaUnknown;
  } else if (!cpu_target(options.cpu.isa).compiled()) {
    return Problem::kIsaNotCompiled;
  } else if (!cpu_target(options.cpu.isa).supported()) {
    return Problem::kIsaNotSupported;
  }
  if (bad_k(call)) return Problem::kBadK;
  if (call.rows == 0 || call.n == 0) return Problem::kNone;  // nothing to read or write
  return operand_problem(call).problem;
}

Status status_of(Problem problem) {
  switch (problem) {
    case Problem::kNone: return Status::kOk;
    case Problem::kIsaNotCompiled:
    case Problem::kIsaNotSupported:
    case Problem::kEnvIsaUnknown:
    case Problem::kEnvIsaUnsupported: return Status::kUnsupportedIsa;
    default: return Status::kInvalidArgument;
  }
}

std::string problem_message(Problem problem, const Call& call) {
  const Options& options = call.options;
  switch (problem) {
    case Problem::kNone: return "";
    case Problem::kUnknownOperation:
      return "unknown operation value " + std::to_string(static_cast<int>(call.operation));
    case Problem::kUnknownDtype: return "unknown dtype value " + std::to_string(static_cast<int>(call.dtype));
    case Problem::kUnknownAlgorithm:
      return "unknown algorithm value " + std::to_string(static_cast<int>(options.algorithm));
    case Problem::kUnknownIsa: return "unknown isa value " + std::to_string(static_cast<int>(options.cpu.isa));
    case Problem::kNegativeThreads:
      return "num_threads must be >= 0 (0: get_num_threads()), got " + std::to_string(options.cpu.num_threads);
    case Problem::kBadTemperature: return "temperature must be finite and > 0, got " + number(options.temperature);
    case Problem::kNotFusedAlgorithm:
      return std::string("softmax_topk runs the online algorithm, fused with the selection: algorithm must be "
                         "auto or online, got ") +
             algorithm_name(options.algorithm);
    case Problem::kBadK:
      return "k must be in 1..n (n = " + std::to_string(call.n) + ", the row length), got " + std::to_string(call.k);
    case Problem::kNullOperand:
      return std::string(operand_problem(call).operand) + " is a null pointer";
    case Problem::kZeroOutputStride:
      return std::string(operand_problem(call).operand) +
             " has a stride of 0, which would write several results to one element";
    case Problem::kIsaNotCompiled:
    case Problem::kIsaNotSupported:
      return "isa '" + std::string(isa_name(options.cpu.isa)) +
             "' is not available here: " + unavailable_reason(cpu_target(options.cpu.isa));
    case Problem::kEnvIsaUnknown:
      return "FASTSOFTMAX_ISA='" + auto_isa_choice().variable + "' names no ISA; use one of " +
             [] {
               std::string names;
               for (const std::string& name : isa_names()) names += (names.empty() ? "" : ", ") + name;
               return names;
             }();
    case Problem::kDeviceDtype:
      return std::string("dtype ") + dtype_name(call.dtype) +
             " is not supported on CUDA devices: the CUDA kernels compute in float32 (float32, float16 and "
             "bfloat16 arrays); convert the array, or compute on the CPU";
    case Problem::kDeviceElementStride:
      return "the elements of each row must be adjacent in device memory (x stride " +
             std::to_string(call.inputs[0].stride) + ", y stride " + std::to_string(call.outputs[0].stride) +
             "): make the axis contiguous first";
    case Problem::kDeviceTopkTooLarge:
      return "k = " + std::to_string(call.k) + " is more than the CUDA kernels select (at most " +
             std::to_string(kDeviceMaxTopk) + ")";
    case Problem::kEnvIsaUnsupported: {
      Isa isa = Isa::kScalar;
      parse_isa(auto_isa_choice().variable, &isa);
      return "FASTSOFTMAX_ISA='" + auto_isa_choice().variable +
             "' is not available here: " + unavailable_reason(cpu_target(isa));
    }
  }
  return "unknown problem";
}

}  // namespace fastsoftmax
