// Internal: an implementation the planner can choose for a call. The CPU backend's are its
// targets (cpu/targets.h: scalar, avx2, avx512, avx512_bf16); a GPU backend adds its own
// (docs/architecture.md, "Add a backend").
#pragma once

namespace fastsoftmax {

class Implementation {
 public:
  virtual ~Implementation() = default;

  virtual const char* name() const = 0;
  virtual const char* backend() const = 0;  // "cpu"
  virtual const char* description() const = 0;
  // What the machine must have, space-separated (for a CPU target: cpu_features() names).
  virtual const char* required_features() const = 0;
  // The higher, the earlier an automatic choice tries it.
  virtual int priority() const = 0;
  // Its code is in this build.
  virtual bool compiled() const = 0;
  // Compiled, and this machine has what it requires.
  virtual bool supported() const = 0;
};

}  // namespace fastsoftmax
