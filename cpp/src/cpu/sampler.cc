// Sampling a token from a row of logits (cpu/sampler.h): the passes over the row, the filters on
// the entries that may be kept, and the draw. Compiled for the baseline target; the kernels it
// calls are those the plan chose.
#include "cpu/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "cpu/normalizer.h"
#include "cpu/philox.h"
#include "kernels/half.h"
#include "kernels/rules.h"

namespace fastsoftmax {
namespace {

// Temperature-only rows are read in chunks of this many elements: few enough to stay in the L1
// cache for the search of a chunk the token moves into, enough that a chunk's kernel call and
// random number cost little per element. About ln(n / chunk) + 0.6 chunks of a row are searched,
// on average, for logits in random order.
constexpr std::size_t kChunkElements = 2048;
// The second pass tests blocks of this many entries at once, and looks at the entries of a
// block one by one only when one of them may be kept.
constexpr std::size_t kCollectBlock = 64;
// The nucleus (top_p) selection sorts what is left of its range once it is this small.
constexpr std::size_t kSortedNucleus = 32;
// Before it, the entries are binned by (max - x) / temperature, in bins of 1/kBinsPerUnit: the
// bins' weights find the bin where the nucleus ends, and only that bin's entries are selected.
constexpr std::size_t kBinnedNucleus = 1024;  // more entries than this are binned
constexpr double kBinsPerUnit = 8;
constexpr std::size_t kMaxBins = 1024;  // the last bin takes every entry beyond
// The second pass keeps probabilities >= kTopPBoundShare * (1 - top_p) / n: the entries below
// hold less than that share of 1 - top_p, so the nucleus is always among those kept, whatever the
// rounding of the first pass's sum (relative 1e-7).
constexpr double kTopPBoundShare = 0.5;

// The result order of the filters: the larger logit first, for equal logits the lower index.
// (A function object, not a function pointer: the sorts inline it.)
struct Better {
  template <class T>
  bool operator()(const SampleEntry<T>& a, const SampleEntry<T>& b) const {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
  }
};
constexpr Better better;

// Arranges e[0, count) so that the nucleus comes first, the smallest prefix in result order whose
// weights sum to at least `target`, and returns its length: a weighted quickselect (expected
// linear time; no sort of the whole row). All of them when they fall short (rounding).
template <class T>
std::size_t nucleus(SampleEntry<T>* e, std::size_t count, WideOf<T> target) {
  using Entry = SampleEntry<T>;
  std::size_t low = 0, high = count;  // e[0, low): in the nucleus; e[high, count): after it
  WideOf<T> above = 0;                // the weight of e[0, low), below target
  while (high - low > kSortedNucleus) {
    // The median of three keys as pivot (keys are distinct: indices differ).
    Entry a = e[low], b = e[low + (high - low) / 2], c = e[high - 1];
    if (better(b, a)) std::swap(a, b);
    if (better(c, b)) std::swap(b, c);
    if (better(b, a)) std::swap(a, b);
    const Entry pivot = b;
    Entry* middle = std::partition(e + low, e + high, [&pivot](const Entry& v) { return better(v, pivot); });
    const auto split = static_cast<std::size_t>(middle - e);
    WideOf<T> part = 0;
    for (std::size_t i = low; i < split; ++i) part += e[i].weight;
    if (above + part >= target && split > low) {
      high = split;  // the nucleus ends among the better ones (there are some: above < target)
      continue;
    }
    // All the better ones are in; the pivot, the best of the rest, follows them.
    above += part;
    low = split;
    std::swap(*std::find_if(e + low, e + high, [&pivot](const Entry& v) { return v.index == pivot.index; }), e[low]);
    above += e[low++].weight;
    if (above >= target) return low;
  }
  std::sort(e + low, e + high, better);
  for (std::size_t i = low; i < high; ++i) {
    above += e[i].weight;
    if (above >= target) return i + 1;
  }
  return high;
}

// The worst entry (in result order) of the nucleus of e[0, count): the smallest set of the best
// entries whose weights sum to at least `target`; none when they all fall short (rounding). Many
// entries are binned by logit first (kBinsPerUnit), and only those of the bin where the nucleus
// ends are selected among (copied to `bin`); few are selected among in place. max: the largest
// value of the entries.
template <class T>
std::optional<SampleEntry<T>> nucleus_end(SampleEntry<T>* e, std::size_t count, WideOf<T> target, ComputeOf<T> max,
                                          double inverse_temperature, SampleScratch<T>& scratch) {
  using Entry = SampleEntry<T>;
  WideOf<T> above = 0;  // the weight of the better bins
  Entry* among = e;
  if (count > kBinnedNucleus && std::isfinite(max)) {  // (rows with +inf: their weights are 1 and 0)
    const auto bin_of = [&](const Entry& v) {
      const double position = static_cast<double>(max - v.value) * inverse_temperature * kBinsPerUnit;
      return static_cast<std::size_t>(std::min(position, static_cast<double>(kMaxBins - 1)));
    };
    std::vector<WideOf<T>>& bins = scratch.bins;
    bins.assign(kMaxBins, 0);
    for (std::size_t i = 0; i < count; ++i) bins[bin_of(e[i])] += e[i].weight;
    std::size_t last = 0;
    while (last < kMaxBins && above + bins[last] < target) above += bins[last++];
    if (last == kMaxBins) return std::nullopt;
    scratch.bin.clear();
    for (std::size_t i = 0; i < count; ++i) {
      if (bin_of(e[i]) == last) scratch.bin.push_back(e[i]);
    }
    among = scratch.bin.data();
    count = scratch.bin.size();
  }
  const std::size_t length = nucleus(among, count, target - above);
  return *std::max_element(among, among + length, better);  // (the last in result order)
}

template <class T>
struct RowSampler {
  using C = ComputeOf<T>;
  using Wide = WideOf<T>;
  static constexpr C kInf = std::numeric_limits<C>::infinity();

