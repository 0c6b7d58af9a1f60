// Fused softmax + top-k: the running top-k every ISA's pass feeds, the checked path for rows the
// passes decline, and the loop over a call's rows. Compiled for the baseline target.
#include "topk.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "half.h"
#include "parallel.h"
#include "thread_pool.h"

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
void TopkSelector<T>::merge(const TopkSelector& other, std::size_t index_offset) {
  for (const Candidate& c : other.buffer_) append(c.value, static_cast<std::size_t>(c.index) + index_offset);
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

// The results of a row whose every input above -inf has been offered to the selector, and whose
// normalizer is `total`.
template <class T>
void write_topk(const TopkJob<T>& job, std::size_t n, const T* x, TopkSelector<ComputeOf<T>>& selector,
                const TopkTotal<ComputeOf<T>>& total, const TopkOut<T>& out) {
  using Wide = WideOf<T>;
  const auto* best = selector.finish(n, x, job.sorted);
  for (std::size_t j = 0; j < job.k; ++j) {
    const Wide scaled = (static_cast<Wide>(best[j].value) - total.shift) / static_cast<Wide>(job.temperature.value);
    out.set(j, std::exp(scaled - total.log_scale) / total.sum, best[j].index);
  }
}

template <class T>
void topk_row(const TopkJob<T>& job, std::size_t n, const T* x, TopkSelector<ComputeOf<T>>& selector,
              const TopkOut<T>& out) {
  const Temperature t = job.temperature;
  selector.clear();
  TopkTotal<ComputeOf<T>> total;
  // One-element rows go to the checked path, which gives exactly 1 (as softmax does).
  if (n == 1 || !job.pass(n, x, t, selector, &total)) return checked_topk(n, x, job.k, job.sorted, t, selector, out);
  write_topk(job, n, x, selector, total, out);
}

// Where row r of the job starts, and where its results go.
template <class T>
const T* row_of(const TopkJob<T>& job, std::size_t r) {
  return job.x + static_cast<std::ptrdiff_t>(r) * job.layout.x_row_stride;
}
template <class T>
TopkOut<T> out_of(const TopkJob<T>& job, std::size_t r) {
  const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(r) * job.layout.y_row_stride;
  return {job.values + offset, job.indices + offset, job.layout.y_stride};
}

// One slice's pass over a row split across threads.
template <class T>
struct SliceTopk {
  TopkSelector<ComputeOf<T>> selector;
  TopkTotal<ComputeOf<T>> total;
  bool fast;
};

// The row's normalizer from its slices': sum_s * exp(log_scale_s + (shift_s - shift) / t) over
// the largest shift and log-scale, so no term overflows.
template <class T>
TopkTotal<ComputeOf<T>> merged_total(const std::vector<SliceTopk<T>>& slices, int count, Temperature t) {
  using Wide = WideOf<T>;
  const auto scale_of = [&](const TopkTotal<ComputeOf<T>>& s, ComputeOf<T> shift) {
    return s.log_scale + (static_cast<Wide>(s.shift) - shift) / static_cast<Wide>(t.value);
  };
  ComputeOf<T> shift = slices[0].total.shift;
  for (int s = 1; s < count; ++s) shift = std::max(shift, slices[s].total.shift);
  Wide log_scale = scale_of(slices[0].total, shift);
  for (int s = 1; s < count; ++s) log_scale = std::max(log_scale, scale_of(slices[s].total, shift));
  Wide sum = 0;
  for (int s = 0; s < count; ++s) sum += slices[s].total.sum * std::exp(scale_of(slices[s].total, shift) - log_scale);
  return {sum, log_scale, shift};
}

// Few long rows: each is split across the team. Every thread passes over its slice with its own
// selector; thread 0 merges the normalizers and the candidates and writes the row. A row one of
// whose slices the pass declines (NaN, +inf, huge values, or a slice of nothing but -inf) is
// done by thread 0 alone, as an unsplit row.
template <class T>
void run_split_topk_rows(const TopkJob<T>& job, std::size_t threads) {
  std::vector<SliceTopk<T>> slices;
  for (std::size_t s = 0; s < threads; ++s) slices.push_back({TopkSelector<ComputeOf<T>>(job.k), {}, false});
  run_team_of(threads, [&](int thread, int count) {
    const std::size_t n = job.layout.n;
    for (std::size_t r = 0; r < job.layout.rows; ++r) {
      const T* x = row_of(job, r);
      const Slice slice = slice_of(n, thread, count);
      SliceTopk<T>& mine = slices[static_cast<std::size_t>(thread)];
      mine.selector.clear();
      mine.fast = job.pass(slice.length, x + slice.begin, job.temperature, mine.selector, &mine.total);
      threads_barrier(count);
      if (thread == 0) {
        TopkSelector<ComputeOf<T>>& merged = slices[0].selector;
        const bool fast = std::all_of(slices.begin(), slices.begin() + count, [](const auto& s) { return s.fast; });
        if (!fast) {
          topk_row(job, n, x, merged, out_of(job, r));
        } else {
          for (int s = 1; s < count; ++s) merged.merge(slices[static_cast<std::size_t>(s)].selector, slice_of(n, s, count).begin);
          write_topk(job, n, x, merged, merged_total(slices, count, job.temperature), out_of(job, r));
        }
      }
      threads_barrier(count);  // the slices' selectors are reused by the next row
    }
  });
}

}  // namespace

template <class T>
void run_topk_rows(const TopkJob<T>& job, int requested_threads) {
  const RowLayout& layout = job.layout;
  const std::size_t threads = useful_threads(layout.rows * layout.n * sizeof(T), requested_threads);
  if (layout.x_stride == 1 && split_pays(layout.rows, layout.n, threads)) return run_split_topk_rows(job, threads);
  run_row_runs(layout.rows, layout.n * sizeof(T), requested_threads, [&job](std::size_t begin, std::size_t end) {
    const RowLayout& l = job.layout;
    TopkSelector<ComputeOf<T>> selector(job.k);
    std::vector<T> gathered;  // a strided row, copied contiguous
    for (std::size_t r = begin; r < end; ++r) {
      const T* x = row_of(job, r);
      if (l.x_stride != 1) {
        gathered.resize(l.n);
        for (std::size_t i = 0; i < l.n; ++i) gathered[i] = x[static_cast<std::ptrdiff_t>(i) * l.x_stride];
        x = gathered.data();
      }
      topk_row(job, l.n, x, selector, out_of(job, r));
    }
  });
}

template void run_topk_rows<float>(const TopkJob<float>&, int);
template void run_topk_rows<double>(const TopkJob<double>&, int);
template void run_topk_rows<Float16>(const TopkJob<Float16>&, int);
template void run_topk_rows<BFloat16>(const TopkJob<BFloat16>&, int);

}  // namespace fastsoftmax
