// fastsoftmax: softmax, log-softmax, logsumexp, fused softmax + top-k and mergeable normalizer
// states over rows, with four selectable algorithms and runtime-selected implementations (scalar,
// AVX2+FMA, AVX-512, AVX-512 + BF16).
//
// Two ways to call it:
//   - the typed functions (softmax, log_softmax, logsumexp, softmax_topk, softmax_state and the
//     second passes from a state, over float, double, Float16 and BFloat16 rows described by a
//     RowLayout), and
//   - the generic Call (any operation, any element type, one Operand per input and output, and an
//     optional mask), which run() executes and explain() describes without running.
// Both go through the same validation and planning (docs/architecture.md). Errors are reported
// through the returned Status; explain() says in words what is wrong. No function throws or aborts.
//
// Thread safety: every function may be called from any number of threads at once, on the same or
// different data, as long as no call writes memory that another call running at the same time
// reads or writes (calls share no mutable state but the settings below). set_num_threads() may
// be called at any time; calls already running keep the thread count they started with. The
// implementation chosen for Isa::kAuto (and FASTSOFTMAX_ISA) and the CPU features are read once,
// on first use. A call that may use threads uses one process-wide team; while one call uses it,
// other calls run on their calling threads, so concurrent callers never wait for each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fastsoftmax/version.h"