  const SamplerKernels<T>& k;
  std::size_t n;
  const T* x;
  const SamplingParams& params;
  std::uint64_t seed, row;
  SampleScratch<T>& scratch;

  // The row's random words for draw `draw` (the chunk, for temperature-only rows).
  PhiloxCounter random_words(std::uint64_t draw) const { return philox4x64_10({draw, row, 0, 0}, {seed, 0}); }

  Temperature temperature() const { return {params.temperature, 1.0 / params.temperature}; }
  // Whether this row runs SIMD kernels: they fold only temperatures in their range.
  bool simd() const {
    const double t = params.temperature;
    return k.simd && t >= kSimdMinTemperature && t <= kSimdMaxTemperature;
  }
  const RowKernels<T>& kernels() const { return simd() ? k.kernels : k.scalar; }
  std::size_t top_k() const {
    const auto top_k = static_cast<std::size_t>(std::max<std::int64_t>(params.top_k, 0));
    return top_k < n ? top_k : 0;  // 0: keep all
  }
  bool filters() const { return top_k() > 0 || params.top_p < 1 || params.min_p > 0; }

  SampleResult run() {
    if (params.temperature < kGreedyTemperature) return greedy();
    return filters() ? filtered() : by_chunks();
  }

  // The first largest logit (vLLM: argmax of the unscaled logits).
  SampleResult greedy() {
    const Normalizer<C> total = k.kernels.reduce(n, x, nullptr, kNoTemperature);
    if (!fast_normalizer(total)) return checked();
    return {first_index_of(total.max), 1.0};
  }
  std::int64_t first_index_of(C value) const {
    std::size_t i = 0;
    while (widen(x[i]) != value) ++i;
    return static_cast<std::int64_t>(i);
  }

