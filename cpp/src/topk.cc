// Fused softmax + top-k: the running top-k every ISA's pass feeds, the checked path for rows the
// passes decline, and the loop over a call's rows. Compiled for the baseline target.
#include "topk.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "half.h"
#include "parallel.h"

namespace fastsoftmax {
namespace {

// Room for this many offers beyond k before the buffer is cut back to the best k: small k keep
// a buffer of a few cache lines, large k one of 2k.
constexpr std::size_t kMinSpareOffers = 64;

template <class T>
bool better(const typename TopkSelector<T>::Candidate& a, const typename TopkSelector<T>::Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

}  // namespace

template <class T>
TopkSelector<T>::TopkSelector(std::size_t k) : k_(k), capacity_(k + std::max(k, kMinSpareOffers)) {
  buffer_.reserve(capacity_);
  clear();
}

template <class T>
void TopkSelector<T>::clear() {
  buffer_.clear();
  threshold_ = -std::numeric_limits<T>::infinity();
}

template <class T>
T TopkSelector<T>::threshold() const {
  return threshold_;
}

template <class T>
void TopkSelector<T>::append(T value, std::size_t index) {
  buffer_.push_back({value, static_cast<std::int64_t>(index)});
  if (buffer_.size() == capacity_) keep_best();
}

template <class T>
T TopkSelector<T>::offer(T value, std::size_t index) {
  append(value, index);
  return threshold_;
}

template <class T>
T TopkSelector<T>::offer_lanes(const T* lanes, unsigned mask, std::size_t first_index) {
  for (std::size_t lane = 0; mask != 0; ++lane, mask >>= 1) {
    if ((mask & 1u) != 0 && lanes[lane] > threshold_) append(lanes[lane], first_index + lane);
  }
  return threshold_;
}

template <class T>
void TopkSelector<T>::keep_best() {
  std::nth_element(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(k_ - 1), buffer_.end(), better<T>);
  buffer_.resize(k_);
  threshold_ = buffer_[k_ - 1].value;
}

template <class T>
template <class In>
const typename TopkSelector<T>::Candidate* TopkSelector<T>::finish(std::size_t n, const In* x, bool sorted) {
  if (buffer_.size() > k_) keep_best();
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; buffer_.size() < k_ && i < n; ++i) {
    if (widen(x[i]) == kNegInf) buffer_.push_back({kNegInf, static_cast<std::int64_t>(i)});
  }
  if (sorted) std::sort(buffer_.begin(), buffer_.end(), better<T>);
  return buffer_.data();
}

template class TopkSelector<float>;
template class TopkSelector<double>;
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const float*, bool);
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const Float16*, bool);
template const TopkSelector<float>::Candidate* TopkSelector<float>::finish(std::size_t, const BFloat16*, bool);
template const TopkSelector<double>::Candidate* TopkSelector<double>::finish(std::size_t, const double*, bool);

namespace {

// Where one row's results go: k entries `stride` apart.
template <class T>
struct TopkOut {
  T* values;
  std::int64_t* indices;
  std::ptrdiff_t stride;