namespace fastsoftmax {

// How the row's normalizer sum(exp(x)) is found before the outputs are written.
enum class Algorithm {
  kAuto,                // chosen per call (explain() says which and why)
  kTwoPass,             // Dukhan & Ablavatski 2020: sum as (mantissa, exponent) pairs, then write
  kThreePassReload,     // max; store exp(x - max) while summing; scale the stored values
  kThreePassRecompute,  // max; sum exp(x - max); recompute exp(x - max) / sum
  kOnline,              // Milakov & Gimelshein 2018: running max and rescaled running sum, then write
};

// The CPU implementations (instruction-set targets), in priority order: implementations() lists
// them with their descriptions and the CPU features each needs.
enum class Isa {
  kAuto,        // FASTSOFTMAX_ISA from the environment if set, else the best this CPU supports
  kScalar,      // portable C++, any CPU
  kAvx2,        // AVX2 + FMA + F16C
  kAvx512,      // AVX-512 F/DQ/BW/VL
  kAvx512Bf16,  // kAvx512, with bfloat16 outputs rounded by AVX512_BF16's vcvtneps2bf16
};

// What a call computes. Each operation has a fixed list of operands (Call::inputs, outputs).
// Operands marked optional may have null data (see each).
enum class Operation {
  kSoftmax,      // inputs {x}; outputs {y}: n elements per row, y = softmax(x / temperature)
  kLogSoftmax,   // inputs {x}; outputs {y}: n elements per row, y = log_softmax(x / temperature)
  kSoftmaxTopk,  // inputs {x}; outputs {values, indices}: k per row (indices are int64)
  // inputs {x, b (optional: null = all ones; x's dtype)}; outputs {lse, sign (optional)}: one
  // element per row, lse = log|sum_i b_i exp(x_i / temperature)|, sign = the sign of the sum.
  kLogSumExp,
  kSoftmaxState,         // inputs {x}; outputs {states}: one NormalizerState per row
  kSoftmaxFromState,     // inputs {x, states (one NormalizerState per row)}; outputs {y}: n per row
  kLogSoftmaxFromState,  // inputs {x, states}; outputs {y}: n per row
  // The top-k gate of a mixture of experts (vLLM's topk_softmax, DeepSeek-V3's grouped top-k; see
  // RouterOptions): inputs {x (logits, a row per token), bias (optional: n floats shared by every
  // row, row stride ignored)}; outputs {weights (k float per row), ids (k int32 per row)}.
  kTopkSoftmax,
  // Sampling a token from each row of logits (vLLM's sampler; see SamplingParams and sample()):
  // inputs {x (logits), params (one SamplingParams per row; row stride 0 shares one)}; outputs
  // {ids (one int64 per row), probabilities (optional: one float per row)}.
  kSample,
};

// How kTopkSoftmax scores the experts of a row (a token's router logits).
enum class Scoring {
  kSoftmax,  // softmax(x) over the experts
  kSigmoid,  // sigmoid(x) of each expert
};
// kTopkSoftmax's parameters. Experts are chosen by score + bias (bias: the optional input), the k
// largest in order, ties to the lower index; their weights are their unbiased scores, divided by
// their sum if `renormalize`, then multiplied by `scaling`. Groups (DeepSeek-V3): the n experts
// are split into `groups` groups of n / groups consecutive ones, each scored by its largest
// biased score (with a bias: the sum of its two largest), and only the experts of the
// `topk_group` best groups (ties to the lower index) can be chosen. groups = 0: no groups.
struct RouterOptions {
  Scoring scoring = Scoring::kSoftmax;
  bool renormalize = false;
  int groups = 0;
  int topk_group = 0;
  double scaling = 1.0;
};

// kSample's parameters of one row (one request's, as vLLM's SamplingParams). The row's logits
// x are divided by the temperature, then filtered in this order (each step on the distribution the
// previous one left, renormalized):
//   - top_k: the k largest logits are kept, and every logit equal to the k-th (vLLM masks the
//     logits below the k-th largest);
//   - top_p: the smallest set of the largest probabilities whose sum reaches top_p (>=) is kept,
//     taken in decreasing order of logit (the probabilities' order), equal logits the lower
//     index first;
//   - min_p: the probabilities at least min_p times the largest are kept;
// then a token is drawn from what is kept, renormalized. Temperatures below kGreedyTemperature
// take the first largest logit instead (greedy: vLLM's argmax), whatever the filters.
struct SamplingParams {
  double temperature = 1.0;  // finite and >= 0
  std::int64_t top_k = 0;    // 0 or -1: all (vLLM's spellings of "off"); k >= n also keeps all
  double top_p = 1.0;        // in (0, 1]; 1: all
  double min_p = 0.0;        // in [0, 1]; 0: all
};
inline constexpr double kGreedyTemperature = 1e-5;  // vLLM's: temperatures below it are greedy
// The id sample() gives a row it cannot draw from (with its probability NaN): a row with a NaN,
// and a row with no entry above -inf (every entry -inf or masked).
inline constexpr std::int64_t kSampleNanRow = -1;
inline constexpr std::int64_t kSampleEmptyRow = -2;

// The element type of x and of the floating-point outputs.
enum class DataType {
  kFloat32,
  kFloat64,
  kFloat16,   // IEEE 754 binary16 (Float16)
  kBFloat16,  // the upper half of a float32 (BFloat16)
};

// What a call returns: kOk, or the one reason it was refused (nothing was written then) or
// failed. status_message() gives each a sentence; explain() gives the same reason with the
// call's values ("k must be in 1..n (n = 5, the row length), got 9"). Marked [[nodiscard]]: every
// function returning a Status warns when the result is ignored.
enum class [[nodiscard]] Status {
  kOk = 0,
  // The arguments of the call:
  kUnknownOperation,     // Call::operation is not an Operation
  kUnknownDtype,         // Call::dtype is not a DataType
  kUnknownAlgorithm,     // Options::algorithm is not an Algorithm
  kUnknownIsa,           // CpuOptions::isa is not an Isa
  kNegativeThreads,      // CpuOptions::num_threads < 0
  kBadTemperature,       // Options::temperature is not finite and > 0
  kNotFusedAlgorithm,    // softmax_topk with an algorithm other than kAuto or kOnline
  kBadK,                 // softmax_topk's k is not in 1..n
  kNullPointer,          // an input or output pointer is null (with rows and n both > 0)
  kOutputOverlapsItself,  // an output's strides put several results on one element (a stride of 0, or rows that overlap)
  kOverlappingMemory,    // an output shares memory with x (other than exactly in place) or another output
  // merge_states:
  kMismatchedStates,     // the parts have different temperatures
  // topk_softmax:
  kBadRouterGroups,      // groups does not divide n, or topk_group not in 1..groups, or k above their experts
  kBadRouterOptions,     // an unknown Scoring, or a scaling that is not finite
  // sample:
  kBadSamplingParams,    // a row's SamplingParams out of range (the ranges its fields give)
  // The implementation asked for:
  kIsaNotCompiled,       // CpuOptions::isa names a target this build does not contain
  kIsaNotSupported,      // CpuOptions::isa names a target this CPU (or OS) cannot run
  kBadEnvironmentIsa,    // isa kAuto, and FASTSOFTMAX_ISA names no ISA or one not available here
  // The CUDA backend (fastsoftmax/cuda.h):
  kDeviceDtype,          // float64 on the device (the CUDA kernels compute in float32)
  kDeviceElementStride,  // a row's elements are not adjacent in device memory
  kDeviceTopkTooLarge,   // k above the CUDA kernels' capacity (cuda::kMaxTopk)
  kDeviceOperation,      // an operation, or a mask, the CUDA backend does not run (logsumexp, states)
  kDeviceHostMemory,     // a pointer of a device call is not device (or managed) memory
  kDeviceError,          // the CUDA runtime failed (fastsoftmax::cuda::last_error() says how)
};

// 16-bit floating-point values, as their bits: IEEE 754 binary16 (float16) and bfloat16 (the
// upper half of a float32). Computed in float32 (loaded and stored with in-register conversion by
// the SIMD kernels: F16C for float16; shifts for bfloat16, and vcvtneps2bf16 on kAvx512Bf16, else
// integer round-to-nearest-even) and written back rounded to nearest even; NaN stays NaN.
// Algorithm::kAuto runs kTwoPass on them with the SIMD ISAs: kThreePassReload stores its terms in
// the 16-bit output, so its results are rounded twice (within 1.5 ULP of the 16-bit type instead
// of 0.5 and a little).
struct Float16 {
  std::uint16_t bits;
};
struct BFloat16 {
  std::uint16_t bits;
};

// One English sentence for each status ("ok" for kOk); explain() adds the call's values.
const char* status_message(Status status);

// `rows` rows of `n` elements each, for the typed functions. Strides count elements, not bytes,
// and may be negative. Row r, element i of x is x[r * x_row_stride + i * x_stride]; the outputs
// use the y strides. Input and output may be the same memory with the same layout (in place);
// any other overlap of the memory they span is refused (kOverlappingMemory).
struct RowLayout {
  std::size_t rows = 1;
  std::size_t n = 0;
  std::ptrdiff_t x_row_stride = 0;
  std::ptrdiff_t y_row_stride = 0;
  std::ptrdiff_t x_stride = 1;
  std::ptrdiff_t y_stride = 1;