  // Temperature only: one read of the row, chunk by chunk. The token so far is a draw from the
  // chunks read; chunk c, holding mass m_c of the m read so far, takes it over with probability
  // m_c / m (then a draw within the chunk picks the token), which leaves every entry drawn with
  // probability weight / total, as from the whole row at once.
  SampleResult by_chunks() {
    const Temperature t = temperature();
    const RowKernels<T>& kernels = this->kernels();
    C max = -kInf;
    Wide total = 0;  // sum of exp((x - max) / t) over the chunks read
    std::int64_t chosen = kSampleEmptyRow;
    for (std::size_t begin = 0, chunk = 0; begin < n; begin += kChunkElements, ++chunk) {
      const std::size_t length = std::min(kChunkElements, n - begin);
      const Normalizer<C> part = kernels.reduce(length, x + begin, nullptr, t);
      if (part.max == -kInf && part.sum == 0) continue;  // only -inf: nothing to draw here
      if (!fast_normalizer(part) || (simd() && !fast_row_max(static_cast<float>(part.max), t))) return checked();
      const Wide part_sum = sum_below_max(part, t);  // relative to part.max
      const C new_max = std::max(max, part.max);
      const Wide part_mass = part_sum * std::exp((static_cast<Wide>(part.max) - new_max) / static_cast<Wide>(t.value));
      total = total * std::exp((static_cast<Wide>(max) - new_max) / static_cast<Wide>(t.value)) + part_mass;
      max = new_max;
      const PhiloxCounter words = random_words(chunk);
      if (static_cast<Wide>(uniform_of(words[0])) * total < part_mass) {
        chosen = static_cast<std::int64_t>(begin) +
                 draw_in_chunk(kernels, length, x + begin, {part.max, part_sum, 0}, t, uniform_of(words[1]));
      }
    }
    if (chosen == kSampleEmptyRow) return {kSampleEmptyRow, std::numeric_limits<double>::quiet_NaN()};
    const Wide weight = std::exp((static_cast<Wide>(widen(x[chosen])) - max) / static_cast<Wide>(t.value));
    return {chosen, static_cast<double>(weight / total)};
  }

  // An entry of a chunk drawn by its weight exp((x - state.max) / t), u uniform in [0, 1): the
  // chunk's probabilities written by the output pass (float32, float64), or computed here.
  std::size_t draw_in_chunk(const RowKernels<T>& kernels, std::size_t length, const T* chunk,
                            const RowState<C>& state, Temperature t, double u) {
    const auto weight_of = [&](std::size_t i) -> Wide {
      if constexpr (std::is_same_v<T, C>) {
        return scratch.chunk[i];
      } else {  // (16-bit probabilities would round the draw's odds)
        return std::exp((static_cast<Wide>(widen(chunk[i])) - state.max) / static_cast<Wide>(t.value));
      }
    };
    if constexpr (std::is_same_v<T, C>) {
      scratch.chunk.resize(length);
      kernels.write_softmax(length, chunk, nullptr, scratch.chunk.data(), shifted_normalizer(state), t);
    }
    Wide sum = 0;
    for (std::size_t i = 0; i < length; ++i) sum += weight_of(i);
    const Wide target = static_cast<Wide>(u) * sum;
    Wide running = 0;
    std::size_t last_positive = 0;
    for (std::size_t i = 0; i < length; ++i) {
      const Wide w = weight_of(i);
      running += w;
      if (w > 0) last_positive = i;
      if (running > target && w > 0) return i;
    }
    return last_positive;  // (the running sum fell short of target by rounding)
  }

