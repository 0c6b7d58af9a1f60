// Every name of the public enums, defined once: the Python layer, FASTSOFTMAX_ISA, the kernel
// catalogue, explain() and the benchmarks all read them from here.
#include <string>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {
namespace {

// Indexed by the enum's value.
constexpr const char* kIsaNames[] = {"auto", "scalar", "avx2", "avx512", "avx512_bf16"};
constexpr const char* kAlgorithmNames[] = {"auto", "two_pass", "three_pass_reload", "three_pass_recompute",
                                           "online"};
constexpr const char* kOperationNames[] = {"softmax",       "log_softmax",        "softmax_topk",
                                           "logsumexp",     "softmax_state",      "softmax_from_state",
                                           "log_softmax_from_state", "topk_softmax", "sample"};
constexpr const char* kDtypeNames[] = {"float32", "float64", "float16", "bfloat16"};

template <class Enum, std::size_t kCount>
const char* name_of(Enum value, const char* const (&names)[kCount]) {
  const auto i = static_cast<std::size_t>(value);
  return i < kCount ? names[i] : "unknown";
}

template <class Enum, std::size_t kCount>
bool parse_name(const std::string& name, const char* const (&names)[kCount], Enum* value) {
  for (std::size_t i = 0; i < kCount; ++i) {
    if (name == names[i]) {
      *value = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

template <std::size_t kCount>
std::vector<std::string> all_names(const char* const (&names)[kCount]) {
  return std::vector<std::string>(names, names + kCount);
}

}  // namespace

const char* isa_name(Isa isa) { return name_of(isa, kIsaNames); }
const char* algorithm_name(Algorithm algorithm) { return name_of(algorithm, kAlgorithmNames); }
const char* operation_name(Operation operation) { return name_of(operation, kOperationNames); }
const char* dtype_name(DataType dtype) { return name_of(dtype, kDtypeNames); }

std::vector<std::string> isa_names() { return all_names(kIsaNames); }
std::vector<std::string> algorithm_names() { return all_names(kAlgorithmNames); }

bool parse_isa(const std::string& name, Isa* isa) { return parse_name(name, kIsaNames, isa); }
bool parse_algorithm(const std::string& name, Algorithm* algorithm) {
  return parse_name(name, kAlgorithmNames, algorithm);
}

}  // namespace fastsoftmax