  // `rows` back-to-back rows of `n` elements, the same layout for input and output.
  static RowLayout contiguous(std::size_t rows, std::size_t n) {
    RowLayout layout;
    layout.rows = rows;
    layout.n = n;
    layout.x_row_stride = static_cast<std::ptrdiff_t>(n);
    layout.y_row_stride = static_cast<std::ptrdiff_t>(n);
    return layout;
  }
};

// Options of the CPU implementations.
struct CpuOptions {
  Isa isa = Isa::kAuto;
  // Threads for this call: 0 = get_num_threads(); 1 = the calling thread only. Capped at the CPUs
  // the process may use. Small work stays on the calling thread whatever the setting; so does a
  // call made while another call of the process is using threads, and any call in a forked child.
  int num_threads = 0;
};

struct Options {
  Algorithm algorithm = Algorithm::kAuto;
  // softmax(x / temperature), log_softmax(x / temperature): finite and > 0, else kBadTemperature.
  // Fused into the kernels (no extra pass, no temporary) without rounding x / temperature: the
  // results keep the accuracy of temperature 1. Temperatures outside [2^-20, 2^20] run the scalar
  // kernels (the SIMD ones fold powers of 1/temperature into float constants).
  double temperature = 1.0;
  CpuOptions cpu;
};

// The default thread count of calls with num_threads = 0. Initially FASTSOFTMAX_NUM_THREADS if
// set, else OMP_NUM_THREADS, else the number of CPUs in the process's affinity mask (read once).
// set_num_threads(n) with n <= 0 restores that automatic default.
void set_num_threads(int threads);
int get_num_threads();

// ---- The typed functions ----------------------------------------------------------------------

// y = softmax(x) along each row: exp(x_i) / sum_j exp(x_j).
// Special values (identical for every algorithm and implementation):
//   - a NaN anywhere in a row makes the whole row NaN;
//   - a row containing +inf: the k entries equal to +inf get 1/k each, every other entry 0;
//   - a row of only -inf: NaN;
//   - -inf entries in an otherwise finite row give exactly 0;
//   - huge finite values (up to the type's max) never overflow.
Status softmax(const float* x, float* y, const RowLayout& layout, const Options& options = {});
Status softmax(const double* x, double* y, const RowLayout& layout, const Options& options = {});
Status softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options = {});
Status softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options = {});

