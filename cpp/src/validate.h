// Internal: every check of a call, once, and the words for each failure (the library's one error
// vocabulary: the Status a call returns and the message explain() gives come from here).
#pragma once

#include <cstdint>
#include <string>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {

enum class Problem {
  kNone,
  kUnknownOperation,
  kUnknownDtype,
  kUnknownAlgorithm,
  kUnknownIsa,
  kNegativeThreads,
  kBadTemperature,
  kNotFusedAlgorithm,  // softmax_topk with an algorithm other than auto and online
  kBadK,
  kNullOperand,
  kZeroOutputStride,  // an output stride of 0 where it would write several results to one element
  kIsaNotCompiled,
  kIsaNotSupported,
  kEnvIsaUnknown,      // FASTSOFTMAX_ISA names no ISA
  kEnvIsaUnsupported,  // FASTSOFTMAX_ISA names an ISA not available here
  // Device calls (the CUDA backend):
  kDeviceDtype,          // float64: the CUDA kernels compute in float32 and refuse it
  kDeviceElementStride,  // the elements of a row are not adjacent
  kDeviceTopkTooLarge,   // k above the kernels' candidate capacity
};

// The first problem of the call, in the order above (kNone: it can run). Nothing is read or
// written; checks on the operands are skipped for calls with no elements.
Problem validate(const Call& call);
// The largest k of softmax_topk on the CUDA backend (its candidates live in shared memory).
constexpr std::int64_t kDeviceMaxTopk = 1024;
// The same for a call on the CUDA backend: the rules of every call, then the device's own (the
// CPU options are not read).
Problem validate_device(const Call& call);

Status status_of(Problem problem);
// A sentence naming the argument, its value and the rule it breaks.
std::string problem_message(Problem problem, const Call& call);

}  // namespace fastsoftmax
