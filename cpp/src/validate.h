// Internal: every check of a call, once, and the words for each failure (the library's one error
// vocabulary: the Status a call returns and the message explain() gives come from here).
#pragma once

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
};

// The first problem of the call, in the order above (kNone: it can run). Nothing is read or
// written; checks on the operands are skipped for calls with no elements.
Problem validate(const Call& call);

Status status_of(Problem problem);
// A sentence naming the argument, its value and the rule it breaks.
std::string problem_message(Problem problem, const Call& call);

}  // namespace fastsoftmax