// y = log_softmax(x) = x_i - log(sum_j exp(x_j)), with the same special-value rules
// (a +inf row gives -log(k) at the +inf entries and -inf elsewhere; -inf entries give -inf).
Status log_softmax(const float* x, float* y, const RowLayout& layout, const Options& options = {});
Status log_softmax(const double* x, double* y, const RowLayout& layout, const Options& options = {});
Status log_softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options = {});
Status log_softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options = {});

// The element types of x and the outputs (float, double, Float16, BFloat16).
template <class T>
inline constexpr bool is_element_type_v = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                          std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// One contiguous row of n elements, for every element type.
template <class T, class = std::enable_if_t<is_element_type_v<T>>>
Status softmax(const T* x, T* y, std::size_t n, const Options& options = {}) {
  return softmax(x, y, RowLayout::contiguous(1, n), options);
}
template <class T, class = std::enable_if_t<is_element_type_v<T>>>
Status log_softmax(const T* x, T* y, std::size_t n, const Options& options = {}) {
  return log_softmax(x, y, RowLayout::contiguous(1, n), options);
}

// Fused softmax + top-k (Milakov & Gimelshein 2018, Alg. 4): for each row of x, the k largest
// probabilities of softmax(x) and their indices, found in one pass over the row (the online
// normalizer and a running top-k) without writing the softmax anywhere. The arguments come in
// softmax's order: x, the outputs (values, indices), the layout, then k and the options.
//   - x is read as described by layout's x fields and layout.n; row r's j-th result goes to
//     values[r * layout.y_row_stride + j * layout.y_stride], its index (0 <= index < n) to the
//     same place of indices.
//   - Order (sorted = true): the larger probability first; equal inputs, the lower index first.
//     Results follow the inputs, so entries whose probabilities both round to 0 still come in
//     order of x. sorted = false: the same k results in an unspecified order.
//   - 1 <= k <= n, else kBadK (nothing written). options.algorithm must be kAuto or kOnline (the
//     fused algorithm), else kNotFusedAlgorithm.
//   - Special values as softmax: a row with NaN gives NaN probabilities at indices 0..k-1; the
//     entries equal to +inf come first with 1/(their count) each, all others 0; a row of only
//     -inf gives NaN probabilities at indices 0..k-1.
// Probabilities are within 2 ULP of the correctly rounded softmax (computed in double from the
// row's float32 sum, long double for float64 rows).
Status softmax_topk(const float* x, float* values, std::int64_t* indices, const RowLayout& layout, std::size_t k,
                    bool sorted = true, const Options& options = {});
Status softmax_topk(const double* x, double* values, std::int64_t* indices, const RowLayout& layout, std::size_t k,
                    bool sorted = true, const Options& options = {});