  // With filters: the first pass finds the row's maximum and sum (with top_k, softmax_topk's fused
  // pass, also the k-th largest logit); the second collects every entry the filters may keep.
  SampleResult filtered() {
    const Temperature t = temperature();
    const RowKernels<T>& kernels = this->kernels();
    const std::size_t top_k = this->top_k();
    Normalizer<C> total;
    C floor = -kInf;  // entries below it are never kept
    if (top_k > 0) {
      if (scratch.selector_k != top_k) {
        scratch.selector.emplace(top_k);
        scratch.selector_k = top_k;
      }
      TopkSelector<C>& selector = *scratch.selector;
      selector.clear();
      total = reduce_topk(kernels.softmax_topk, n, x, 0, t, selector);
      if (!fast_normalizer(total)) return checked();
      floor = selector.finish(n, x, true)[top_k - 1].value;  // the k-th largest logit
    } else {
      total = kernels.reduce(n, x, nullptr, t);
      if (!fast_normalizer(total)) return checked();
    }
    const C max = total.max;
    if (simd() && !fast_row_max(static_cast<float>(max), t)) return checked();
    const Wide sum = sum_below_max(total, t);
    // Without top_k the nucleus holds probabilities >= (1 - top_p) / 2n (see kTopPBoundShare);
    // with it, the top-p mass is that of the top-k entries, which must all be collected.
    const auto at_probability = [&](double p) {  // the logit of probability p, a little below
      const double logit = static_cast<double>(max) + t.value * std::log(p);
      return static_cast<C>(logit - (std::fabs(logit) * 0x1p-20 + t.value * 0x1p-10));
    };
    if (top_k == 0 && params.top_p < 1) {
      floor = std::max(floor, at_probability(kTopPBoundShare * (1 - params.top_p) * static_cast<double>(sum) /
                                             static_cast<double>(n)));
    }
    if (params.min_p > 0 && (top_k == 0 || params.top_p == 1)) floor = std::max(floor, at_probability(params.min_p));
    collect(floor, max, t);
    return filter_and_draw(top_k > 0 ? Wide{-1} : sum);
  }

  // The second pass: every entry >= floor, in index order, with its weight relative to max.
  void collect(C floor, C max, Temperature t) {
    SampleEntry<T>* e = scratch.entries.room(n);
    std::size_t count = 0;
    for (std::size_t begin = 0; begin < n; begin += kCollectBlock) {
      const std::size_t end = std::min(n, begin + kCollectBlock);
      int hits = 0;
      for (std::size_t i = begin; i < end; ++i) hits += widen(x[i]) >= floor;
      if (hits == 0) continue;
      for (std::size_t i = begin; i < end; ++i) {  // (without branches: the tests are unpredictable)
        const C v = widen(x[i]);
        e[count].value = v;  // (the weight follows, for those kept)
        e[count].index = static_cast<std::int64_t>(i);
        count += v >= floor && v > -kInf;
      }
    }
    scratch.entries.size = count;
    // The weights: for float32 and float64 rows by the output pass over the collected values (the
    // softmax of a row whose sum is 1 and maximum `max`), else one by one.
    if constexpr (std::is_same_v<T, C>) {
      std::vector<T>& values = scratch.chunk;
      values.resize(count);
      for (std::size_t i = 0; i < count; ++i) values[i] = e[i].value;
      kernels().write_softmax(count, values.data(), nullptr, values.data(), {1, 0.0, max, max}, t);
      for (std::size_t i = 0; i < count; ++i) e[i].weight = values[i];
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        e[i].weight = std::exp((static_cast<Wide>(e[i].value) - max) / static_cast<Wide>(t.value));
      }
    }
  }

  // The filters on the collected entries, then the draw. row_sum: the weight of the whole row
  // when only part of it was collected (no top_k), else negative (the entries hold all the mass
  // that top_p is relative to). Each filter keeps a prefix in result order: top_k the entries >=
  // the k-th largest value, top_p those at least as good as the nucleus's worst, min_p the
  // weights >= min_p * the largest; the draw walks the entries all three keep.
  SampleResult filter_and_draw(Wide row_sum) {
    SampleEntry<T>* e = scratch.entries.room(0);
    std::size_t count = scratch.entries.size;
    if (count == 0) return {kSampleEmptyRow, std::numeric_limits<double>::quiet_NaN()};
    const std::size_t top_k = this->top_k();
    if (top_k > 0 && count > top_k) {  // every entry >= the k-th largest (ties kept, as vLLM)
      std::nth_element(e, e + (top_k - 1), e + count, better);
      const C kth = e[top_k - 1].value;
      count = static_cast<std::size_t>(
          std::partition(e, e + count, [kth](const SampleEntry<T>& v) { return v.value >= kth; }) - e);
    }
    C largest = -kInf;
    Wide mass = 0, heaviest = 0;
    for (std::size_t i = 0; i < count; ++i) {
      largest = std::max(largest, e[i].value);
      heaviest = std::max(heaviest, e[i].weight);
      mass += e[i].weight;
    }
    std::optional<SampleEntry<T>> end;  // the nucleus's worst entry; none: no cut
    if (params.top_p < 1) {
      end = nucleus_end(e, count, static_cast<Wide>(params.top_p) * (row_sum < 0 ? mass : row_sum), largest,
                        1.0 / params.temperature, scratch);
    }
    const Wide least = static_cast<Wide>(params.min_p) * heaviest;
    const auto kept = [&](const SampleEntry<T>& v) {
      return v.weight >= least && v.weight > 0 && (!end || !better(*end, v));
    };
    return draw(e, count, kept, uniform_of(random_words(0)[0]));
  }

