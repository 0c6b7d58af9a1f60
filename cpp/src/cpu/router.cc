// The top-k gate of a mixture of experts, as vLLM's topk_softmax and DeepSeek-V3's grouped top-k
// compute it, in the wide type (double; long double for float64 rows).
#include "cpu/router.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/half.h"

namespace fastsoftmax {
namespace {

template <class Wide>
Wide sigmoid(Wide x) {
  return 1 / (1 + std::exp(-x));
}

// Each row's scores: softmax (the library's special-value rules: +inf entries share the mass)
// or sigmoid. False for a row without a distribution (a NaN; only -inf under softmax).
template <class T>
bool score_row(Scoring scoring, std::size_t n, const T* x, WriteKernel<float> exp_pass, RouterScratch<T>& scratch) {
  std::vector<WideOf<T>>& scores = scratch.scores;
  using Wide = WideOf<T>;
  constexpr Wide kInf = std::numeric_limits<Wide>::infinity();
  scores.resize(n);
  Wide max = -kInf;
  std::size_t at_inf = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Wide v = widen(x[i]);
    if (std::isnan(v)) return false;
    max = std::max(max, v);
    at_inf += v == kInf;
  }
  if (scoring == Scoring::kSigmoid) {
    if constexpr (std::is_same_v<T, float>) {
      if (exp_pass != nullptr) {  // e = exp(-|x|) by the kernel; sigmoid = 1 / (1 + e), below 0 e / (1 + e)
        std::vector<float>& e = scratch.exponentials;
        e.resize(n);
        for (std::size_t i = 0; i < n; ++i) e[i] = -std::fabs(x[i]);
        exp_pass(n, e.data(), nullptr, e.data(), Normalizer<float>{1, 0.0, 0.0f, 0.0f}, kNoTemperature);
        // (In float, over plain pointers: a loop the compiler vectorizes.)
        float* const exponential = e.data();
        for (std::size_t i = 0; i < n; ++i) {
          exponential[i] = (x[i] >= 0 ? 1.0f : exponential[i]) / (1.0f + exponential[i]);
        }
        Wide* const score = scores.data();
        for (std::size_t i = 0; i < n; ++i) {
          // (Below float's normal range the scores of logits below about -87 would tie, or lose
          // their order: those come from the C library.)
          score[i] = exponential[i] >= std::numeric_limits<float>::min() ? Wide{exponential[i]}
                                                                         : sigmoid(static_cast<Wide>(x[i]));
        }
        return true;
      }
    }
    for (std::size_t i = 0; i < n; ++i) scores[i] = sigmoid(static_cast<Wide>(widen(x[i])));
    return true;
  }
  if (max == -kInf) return false;
  if (at_inf > 0) {
    for (std::size_t i = 0; i < n; ++i) scores[i] = widen(x[i]) == kInf ? 1 / static_cast<Wide>(at_inf) : 0;
    return true;
  }
  Wide sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += scores[i] = std::exp(static_cast<Wide>(widen(x[i])) - max);
  for (std::size_t i = 0; i < n; ++i) scores[i] /= sum;
  return true;
}

// Adds the i in [begin, end) to best, the `count` largest of value(i) so far, larger first, ties
// to the lower i (ranges come in increasing order): an insertion into a list kept sorted, each i
// first tested against the list's last (most are below it, after the first few).
template <class Value>
void select_largest(std::size_t begin, std::size_t end, std::size_t count, Value&& value,
                    std::vector<std::size_t>& best) {
  if (count == 0) return;
  best.reserve(count);
  for (std::size_t i = begin; i < end; ++i) {
    const auto v = value(i);
    std::size_t place = best.size();
    if (place == count) {
      if (!(v > value(best[place - 1]))) continue;
      --place;  // the last one leaves: its place is free
    } else {
      best.push_back(i);
    }
    // After every entry at least as large: equal values keep index order.
    while (place > 0 && value(best[place - 1]) < v) {
      best[place] = best[place - 1];
      --place;
    }
    best[place] = i;
  }
}

}  // namespace