Status softmax_topk(const Float16* x, Float16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted = true, const Options& options = {});
Status softmax_topk(const BFloat16* x, BFloat16* values, std::int64_t* indices, const RowLayout& layout,
                    std::size_t k, bool sorted = true, const Options& options = {});
// One contiguous row of n elements: k contiguous values and indices.
template <class T, class = std::enable_if_t<is_element_type_v<T>>>
Status softmax_topk(const T* x, T* values, std::int64_t* indices, std::size_t n, std::size_t k, bool sorted = true,
                    const Options& options = {}) {
  RowLayout layout = RowLayout::contiguous(1, n);
  layout.y_row_stride = static_cast<std::ptrdiff_t>(k);
  return softmax_topk(x, values, indices, layout, k, sorted, options);
}

// ---- logsumexp and mergeable normalizer states ---------------------------------------------------

// out[r * layout.y_row_stride] = log(sum_i exp(x_i / temperature)) over row r (layout.y_stride is
// not used), in one pass over the row. Within 2 ULP of the correctly rounded result (or 2 ULP of
// max(|result|, 1) in absolute terms); results near 0 are found accurately (logsumexp({0, -40})
// is 4.25e-18, not 0). A row of only -inf, or an empty one, gives -inf; NaN anywhere gives NaN;
// +inf (and no NaN) gives +inf. Weights b and masks: the generic Call (Operation::kLogSumExp).
Status logsumexp(const float* x, float* out, const RowLayout& layout, const Options& options = {});
Status logsumexp(const double* x, double* out, const RowLayout& layout, const Options& options = {});
Status logsumexp(const Float16* x, Float16* out, const RowLayout& layout, const Options& options = {});
Status logsumexp(const BFloat16* x, BFloat16* out, const RowLayout& layout, const Options& options = {});

// The softmax normalizer of a row, or of one shard of a row (Milakov & Gimelshein's (m, d) pair),
// in a plain layout that can be sent anywhere (40 bytes: five doubles). States of the shards of
// a row merge associatively (merge_states) into the state of the whole row; the second pass of
// each shard (softmax_from_state) then gives the same results as one call on the whole row.
//   - max: the largest entry that takes part, in x's units (not divided by the temperature);
//     -inf when no entry takes part (an empty shard, every entry masked) or all are -inf; NaN if
//     one is NaN; +inf if one is +inf (and none is NaN);
//   - sum: sum_i exp((x_i - max) / temperature) over the entries taking part: >= 1 when max is
//     finite; 0 when max is -inf; the number of +inf entries when max is +inf; NaN with max NaN;
//   - sum_low: the rest of that sum below sum's precision (sum + sum_low, |sum_low| <= half an
//     ulp of sum): float64 rows keep their sums in long double, and merges keep it, so that
//     sharded float64 results stay within 2 ULP (0 where long double is double);
//   - count: how many entries took part (masked entries do not), an integer;
//   - temperature: the temperature the state was computed at (merged states must share it).
struct NormalizerState {
  double max;
  double sum;
  double sum_low;
  double count;
  double temperature;
};

// states[r * layout.y_row_stride] = the state of row r of x (layout.y_stride is not used), in
// one pass over the row.
Status softmax_state(const float* x, NormalizerState* states, const RowLayout& layout, const Options& options = {});
Status softmax_state(const double* x, NormalizerState* states, const RowLayout& layout, const Options& options = {});
Status softmax_state(const Float16* x, NormalizerState* states, const RowLayout& layout,
                     const Options& options = {});
Status softmax_state(const BFloat16* x, NormalizerState* states, const RowLayout& layout,
                     const Options& options = {});

