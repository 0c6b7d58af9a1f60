// The one place that decides which kernel runs: CPU detection (cpuid + xgetbv, once), the
// FASTSOFTMAX_ISA override, the list of compiled-in ISAs, and the automatic algorithm choice.
// Compiled for the baseline target: nothing here may use AVX.
#include <cstdlib>
#include <string>
#include <vector>

#include "dispatch.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FASTSOFTMAX_X86 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace fastsoftmax {
namespace {

#if defined(FASTSOFTMAX_X86)
struct CpuidRegisters {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegisters cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegisters r;
#if defined(_MSC_VER)
  int regs[4];
  __cpuidex(regs, static_cast<int>(leaf), static_cast<int>(subleaf));
  r = {static_cast<unsigned>(regs[0]), static_cast<unsigned>(regs[1]), static_cast<unsigned>(regs[2]),
       static_cast<unsigned>(regs[3])};
#else
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) r = {};
#endif
  return r;
}

// XCR0: which register states the OS saves on context switch. Only valid when OSXSAVE is set.
unsigned long long read_xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

bool bit(unsigned value, int index) { return (value >> index) & 1u; }

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  const unsigned max_leaf = cpuid(0, 0).eax;
  if (max_leaf < 1) return f;
  const CpuidRegisters leaf1 = cpuid(1, 0);
  const bool osxsave = bit(leaf1.ecx, 27);
  const bool avx = bit(leaf1.ecx, 28);
  f.fma = bit(leaf1.ecx, 12);
  f.f16c = bit(leaf1.ecx, 29);
  if (osxsave) {
    const unsigned long long xcr0 = read_xcr0();
    constexpr unsigned long long kSseAvxState = 0x6;   // XMM and YMM upper halves
    constexpr unsigned long long kAvx512State = 0xE0;  // opmask, ZMM0-15 upper, ZMM16-31
    f.os_saves_ymm = avx && (xcr0 & kSseAvxState) == kSseAvxState;
    f.os_saves_zmm = f.os_saves_ymm && (xcr0 & kAvx512State) == kAvx512State;
  }
  if (max_leaf >= 7) {
    const CpuidRegisters leaf7 = cpuid(7, 0);
    f.avx2 = bit(leaf7.ebx, 5);
    f.avx512f = bit(leaf7.ebx, 16);
    f.avx512dq = bit(leaf7.ebx, 17);
    f.avx512bw = bit(leaf7.ebx, 30);
    f.avx512vl = bit(leaf7.ebx, 31);
    if (leaf7.eax >= 1) f.avx512bf16 = bit(cpuid(7, 1).eax, 5);
  }
  return f;
}
#else
CpuFeatures detect_cpu_features() { return {}; }
#endif

bool cpu_runs(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2 && f.fma && f.f16c && f.os_saves_ymm;
    case Isa::kAvx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c && f.os_saves_zmm;
    default: return false;
  }
}

#if defined(FASTSOFTMAX_HAVE_AVX512)
// The AVX-512 kernels, with the bfloat16 ones of the BF16 extension where this CPU has it.
const IsaKernels* avx512_kernels() {
  static const IsaKernels kernels = [] {
    IsaKernels k = kAvx512Kernels;
#if defined(FASTSOFTMAX_HAVE_AVX512_BF16)
    if (cpu_features().avx512bf16) k.bf16 = kAvx512Bf16Kernels;
#endif
    return k;
  }();
  return &kernels;
}
#endif

const IsaKernels* compiled_kernels(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return &kScalarKernels;
#if defined(FASTSOFTMAX_HAVE_AVX2)
    case Isa::kAvx2: return &kAvx2Kernels;
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512)
    case Isa::kAvx512: return avx512_kernels();
#endif
    default: return nullptr;
  }
}

struct AutoIsa {
  Status status;
  Isa isa;
};

// Resolved once: FASTSOFTMAX_ISA if set (and usable), else the best supported ISA.
AutoIsa resolve_auto_isa() {
  const char* forced = std::getenv("FASTSOFTMAX_ISA");
  if (forced != nullptr && *forced != '\0') {
    Isa isa;
    if (!parse_isa(forced, &isa)) return {Status::kUnsupportedIsa, Isa::kScalar};
    if (isa == Isa::kAuto) return {Status::kOk, supported_isas().back()};
    if (!isa_supported(isa)) return {Status::kUnsupportedIsa, Isa::kScalar};
    return {Status::kOk, isa};
  }
  return {Status::kOk, supported_isas().back()};
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_cpu_features();
  return features;
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (compiled_kernels(isa) != nullptr) isas.push_back(isa);
  }
  return isas;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : compiled_isas()) {
    if (cpu_runs(isa)) isas.push_back(isa);
  }
  return isas;
}

bool isa_supported(Isa isa) {
  return isa == Isa::kAuto || (compiled_kernels(isa) != nullptr && cpu_runs(isa));
}

Status auto_isa(Isa* isa) {
  static const AutoIsa resolved = resolve_auto_isa();
  *isa = resolved.isa;
  return resolved.status;
}

// The automatic choice per ISA and row length, from bench/ on AMD Zen 5 (README, "Performance"):
// while a row's input and output fit in the L2 cache (1 MiB per core there) the algorithms run
// within a few percent of each other, compute-bound, and the reloading three-pass (one exp per
// element) is marginally ahead; beyond it the two-pass wins, by 15-40% from L3 and more from
// memory (two reads and one write instead of three reads and two writes). The scalar kernels
// compute exp with the C library, so the single-exp reloading variant wins at every length.
constexpr std::size_t kBeyondL2Elements = std::size_t{1} << 17;  // 512 KiB of float32 input

Algorithm choose_algorithm(Isa isa, std::size_t n) {
  if (isa == Isa::kScalar || n < kBeyondL2Elements) return Algorithm::kThreePassReload;
  return Algorithm::kTwoPass;
}

Status select_kernels(Isa requested, const IsaKernels** kernels, Isa* resolved) {
  Isa isa = requested;
  if (isa == Isa::kAuto) {
    const Status status = auto_isa(&isa);
    if (status != Status::kOk) return status;
  }
  if (!isa_supported(isa)) return Status::kUnsupportedIsa;
  *kernels = compiled_kernels(isa);
  *resolved = isa;
  return Status::kOk;
}

}  // namespace fastsoftmax
