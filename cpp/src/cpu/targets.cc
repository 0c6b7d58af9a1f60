// The CPU backend's implementations: CPU detection (cpuid + xgetbv, once), the targets with the
// features each requires, and the FASTSOFTMAX_ISA override of Isa::kAuto. Compiled for the
// baseline target: nothing here may use AVX.
#include "cpu/targets.h"

#include <cstdlib>
#include <string>
#include <vector>

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

// ---- The targets ------------------------------------------------------------------------------

// Every feature, in CpuFeatures order (cpu_features() in Python); a target requires a set of
// them, as a mask of bits in this order.
constexpr CpuFeature kAllFeatures[] = {
    {"avx2", &CpuFeatures::avx2},         {"fma", &CpuFeatures::fma},
    {"f16c", &CpuFeatures::f16c},         {"avx512f", &CpuFeatures::avx512f},
    {"avx512dq", &CpuFeatures::avx512dq}, {"avx512bw", &CpuFeatures::avx512bw},
    {"avx512vl", &CpuFeatures::avx512vl}, {"avx512bf16", &CpuFeatures::avx512bf16},
    {"os_saves_ymm", &CpuFeatures::os_saves_ymm}, {"os_saves_zmm", &CpuFeatures::os_saves_zmm}};
constexpr int kNumFeatures = static_cast<int>(sizeof(kAllFeatures) / sizeof(kAllFeatures[0]));
enum FeatureBit : unsigned {
  kAvx2Bit = 1u << 0,
  kFmaBit = 1u << 1,
  kF16cBit = 1u << 2,
  kAvx512fBit = 1u << 3,
  kAvx512dqBit = 1u << 4,
  kAvx512bwBit = 1u << 5,
  kAvx512vlBit = 1u << 6,
  kAvx512Bf16Bit = 1u << 7,
  kOsSavesYmmBit = 1u << 8,
  kOsSavesZmmBit = 1u << 9,
};
constexpr unsigned kAvx2Requires = kAvx2Bit | kFmaBit | kF16cBit | kOsSavesYmmBit;
constexpr unsigned kAvx512Requires =
    kAvx512fBit | kAvx512dqBit | kAvx512bwBit | kAvx512vlBit | kAvx2Bit | kFmaBit | kF16cBit | kOsSavesZmmBit;
constexpr unsigned kAvx512Bf16Requires = kAvx512Requires | kAvx512Bf16Bit;

// The targets' kernels where this build has them.
#if defined(FASTSOFTMAX_HAVE_AVX2)
const TargetKernels* const kAvx2Kernels = &avx2::kKernels;
#else
const TargetKernels* const kAvx2Kernels = nullptr;
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512)
const TargetKernels* const kAvx512Kernels = &avx512::kKernels;
#else
const TargetKernels* const kAvx512Kernels = nullptr;
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512_BF16)
const TargetKernels* const kAvx512Bf16Kernels = &avx512_bf16::kKernels;
#else
const TargetKernels* const kAvx512Bf16Kernels = nullptr;
#endif

// Resolved once: FASTSOFTMAX_ISA if set (and usable), else the best supported target.
AutoIsa resolve_auto_isa() {
  Isa best = Isa::kScalar;
  for (int i = 0; i < kNumCpuTargets; ++i) {
    if (cpu_targets()[i]->supported()) best = cpu_targets()[i]->isa();
  }
  const char* forced = std::getenv("FASTSOFTMAX_ISA");
  if (forced == nullptr || *forced == '\0') return {true, best, false, "", true};
  Isa isa;
  if (!parse_isa(forced, &isa)) return {false, Isa::kScalar, true, forced, false};
  if (isa == Isa::kAuto) return {true, best, true, forced, true};
  if (!cpu_target(isa).supported()) return {false, Isa::kScalar, true, forced, true};
  return {true, isa, true, forced, true};
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_cpu_features();
  return features;
}

const CpuFeature* cpu_feature_list(int* count) {
  *count = kNumFeatures;
  return kAllFeatures;
}

const char* CpuTarget::name() const { return isa_name(isa_); }

CpuTarget::CpuTarget(Isa isa, const char* description, unsigned required, const TargetKernels* kernels)
    : isa_(isa), description_(description), kernels_(kernels), supported_(kernels != nullptr) {
  const CpuFeatures& have = cpu_features();
  for (int f = 0; f < kNumFeatures; ++f) {
    if (((required >> f) & 1u) == 0) continue;
    required_features_ += (required_features_.empty() ? "" : " ") + std::string(kAllFeatures[f].name);
    supported_ = supported_ && have.*kAllFeatures[f].flag;
  }
}

const CpuTarget* const* cpu_targets() {
  // Made once; later calls pay one guard check.
  static const CpuTarget* const* const targets = [] {
    static const CpuTarget scalar_target(
        Isa::kScalar, "portable C++ for any CPU: exp from the C library, sums in a wider type", 0, &scalar::kKernels);
    static const CpuTarget avx2_target(Isa::kAvx2, "AVX2 + FMA kernels, 8 floats per vector; float16 through F16C",
                                       kAvx2Requires, kAvx2Kernels);
    static const CpuTarget avx512_target(Isa::kAvx512, "AVX-512 kernels, 16 floats per vector; float16 through F16C",
                                         kAvx512Requires, kAvx512Kernels);
    static const CpuTarget avx512_bf16_target(
        Isa::kAvx512Bf16, "avx512, with bfloat16 outputs rounded by AVX512_BF16's vcvtneps2bf16 (the same bits)",
        kAvx512Bf16Requires, kAvx512Bf16Kernels);
    static const CpuTarget* const list[kNumCpuTargets] = {&scalar_target, &avx2_target, &avx512_target,
                                                          &avx512_bf16_target};
    return list;
  }();
  return targets;
}

const AutoIsa& auto_isa_choice() {
  static const AutoIsa choice = resolve_auto_isa();
  return choice;
}

}  // namespace fastsoftmax