// Merges `count` states of one row's shards into *merged: counts add; a NaN max gives (NaN,
// NaN); else the largest max M, with sum = the +inf parts' sums for M = +inf, 0 for M = -inf,
// otherwise sum_j sum_j * exp((max_j - M) / temperature), computed in extended precision in one
// canonical order of the parts (so any order of the same parts gives the same bits; grouping
// them differently, ((a, b), c) against (a, (b, c)), agrees within rounding). count = 0 gives
// the empty state (-inf, 0, 0, 0, 1). kMismatchedStates if the temperatures differ.
Status merge_states(const NormalizerState* parts, std::size_t count, NormalizerState* merged);

// log(sum_i exp(x_i / temperature)) of the row whose (merged) state this is: max / temperature +
// log(sum + sum_low); -inf for max -inf, +inf for +inf, NaN for NaN.
double logsumexp_from_state(const NormalizerState& state);

// The second pass for one shard x of a row whose merged state is states[r * layout.y_row_stride]
// (layout.y_* give y's layout, as for softmax; the states' row stride is the y row stride too):
// y = exp((x - max) / temperature) / sum (log: (x - max) / temperature - log(sum)), at each
// state's own temperature (options.temperature is not used). Special values as one call on the
// whole row: max NaN gives NaN; +inf gives 1/sum at the +inf entries and 0 elsewhere (log:
// -log(sum), -inf); max -inf with count > 0 (a row of only -inf) gives NaN; count 0 gives 0
// (log: -inf). A state whose temperature is not finite and > 0 gives NaN.
Status softmax_from_state(const float* x, const NormalizerState* states, float* y, const RowLayout& layout,
                          const Options& options = {});
Status softmax_from_state(const double* x, const NormalizerState* states, double* y, const RowLayout& layout,
                          const Options& options = {});
Status softmax_from_state(const Float16* x, const NormalizerState* states, Float16* y, const RowLayout& layout,
                          const Options& options = {});
Status softmax_from_state(const BFloat16* x, const NormalizerState* states, BFloat16* y, const RowLayout& layout,
                          const Options& options = {});
Status log_softmax_from_state(const float* x, const NormalizerState* states, float* y, const RowLayout& layout,
                              const Options& options = {});
Status log_softmax_from_state(const double* x, const NormalizerState* states, double* y, const RowLayout& layout,
                              const Options& options = {});
Status log_softmax_from_state(const Float16* x, const NormalizerState* states, Float16* y,
                              const RowLayout& layout, const Options& options = {});
Status log_softmax_from_state(const BFloat16* x, const NormalizerState* states, BFloat16* y,
                              const RowLayout& layout, const Options& options = {});

// ---- Sampling from logits -----------------------------------------------------------------------

// One token id per row of logits x (ids[r * layout.y_row_stride]; layout.y_stride is not used),
// drawn from softmax(x / params.temperature) filtered by params (SamplingParams: vLLM's
// semantics), every row with the same parameters (the generic Call, Operation::kSample, takes
// them per row), without sorting the row:
//   - temperature only: one read of the row, in chunks: each chunk's normalizer (two-pass's first
//     pass) is merged into the row's running one, and the token moves into the chunk with the
//     chunk's share of the mass so far (one random number per chunk; the chunk, still in cache, is
//     then searched with a second);
//   - with filters: two reads. The first finds the normalizer (with top_k: softmax_topk's fused
//     pass, which also gives the k-th largest logit); the second collects the entries that may be
//     kept (those >= the k-th largest, or probabilities >= (1 - top_p) / 2n, or >= min_p times the
//     largest, which bound what the filters keep); the filters then run on those alone (top_p by a
//     weighted selection, not a sort) and a token is drawn from what is left.
// Random numbers: Philox4x64-10 (Salmon et al. 2011; NumPy's numpy.random.Philox), key (seed, 0),
// counter (draw, row, 0, 0), 53-bit uniforms: a row's tokens depend only on the seed, its index
// and its logits, never on the thread count. Each row's filters and draw are computed in the wide
// type (double; long double for float64) from weights exp((x - max) / temperature).
// Special rows: a NaN anywhere gives kSampleNanRow; a row whose entries are all -inf gives
// kSampleEmptyRow (greedy rows too); entries equal to +inf share the mass, as in softmax (the
// draw is among them). kBadSamplingParams if a field is out of its range (nothing written).
Status sample(const float* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,
              std::uint64_t seed, const Options& options = {});
