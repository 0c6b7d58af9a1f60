// Internal: every check of a call, once, and the words for each failure (the library's one error
// vocabulary, Status: what a call returns, and the message explain() gives, come from here).
#pragma once

#include <cstdint>
#include <string>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {

// The first reason to refuse the call, in the order of Status (kOk: it can run). Nothing is read
// or written; checks on the operands are skipped for calls with no elements.
Status validate(const Call& call);
// The largest k of softmax_topk on the CUDA backend (its candidates live in shared memory).
constexpr std::int64_t kDeviceMaxTopk = 1024;
// The same for a call on the CUDA backend: the rules of every call, then the device's own (the
// CPU options are not read).
Status validate_device(const Call& call);

// For a refused call: a sentence naming the argument, its value and the rule it breaks.
std::string error_message(Status status, const Call& call);

}  // namespace fastsoftmax