  void set(std::size_t j, WideOf<T> value, std::int64_t index) const {
    values[static_cast<std::ptrdiff_t>(j) * stride] = narrow<T>(value);
    indices[static_cast<std::ptrdiff_t>(j) * stride] = index;
  }
};

// Rows the passes decline, with the special-value rules of softmax: a NaN anywhere gives NaN
// probabilities (indices 0..k-1: equal values, lower index first); k entries equal to +inf share
// the mass; only -inf gives NaN; huge finite values are computed relative to the row maximum.
template <class T>
void checked_topk(std::size_t n, const T* x, std::size_t k, bool sorted, Temperature t,
                  TopkSelector<ComputeOf<T>>& selector, const TopkOut<T>& out) {
  using C = ComputeOf<T>;
  using Wide = WideOf<T>;
  constexpr Wide kNan = std::numeric_limits<Wide>::quiet_NaN();
  constexpr C kInf = std::numeric_limits<C>::infinity();
  if (std::any_of(x, x + n, [](T v) { return std::isnan(widen(v)); })) {
    for (std::size_t j = 0; j < k; ++j) out.set(j, kNan, static_cast<std::int64_t>(j));
    return;
  }
  selector.clear();
  C threshold = selector.threshold();
  C max = -kInf;
  std::size_t num_pos_inf = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const C v = widen(x[i]);
    max = std::max(max, v);
    num_pos_inf += v == kInf;
    if (v > threshold) threshold = selector.offer(v, i);
  }
  const auto* best = selector.finish(n, x, sorted);
  const auto shifted_of = [&](C v) { return (static_cast<Wide>(v) - max) / static_cast<Wide>(t.value); };
  Wide sum = 0;
  if (num_pos_inf == 0 && max != -kInf) {
    for (std::size_t i = 0; i < n; ++i) sum += std::exp(shifted_of(widen(x[i])));
  }
  for (std::size_t j = 0; j < k; ++j) {
    const C v = best[j].value;
    Wide p;
    if (num_pos_inf > 0) {
      p = v == kInf ? Wide{1} / static_cast<Wide>(num_pos_inf) : Wide{0};
    } else if (max == -kInf) {
      p = kNan;
    } else {
      p = std::exp(shifted_of(v)) / sum;
    }
    out.set(j, p, best[j].index);
  }
}

template <class T>
void topk_row(const TopkJob<T>& job, std::size_t n, const T* x, TopkSelector<ComputeOf<T>>& selector,
              const TopkOut<T>& out) {
  using Wide = WideOf<T>;
  const Temperature t = job.temperature;
  selector.clear();
  TopkTotal<ComputeOf<T>> total;
  // One-element rows go to the checked path, which gives exactly 1 (as softmax does).
  if (n == 1 || !job.pass(n, x, t, selector, &total)) return checked_topk(n, x, job.k, job.sorted, t, selector, out);
  const auto* best = selector.finish(n, x, job.sorted);
  for (std::size_t j = 0; j < job.k; ++j) {
    const Wide scaled = (static_cast<Wide>(best[j].value) - total.shift) / static_cast<Wide>(t.value);
    out.set(j, std::exp(scaled - total.log_scale) / total.sum, best[j].index);
  }
}

}  // namespace

template <class T>
void run_topk_rows(const TopkJob<T>& job, int requested_threads) {
  const RowLayout& layout = job.layout;
  run_row_runs(layout.rows, layout.n * sizeof(T), requested_threads, [&job](std::size_t begin, std::size_t end) {
    const RowLayout& l = job.layout;
    TopkSelector<ComputeOf<T>> selector(job.k);
    std::vector<T> gathered;  // a strided row, copied contiguous
    for (std::size_t r = begin; r < end; ++r) {
      const T* x = job.x + static_cast<std::ptrdiff_t>(r) * l.x_row_stride;
      if (l.x_stride != 1) {
        gathered.resize(l.n);
        for (std::size_t i = 0; i < l.n; ++i) gathered[i] = x[static_cast<std::ptrdiff_t>(i) * l.x_stride];
        x = gathered.data();
      }
      const std::ptrdiff_t out_offset = static_cast<std::ptrdiff_t>(r) * l.y_row_stride;
      const TopkOut<T> out{job.values + out_offset, job.indices + out_offset, l.y_stride};
      topk_row(job, l.n, x, selector, out);
    }
  });
}

template void run_topk_rows<float>(const TopkJob<float>&, int);
template void run_topk_rows<double>(const TopkJob<double>&, int);
template void run_topk_rows<Float16>(const TopkJob<Float16>&, int);
template void run_topk_rows<BFloat16>(const TopkJob<BFloat16>&, int);

}  // namespace fastsoftmax