Status sample(const double* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,
              std::uint64_t seed, const Options& options = {});
Status sample(const Float16* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,
              std::uint64_t seed, const Options& options = {});
Status sample(const BFloat16* x, std::int64_t* ids, const RowLayout& layout, const SamplingParams& params,
              std::uint64_t seed, const Options& options = {});

// ---- Conversions of the 16-bit types --------------------------------------------------------

// float to float16 / bfloat16, rounded to nearest even (as the kernels store them): values beyond
// the type's range become +-inf, NaN stays NaN (quiet), subnormals are kept.
Float16 to_float16(float value);
BFloat16 to_bfloat16(float value);
// float16 / bfloat16 to float: exact.
float to_float(Float16 value);
float to_float(BFloat16 value);

// ---- The generic call -------------------------------------------------------------------------

// One operand of a row-wise call: row r, element i at data + (r * row_stride + i * stride)
// elements of the operand's type (strides may be negative). Operands with one element per row
// ignore `stride`.
struct Operand {
  const void* data = nullptr;  // inputs are read only; outputs are written through it
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t stride = 1;
};

// Everything about a call: the operation, the element type, `rows` rows of `n` input elements,
// the operands in the order of Operation's comments, the operation's parameters and the options.
// An output may be its input exactly (same data, same strides: in place); any other overlap of
// the memory two operands span, outputs included, is refused (kOverlappingMemory).
//
// mask (every operation; data null: none): one byte per element of x, laid out as x's elements
// (strides in bytes), as jax.nn.softmax's `where`: entries whose byte is 0 take no part. They get
// 0 (log_softmax: -inf) and are never among softmax_topk's results ahead of an unmasked entry; a
// row with every entry masked gives 0 everywhere (log_softmax -inf, logsumexp -inf, its state
// count 0), never NaN. A row whose unmasked entries are all -inf gives NaN there, as a row of
// only -inf does.
struct Call {
  static constexpr int kMaxInputs = 2;
  static constexpr int kMaxOutputs = 2;

  Operation operation = Operation::kSoftmax;
  DataType dtype = DataType::kFloat32;
  std::size_t rows = 1;
  std::size_t n = 0;
  Operand inputs[kMaxInputs];
  Operand outputs[kMaxOutputs];
  Operand mask;
  std::int64_t k = 0;  // kSoftmaxTopk, kTopkSoftmax: results per row, 1 <= k <= n
  bool sorted = true;  // kSoftmaxTopk: results in order (see softmax_topk)
  RouterOptions router;  // kTopkSoftmax
  std::uint64_t seed = 0;  // kSample: the random numbers' key (see sample())
  Options options;
};

// Validates, plans and runs a call (the typed functions are this, with their types).
Status run(const Call& call);

// What a call would run, and why, without running it (nothing is read or written).
struct Explanation {
  Status status = Status::kOk;
  std::string error;           // status != kOk: the argument and the rule it breaks
  std::string implementation;  // the implementation asked for or chosen, e.g. "avx512"
  std::string kernel;          // the catalogue name of the kernel that runs (see kernels())
  std::string algorithm;       // the algorithm it runs, never "auto"
  std::string schedule;        // "rows", "short rows", "columns", "split rows" or "one element"
  int threads = 1;             // threads the call asks for (a call may still get fewer)
  // (choice, reason) pairs: "implementation", "kernel", "algorithm", "schedule", "threads".
  std::vector<std::pair<std::string, std::string>> reasons;

  // One line per field, each choice followed by its reason.
  std::string text() const;
};
Explanation explain(const Call& call);

// ---- Introspection and selection ----------------------------------------------------------

