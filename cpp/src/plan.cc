// The selection policy: every decision about how a call runs is made here, once per call, with
// the reason for it (explain() shows them).
#include "plan.h"

#include <algorithm>

#include "cpu/threads.h"

namespace fastsoftmax {
namespace {

// The automatic choice per target and row length, from bench/. AVX-512 on AMD Zen 5 (README,
// "Performance"): while a row's input and output fit in the L2 cache (1 MiB per core there) the
// algorithms run within a few percent of each other, compute-bound, and the reloading three-pass
// (one exp per element) is marginally ahead; beyond it the two-pass wins, by 15-40% from L3 and
// more from memory (two reads and one write instead of three reads and two writes). AVX2, whose
// exp costs about twice as much (an 8-entry table, no vscalefps), stays compute-bound from L3
// too: on AMD Zen 3 the reloading variant ran 0.86 against 1.28 ns per element at 3e5 elements,
// 0.75 against 0.88 at 1e6, and the two-pass was ahead from 3e6 (1.04 against 1.10). The scalar
// kernels compute exp with the C library, so the single-exp reloading variant wins at every length.
constexpr std::size_t kTwoPassElements = std::size_t{1} << 17;      // 512 KiB of float32 input
constexpr std::size_t kAvx2TwoPassElements = std::size_t{1} << 20;  // 4 MiB
// Rows shorter than this run transposed, a row per SIMD lane (Schedule::kShortRows): a row
// kernel's fixed cost per row (set-up, horizontal reductions, a division) outweighs its work on
// them (measured on AVX2, Zen 3: about 4x faster at n = 8, 1.4x at n = 48, even at n = 64, and
// slower from there: 1.3-2x at n = 96 and 128).
constexpr std::size_t kShortRowElements = 64;
// softmax_topk runs rows up to this long transposed, for k up to kShortTopkMaxK: it selects by
// k rounds of a maximum per lane, k times the work of a pass (measured on AVX2, Zen 3, against
// the row kernel: 16384 rows of 8 and 4096 of 64 with k = 2 6.6x and 8x faster, 4096 rows of 256
// with k = 8 2.9x).
constexpr std::size_t kShortTopkElements = 256;
constexpr std::int64_t kShortTopkMaxK = 8;

std::size_t element_bytes(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return 4;
    case DataType::kFloat64: return 8;
    default: return 2;
  }
}

bool has_row_kernels(const CpuTarget& target, DataType dtype) {
  const TargetKernels* kernels = target.kernels();
  if (kernels == nullptr) return false;
  switch (dtype) {
    case DataType::kFloat32: return kernels->f32 != nullptr;
    case DataType::kFloat64: return kernels->f64 != nullptr;
    case DataType::kFloat16: return kernels->f16 != nullptr;
    case DataType::kBFloat16: return kernels->bf16 != nullptr;
  }
  return false;
}

// The target whose kernels run: the implementation's own for this dtype, else those of the
// nearest lower target that has them (float64 on the SIMD targets: the scalar ones; float32 on
// avx512_bf16: avx512's). Temperatures the SIMD kernels cannot fold in run the scalar kernels.
void choose_kernels(const Call& call, Plan& plan) {
  const double t = call.options.temperature;
  if (t < kSimdMinTemperature || t > kSimdMaxTemperature) {
    plan.kernel_target = &cpu_target(Isa::kScalar);
    plan.kernel_reason =
        "temperature outside [2^-20, 2^20]: the SIMD kernels fold powers of 1/temperature into float constants, "
        "so the scalar kernels run";
    return;
  }
  const CpuTarget* target = plan.implementation;
  while (!has_row_kernels(*target, call.dtype)) target = &cpu_target(static_cast<Isa>(static_cast<int>(target->isa()) - 1));
  plan.kernel_target = target;
  plan.kernel_reason = target == plan.implementation
                           ? "the implementation's own kernels for this dtype"
                           : "the implementation has no kernels of its own for this dtype: those of the nearest "
                             "lower target that has them";
}

// softmax and log_softmax: Algorithm::kAuto's choice.
void choose_algorithm(const Call& call, bool columns, Plan& plan) {
  const bool simd = plan.kernel_target->isa() != Isa::kScalar;
  const bool half = call.dtype == DataType::kFloat16 || call.dtype == DataType::kBFloat16;
  if (call.options.algorithm != Algorithm::kAuto) {
    plan.algorithm = call.options.algorithm;
    plan.algorithm_reason = "asked for (algorithm)";
  } else if (columns) {
    plan.algorithm = Algorithm::kTwoPass;
    plan.algorithm_reason = "auto: column blocks are read from memory a row at a time, so the fewest passes win";
  } else if (half && simd) {
    plan.algorithm = Algorithm::kTwoPass;
    plan.algorithm_reason =
        "auto: 16-bit rows; three_pass_reload would store its terms in the 16-bit output and round them twice";
  } else if (!simd) {
    plan.algorithm = Algorithm::kThreePassReload;
    plan.algorithm_reason = "auto: the scalar kernels compute exp with the C library, so one exp per element wins";
  } else if (plan.kernel_target->isa() == Isa::kAvx2) {
    const bool compute_bound = call.n < kAvx2TwoPassElements;
    plan.algorithm = compute_bound ? Algorithm::kThreePassReload : Algorithm::kTwoPass;
    plan.algorithm_reason =
        compute_bound ? "auto: AVX2 rows under 2^20 elements are compute-bound (in L2 or L3), where one exp per "
                        "element wins"
                      : "auto: AVX2 rows of 2^20 elements or more are memory-bound, where the least traffic wins";
  } else if (call.n < kTwoPassElements) {
    plan.algorithm = Algorithm::kThreePassReload;
    plan.algorithm_reason =
        "auto: rows under 2^17 elements stay in L2, where the kernels are compute-bound and one exp per element wins";
  } else {
    plan.algorithm = Algorithm::kTwoPass;
    plan.algorithm_reason = "auto: rows of 2^17 elements or more leave L2, where the least memory traffic wins";
  }
  if (call.operation == Operation::kLogSoftmax && plan.algorithm == Algorithm::kThreePassReload) {
    plan.algorithm = Algorithm::kThreePassRecompute;
    plan.algorithm_reason =
        "three_pass_reload chosen or asked for, but log_softmax's last pass needs only x: nothing to reload, so it "
        "runs as three_pass_recompute";
  }
}

// Rows next to each other with strided elements (a softmax along a non-contiguous axis).
bool columns_adjacent(const Call& call) {
  const Operand& x = call.inputs[0];
  const Operand& y = call.outputs[0];
  return call.rows > 1 && call.n > 1 && x.row_stride == 1 && y.row_stride == 1 && x.stride != 1;
}

void choose_threads(const Call& call, Plan& plan) {
  const int requested = call.options.cpu.num_threads;
  plan.threads = useful_threads(call.rows * call.n * element_bytes(call.dtype), requested);
  const std::size_t asked = static_cast<std::size_t>(requested > 0 ? requested : get_num_threads());
  if (plan.threads == asked) {
    plan.threads_reason = requested > 0 ? "as asked (num_threads)" : "get_num_threads(), the default";
  } else {
    plan.threads_reason = "fewer than asked: at most one per 256 KiB of input and per available CPU";
  }
}

// Whether rows transposed into blocks of columns fill enough of their lanes to pay (a block costs
// the same however few of its lanes are rows): at least a quarter of a block.
bool fills_column_blocks(std::size_t rows, const TargetKernels& kernels) {
  return rows >= kernels.f32_columns->block_columns / 4;
}

// Threads share out blocks of columns (or of transposed rows): no more threads than blocks.
void limit_threads_to_blocks(const Call& call, Plan& plan) {
  const std::size_t width = plan.kernel_target->kernels()->f32_columns->block_columns;
  plan.threads = std::min(plan.threads, (call.rows + width - 1) / width);
}

// logsumexp, the states, the second passes from a state and masked rows: a reduction to the row's
// state (two-pass's first pass; online's on the scalar target, already relative to the maximum),
// then, for outputs of x's shape, a write pass from it.
void plan_state_passes(const Call& call, Plan& plan) {
  const bool scalar = plan.kernel_target->isa() == Isa::kScalar;
  const bool from_state =
      call.operation == Operation::kSoftmaxFromState || call.operation == Operation::kLogSoftmaxFromState;
  plan.algorithm = scalar ? Algorithm::kOnline : Algorithm::kTwoPass;
  if (from_state) {
    plan.algorithm_reason = "the second pass from a given state (two-pass's output pass)";
  } else if (call.mask.data != nullptr && call.operation != Operation::kLogSumExp &&
             call.operation != Operation::kSoftmaxState) {
    plan.algorithm_reason =
        scalar ? "masked rows: online's first pass, masked entries skipped, then its output pass"
               : "masked rows: two-pass's first pass, masked entries read as -inf, then its output pass";
  } else {
    plan.algorithm_reason = scalar ? "one pass over the row: online's first pass (a running maximum and sum)"
                                   : "one pass over the row: two-pass's first pass ((mantissa, exponent) sums, "
                                     "no maximum pass)";
  }
  const Operand& x = call.inputs[0];
  const bool writes = call.operation == Operation::kSoftmax || call.operation == Operation::kLogSoftmax;
  const bool contiguous = x.stride == 1 && (call.mask.data == nullptr || call.mask.stride == 1) &&
                          (!writes || call.outputs[0].stride == 1);
  // Masked softmax and log_softmax split where their unmasked passes do (float32 on a SIMD target).
  const bool splits = !from_state && call.inputs[1].data == nullptr &&
                      (!writes || (call.dtype == DataType::kFloat32 && !scalar));
  if (contiguous && splits && split_pays(call.rows, call.n, plan.threads)) {
    plan.schedule = Schedule::kSplitRows;
    plan.schedule_reason = "few long rows: each split into slices across the threads, their states merged in a fixed "
                           "order";
  } else {
    plan.schedule = Schedule::kRows;
    plan.schedule_reason = contiguous ? "whole rows, shared out among the threads"
                                      : "whole rows, strided operands gathered contiguous (and scattered back)";
  }
}

}  // namespace