template <class T>
void route_row(const Call& call, const T* x, const float* bias, std::ptrdiff_t bias_stride, WriteKernel<float> exp_pass,
               RouterScratch<T>& scratch, const RouterOut& out) {
  using Wide = WideOf<T>;
  const RouterOptions& router = call.router;
  const std::size_t n = call.n;
  const auto k = static_cast<std::size_t>(call.k);
  const auto set = [&out](std::size_t j, double weight, std::size_t id) {
    out.weights[static_cast<std::ptrdiff_t>(j) * out.weights_stride] = static_cast<float>(weight);
    out.ids[static_cast<std::ptrdiff_t>(j) * out.ids_stride] = static_cast<std::int32_t>(id);
  };
  std::vector<Wide>& scores = scratch.scores;
  std::vector<Wide>& choice = scratch.choice;
  bool ok = score_row(router.scoring, n, x, exp_pass, scratch);
  choice.resize(n);
  for (std::size_t i = 0; ok && i < n; ++i) {
    choice[i] = scores[i] + (bias == nullptr ? 0 : bias[static_cast<std::ptrdiff_t>(i) * bias_stride]);
    ok = !std::isnan(choice[i]);
  }
  if (!ok) {
    for (std::size_t j = 0; j < k; ++j) set(j, std::numeric_limits<double>::quiet_NaN(), j);
    return;
  }
  // Groups: each scored by its largest choice (with a bias: its two largest summed); only the
  // experts of the topk_group best groups can be chosen, in group order.
  std::vector<std::size_t>& best = scratch.best;
  const auto choice_of = [&choice](std::size_t i) { return choice[i]; };
  if (router.groups == 0) {
    best.clear();
    select_largest(0, n, k, choice_of, best);
  } else {
    const auto groups = static_cast<std::size_t>(router.groups);
    const std::size_t group_size = n / groups;
    const std::size_t summed = bias == nullptr ? 1 : std::min<std::size_t>(2, group_size);
    std::vector<Wide>& group_score = scratch.group_score;
    group_score.resize(groups);
    for (std::size_t g = 0; g < groups; ++g) {  // the group's two largest, without branches
      Wide first = -std::numeric_limits<Wide>::infinity(), second = first;
      for (std::size_t i = g * group_size; i < (g + 1) * group_size; ++i) {
        second = std::max(second, std::min(first, choice[i]));
        first = std::max(first, choice[i]);
      }
      group_score[g] = summed == 1 ? first : first + second;
    }
    best.clear();
    select_largest(0, groups, static_cast<std::size_t>(router.topk_group),
                   [&group_score](std::size_t g) { return group_score[g]; }, best);
    std::vector<char>& kept = scratch.kept_group;
    kept.assign(groups, 0);
    for (std::size_t g : best) kept[g] = 1;
    best.clear();
    for (std::size_t g = 0; g < groups; ++g) {
      if (kept[g] != 0) select_largest(g * group_size, (g + 1) * group_size, k, choice_of, best);
    }
  }
  // The chosen sigmoid scores again, exactly (the kernel's exponentials only ranked them).
  if (router.scoring == Scoring::kSigmoid) {
    for (std::size_t i : best) scores[i] = sigmoid(static_cast<Wide>(widen(x[i])));
  }
  Wide total = 0;
  for (std::size_t i : best) total += scores[i];
  const Wide divisor = router.renormalize ? total : 1;
  for (std::size_t j = 0; j < k; ++j) {
    set(j, static_cast<double>(scores[best[j]] / divisor * static_cast<Wide>(router.scaling)), best[j]);
  }
}

template void route_row<float>(const Call&, const float*, const float*, std::ptrdiff_t, WriteKernel<float>, RouterScratch<float>&,
                               const RouterOut&);
template void route_row<double>(const Call&, const double*, const float*, std::ptrdiff_t, WriteKernel<float>, RouterScratch<double>&,
                                const RouterOut&);
template void route_row<Float16>(const Call&, const Float16*, const float*, std::ptrdiff_t, WriteKernel<float>, RouterScratch<Float16>&,
                                 const RouterOut&);
template void route_row<BFloat16>(const Call&, const BFloat16*, const float*, std::ptrdiff_t, WriteKernel<float>,
                                  RouterScratch<BFloat16>&, const RouterOut&);

}  // namespace fastsoftmax