  // An entry of e[0, count) that `kept` keeps, drawn by weight, u uniform in [0, 1).
  template <class Kept>
  static SampleResult draw(const SampleEntry<T>* e, std::size_t count, const Kept& kept, double u) {
    Wide mass = 0;
    for (std::size_t i = 0; i < count; ++i) mass += kept(e[i]) ? e[i].weight : 0;
    const Wide target = static_cast<Wide>(u) * mass;
    Wide running = 0;
    std::size_t chosen = count;
    for (std::size_t i = 0; i < count; ++i) {
      if (!kept(e[i])) continue;
      chosen = i;
      running += e[i].weight;
      if (running > target) break;
    }
    if (chosen == count) return {kSampleEmptyRow, std::numeric_limits<double>::quiet_NaN()};
    return {e[chosen].index, static_cast<double>(e[chosen].weight / mass)};
  }

  // Rows the kernels decline (NaN, +inf, only -inf, values beyond the fast range), plainly: the
  // special-value rules, then every entry above -inf collected with its weight (+inf entries
  // share the mass: weight 1 each, 0 for the rest).
  SampleResult checked() {
    C max = -kInf;
    for (std::size_t i = 0; i < n; ++i) {
      const C v = widen(x[i]);
      if (std::isnan(v)) return {kSampleNanRow, std::numeric_limits<double>::quiet_NaN()};
      max = std::max(max, v);
    }
    if (max == -kInf) return {kSampleEmptyRow, std::numeric_limits<double>::quiet_NaN()};
    if (params.temperature < kGreedyTemperature) return {first_index_of(max), 1.0};
    SampleEntry<T>* e = scratch.entries.room(n);
    std::size_t count = 0;
    const Wide t = params.temperature;
    for (std::size_t i = 0; i < n; ++i) {
      const C v = widen(x[i]);
      if (v == -kInf) continue;
      const Wide weight = max == kInf ? static_cast<Wide>(v == kInf) : std::exp((static_cast<Wide>(v) - max) / t);
      e[count++] = {v, static_cast<std::int64_t>(i), weight};
    }
    scratch.entries.size = count;
    return filter_and_draw(Wide{-1});
  }
};

}  // namespace

template <class T>
SampleResult sample_row(const SamplerKernels<T>& kernels, std::size_t n, const T* x, const SamplingParams& params,
                        std::uint64_t seed, std::uint64_t row, SampleScratch<T>& scratch) {
  RowSampler<T> sampler{kernels, n, x, params, seed, row, scratch};
  return sampler.run();
}

template SampleResult sample_row(const SamplerKernels<float>&, std::size_t, const float*, const SamplingParams&,
                                 std::uint64_t, std::uint64_t, SampleScratch<float>&);
template SampleResult sample_row(const SamplerKernels<double>&, std::size_t, const double*, const SamplingParams&,
                                 std::uint64_t, std::uint64_t, SampleScratch<double>&);
template SampleResult sample_row(const SamplerKernels<Float16>&, std::size_t, const Float16*, const SamplingParams&,
                                 std::uint64_t, std::uint64_t, SampleScratch<Float16>&);
template SampleResult sample_row(const SamplerKernels<BFloat16>&, std::size_t, const BFloat16*,
                                 const SamplingParams&, std::uint64_t, std::uint64_t, SampleScratch<BFloat16>&);

}  // namespace fastsoftmax
