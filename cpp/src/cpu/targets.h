// Internal: the CPU backend's implementations, one per instruction-set target, and how Isa::kAuto
// resolves (FASTSOFTMAX_ISA, else the best supported).
#pragma once

#include <string>

#include "fastsoftmax/fastsoftmax.h"
#include "implementation.h"
#include "kernels/kernel_types.h"

namespace fastsoftmax {

// A CPU feature a target may require: its cpu_features() name and flag.
struct CpuFeature {
  const char* name;
  bool CpuFeatures::*flag;
};

class CpuTarget final : public Implementation {
 public:
  // `required`: a mask over cpu_feature_list(), bit i for feature i.
  CpuTarget(Isa isa, const char* description, unsigned required, const TargetKernels* kernels);

  const char* name() const override;
  const char* backend() const override { return "cpu"; }
  const char* description() const override { return description_; }
  const char* required_features() const override { return required_features_.c_str(); }
  int priority() const override { return static_cast<int>(isa_); }  // the Isa order is the priority order
  bool compiled() const override { return kernels_ != nullptr; }
  bool supported() const override { return supported_; }

  Isa isa() const { return isa_; }
  // Its kernels; null when not compiled in.
  const TargetKernels* kernels() const { return kernels_; }

 private:
  Isa isa_;
  const char* description_;
  const TargetKernels* kernels_;
  std::string required_features_;  // the features' names, joined
  bool supported_;                  // decided once, when the targets are made
};

// Every CPU target (compiled in or not), lowest priority first; indexed by Isa value - 1.
inline constexpr int kNumCpuTargets = 4;
const CpuTarget* const* cpu_targets();
inline const CpuTarget& cpu_target(Isa isa) { return *cpu_targets()[static_cast<int>(isa) - 1]; }  // isa != kAuto

// Every CPU feature the targets know, in cpu_features() order.
const CpuFeature* cpu_feature_list(int* count);

// What Isa::kAuto resolves to: FASTSOFTMAX_ISA if set, else the best supported target; read once.
struct AutoIsa {
  bool ok;
  Isa isa;               // when ok
  bool variable_set;     // FASTSOFTMAX_ISA is set (and not empty)
  std::string variable;  // its value
  bool known;            // whether it names an ISA
};
const AutoIsa& auto_isa_choice();

}  // namespace fastsoftmax