// Lower-case names as used by the Python API and FASTSOFTMAX_ISA: "auto", "scalar", "avx2",
// "avx512", "avx512_bf16"; "auto", "two_pass", "three_pass_reload", "three_pass_recompute",
// "online"; "softmax", "log_softmax", "softmax_topk", "logsumexp", "softmax_state",
// "softmax_from_state", "log_softmax_from_state", "topk_softmax", "sample"; "float32", "float64", "float16",
// "bfloat16".
const char* isa_name(Isa isa);
const char* algorithm_name(Algorithm algorithm);
const char* operation_name(Operation operation);
const char* dtype_name(DataType dtype);
// Every name of an enum in order (kAuto first where there is one), for the Python layer.
std::vector<std::string> isa_names();
std::vector<std::string> algorithm_names();
// Parse a name as above; false if unknown.
bool parse_isa(const std::string& name, Isa* isa);
bool parse_algorithm(const std::string& name, Algorithm* algorithm);

// An implementation: a CPU target (later a GPU backend's), as the planner sees it.
struct ImplementationInfo {
  Isa isa;                        // kAuto for the CUDA backend (fastsoftmax::cuda::implementation())
  std::string name;               // as isa_name(), or "cuda"
  std::string backend;            // "cpu" or "cuda"
  std::string description;
  std::string required_features;  // CPU features it needs, space-separated (cpu_features() names)
  int priority;                   // the higher, the earlier "auto" tries it
  bool compiled;                  // its kernels were compiled into this library
  bool supported;                 // compiled and usable on this CPU and OS
};
// Every implementation, lowest priority first.
std::vector<ImplementationInfo> implementations();

// ISAs whose kernels were compiled into this library (always includes kScalar), lowest first.
std::vector<Isa> compiled_isas();
// ISAs compiled in and usable on this CPU and OS, best last.
std::vector<Isa> supported_isas();
// True if `isa` is compiled in and usable here (kAuto always is).
bool isa_supported(Isa isa);
// What kAuto resolves to: FASTSOFTMAX_ISA if set, else the best supported ISA.
// Returns kBadEnvironmentIsa if FASTSOFTMAX_ISA names an unknown or unavailable ISA.
Status auto_isa(Isa* isa);

// A kernel variant of the catalogue: one name, in the manner of XNNPACK's,
// <dtype>-<operation>-<algorithm>-<target>-<exp method>-<tile>[-split], e.g.
// "f32-softmax-two_pass-avx512-lut16p3-u64": float32 softmax rows by the two-pass algorithm on
// AVX-512, exp by a 16-entry table and a degree-3 polynomial, 64 elements per unrolled block.
// Tiles: u<elements> (rows), c<columns> (blocks of adjacent columns); "-split": the passes that
// split a row across threads. The checked path (one-element and special rows) is "checked".
struct KernelInfo {
  std::string name;
  DataType dtype;
  Operation operation;
  std::string algorithm;  // an algorithm name, or "checked"
  Isa target;             // whose code it is (a CPU target; kAuto for another backend's kernels)
  std::string layout;     // "rows", "columns", "split rows"; CUDA: "warp rows", "block rows", "split rows", "top-k rows"
  std::string implementation;  // the implementation it belongs to: a CPU target's name, or "cuda"
};
// Every kernel compiled into this library (the CUDA backend's: fastsoftmax::cuda::kernels()).
std::vector<KernelInfo> kernels();

// CPU features relevant to the kernels, as detected at run time (cpuid + OS state via xgetbv).
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;  // float16 <-> float32 conversions
  bool avx512f = false;
  bool avx512dq = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;  // AVX512_BF16: vcvtneps2bf16 (the avx512_bf16 implementation)
  bool os_saves_ymm = false;  // XCR0 has SSE and AVX state
  bool os_saves_zmm = false;  // XCR0 also has opmask and ZMM state
};
const CpuFeatures& cpu_features();
// The same as (name, value) pairs in declaration order, by the names required_features uses.
std::vector<std::pair<std::string, bool>> cpu_feature_flags();

}  // namespace fastsoftmax