const char* schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::kOneElement: return "one element";
    case Schedule::kRows: return "rows";
    case Schedule::kColumns: return "columns";
    case Schedule::kSplitRows: return "split rows";
    case Schedule::kShortRows: return "short rows";
  }
  return "unknown";
}

Plan plan(const Call& call) {
  Plan plan;
  plan.status = validate(call);
  if (plan.status != Status::kOk) return plan;
  const Options& options = call.options;
  plan.temperature = {options.temperature, 1.0 / options.temperature};

  if (options.cpu.isa != Isa::kAuto) {
    plan.implementation = &cpu_target(options.cpu.isa);
    plan.implementation_reason = "asked for (isa)";
  } else {
    plan.implementation = &cpu_target(auto_isa_choice().isa);
    plan.implementation_reason = auto_isa_choice().variable_set ? "isa auto: FASTSOFTMAX_ISA names it"
                                                                : "isa auto: the best implementation this CPU supports";
  }
  choose_kernels(call, plan);
  choose_threads(call, plan);
  const Operand& x = call.inputs[0];

  if (call.operation == Operation::kTopkSoftmax && !router_runs_topk(call)) {
    const bool simd_sigmoid = call.dtype == DataType::kFloat32 && call.router.scoring == Scoring::kSigmoid &&
                              plan.kernel_target->isa() != Isa::kScalar;
    if (!simd_sigmoid) plan.kernel_target = &cpu_target(Isa::kScalar);
    plan.kernel_reason = simd_sigmoid ? "float32 sigmoid scores: their exponentials by the target's output pass (the "
                                        "chosen experts' weights again in double), the selection portable code"
                                      : "the router's scores and selection are portable code, in extended precision";
    plan.algorithm = Algorithm::kOnline;
    plan.algorithm_reason = "scores, the kept groups and the k best in one pass over each row's scores";
    plan.schedule = Schedule::kRows;
    plan.schedule_reason = "whole rows (tokens), shared out among the threads";
    return plan;
  }
  if (call.operation == Operation::kSample) {
    const bool scalar = plan.kernel_target->isa() == Isa::kScalar;
    plan.algorithm = scalar ? Algorithm::kOnline : Algorithm::kTwoPass;
    plan.algorithm_reason =
        scalar ? "the normalizer by online's first pass (with top_k: softmax_topk's fused pass), then the filters on "
                 "the entries that may be kept, and the draw"
               : "the normalizer by two-pass's first pass (with top_k: softmax_topk's fused pass), then the filters "
                 "on the entries that may be kept, and the draw";
    plan.schedule = Schedule::kRows;
    plan.schedule_reason = x.stride == 1 ? "whole rows, shared out among the threads (each row's random numbers "
                                           "depend on its index only)"
                                         : "whole rows, each gathered contiguous first (a strided axis)";
    return plan;
  }
  if (call.operation == Operation::kSoftmaxTopk || router_runs_topk(call)) {
    plan.algorithm = Algorithm::kOnline;
    plan.algorithm_reason = "softmax_topk fuses the online normalizer with the selection (Milakov & Gimelshein, Alg. 4)";
    if (call.n == 1) {
      plan.schedule = Schedule::kOneElement;
      plan.schedule_reason = "one-element rows: the checked path gives exactly 1, or NaN";
    } else if (call.mask.data != nullptr) {
      plan.schedule = Schedule::kRows;
      plan.schedule_reason = "masked rows: each copied with its masked entries as -inf, then selected whole";
    } else if (call.dtype == DataType::kFloat32 && plan.kernel_target->isa() != Isa::kScalar &&
               plan.kernel_target->kernels()->f32_columns != nullptr && x.stride == 1 &&
               fills_column_blocks(call.rows, *plan.kernel_target->kernels()) && call.n <= kShortTopkElements &&
               call.k <= kShortTopkMaxK) {
      plan.schedule = Schedule::kShortRows;
      plan.schedule_reason =
          "short rows and small k: blocks of rows transposed, one row per SIMD lane, the k best chosen in k rounds "
          "of a maximum per lane";
      limit_threads_to_blocks(call, plan);
    } else if (x.stride == 1 && split_pays(call.rows, call.n, plan.threads)) {
      plan.schedule = Schedule::kSplitRows;
      plan.schedule_reason =
          "few long rows: each split across the threads, every thread selecting in its slice, the normalizers "
          "and candidates merged";
    } else {
      plan.schedule = Schedule::kRows;
      plan.schedule_reason = x.stride == 1 ? "whole rows, shared out among the threads"
                                           : "whole rows, each gathered contiguous first (a strided axis)";
    }
    return plan;
  }

  if ((call.operation != Operation::kSoftmax && call.operation != Operation::kLogSoftmax) || call.mask.data != nullptr) {
    plan_state_passes(call, plan);
    return plan;
  }

  const Operand& y = call.outputs[0];
  const TargetKernels& kernels = *plan.kernel_target->kernels();
  const bool simd_float32 = call.dtype == DataType::kFloat32 && plan.kernel_target->isa() != Isa::kScalar;
  const bool columns = simd_float32 && kernels.f32_columns != nullptr && columns_adjacent(call);
  choose_algorithm(call, columns, plan);
  if (call.n == 1) {
    plan.schedule = Schedule::kOneElement;
    plan.schedule_reason =
        "one-element rows are exactly 1 (log: 0), or NaN: the checked path says so exactly, where a kernel could "
        "leave a rounding of exp(x) / exp(x)";
  } else if (columns) {
    plan.schedule = Schedule::kColumns;
    plan.schedule_reason =
        "a strided axis whose softmaxes lie side by side: blocks of adjacent columns read a row at a time, one "
        "softmax per SIMD lane, nothing gathered";
  } else if (simd_float32 && kernels.f32_columns != nullptr && x.stride == 1 && y.stride == 1 &&
             fills_column_blocks(call.rows, kernels) && call.n < kShortRowElements) {
    plan.schedule = Schedule::kShortRows;
    plan.schedule_reason =
        "short rows: blocks of rows transposed into column blocks, one row per SIMD lane, so no per-row set-up, "
        "horizontal sum or division";
  } else if (simd_float32 && kernels.f32_slices != nullptr && x.stride == 1 && y.stride == 1 &&
             split_pays(call.rows, call.n, plan.threads)) {
    plan.schedule = Schedule::kSplitRows;
    plan.schedule_reason =
        "few long rows: each split into slices across the threads, their partial normalizers merged in a fixed order";
  } else {
    plan.schedule = Schedule::kRows;
    plan.schedule_reason = x.stride == 1 && y.stride == 1
                               ? "whole rows, shared out among the threads"
                               : "whole rows, each gathered contiguous, computed and scattered back (a strided axis)";
  }
  if (plan.schedule == Schedule::kColumns || plan.schedule == Schedule::kShortRows) limit_threads_to_blocks(call, plan);
  return plan;
}

}  // namespace fastsoftmax
