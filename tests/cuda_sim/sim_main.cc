// Runs the CUDA backend's real executor and kernels (cpp/src/cuda/execute.cu, kernels.cuh) on the
// host through the simulator of include/cuda_runtime_api.h, for every family, algorithm, dtype and
// operation, on aligned, misaligned, strided and in-place rows with special values, and checks
// each result against a long double reference. Prints one line per failure and a summary; exit
// status 0 when every case passed. Built and run by tests/test_cuda_sim.py.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/device_math.h"
#include "cuda/execute.h"
#include "cuda/launch_plan.h"
#include "validate.h"

namespace fs = fastsoftmax;
namespace fc = fastsoftmax::cuda;

namespace {

int failures = 0;
int cases = 0;
// --quick: every family, algorithm, dtype and operation, on fewer shapes (the simulator runs a
// thread per CUDA thread: about a minute on 2 cores instead of seven).
bool quick = false;

// A small device: grids of a few blocks, so that every family's loops over rows and chunks run.
fc::DeviceLimits small_device() {
  fc::DeviceLimits d;
  d.name = "simulated";
  d.sm_count = 2;
  d.max_threads_per_sm = 512;
  d.max_shared_per_block = 24 * 1024;
  d.shared_per_sm = 48 * 1024;
  return d;
}

template <class T>
fs::DataType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return fs::DataType::kFloat32;
  if constexpr (std::is_same_v<T, fc::Half>) return fs::DataType::kFloat16;
  return fs::DataType::kBFloat16;
}
template <class T>
const char* name_of() {
  if constexpr (std::is_same_v<T, float>) return "f32";
  if constexpr (std::is_same_v<T, fc::Half>) return "f16";
  return "bf16";
}
// The spacing of T at v: the unit of the checks (a few of them for float32, whose outputs the
// emulation tests hold to 2 ULP; here the point is the control flow, not the last bit).
template <class T>
double tolerance(double v) {
  const double magnitude = std::max(std::fabs(v), 1e-30);
  if constexpr (std::is_same_v<T, float>) return 4 * std::ldexp(1.0, std::ilogb(magnitude) - 23) + 1e-44;
  if constexpr (std::is_same_v<T, fc::Half>) return std::ldexp(1.0, std::max(std::ilogb(magnitude), -14) - 10) * 1.01;
  return std::ldexp(1.0, std::ilogb(magnitude) - 7) * 1.01;
}

// softmax / log_softmax of a row in long double, with the special-value rules.
std::vector<long double> reference_row(const std::vector<float>& x, bool log, double t) {
  const std::size_t n = x.size();
  std::vector<long double> y(n);
  bool nan = false;
  std::size_t infs = 0;
  long double m = -INFINITY;
  for (float v : x) {
    nan |= std::isnan(v);
    infs += v == INFINITY;
    if (!std::isnan(v)) m = std::max<long double>(m, v);
  }
  if (nan || m == -INFINITY) return std::vector<long double>(n, NAN);
  if (infs > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      y[i] = x[i] == INFINITY ? (log ? -std::log((long double)infs) : 1.0L / infs) : (log ? -INFINITY : 0.0L);
    }
    return y;
  }
  long double sum = 0;
  for (float v : x) sum += std::exp((v - m) / t);
  for (std::size_t i = 0; i < n; ++i) y[i] = log ? (x[i] - m) / t - std::log(sum) : std::exp((x[i] - m) / t) / sum;
  return y;
}

void fail(const std::string& what) {
  ++failures;
  if (failures <= 40) std::printf("FAIL %s\n", what.c_str());
}

struct Layout {
  std::size_t rows, n;
  std::ptrdiff_t x_offset = 0, y_offset = 0;  // elements past a 16-byte boundary
  std::ptrdiff_t x_stride = 0, y_stride = 0;  // 0: n
  bool in_place = false;
};

template <class T>
void check_rowwise(fs::Operation op, fs::Algorithm algorithm, const Layout& l, const std::vector<float>& values,
                   double t, const char* label) {
  ++cases;
  const std::ptrdiff_t xs = l.x_stride ? l.x_stride : l.n, ys = l.y_stride ? l.y_stride : l.n;
  std::vector<T> xbuf(l.rows * xs + 64), ybuf(l.rows * ys + 64);
  const T sentinel = fc::from_float<T>(-12345.0f);
  std::fill(xbuf.begin(), xbuf.end(), sentinel);
  std::fill(ybuf.begin(), ybuf.end(), sentinel);
  auto aligned = [](std::vector<T>& b, std::ptrdiff_t offset) {
    T* p = b.data();
    while (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) ++p;
    return p + offset;
  };
  T* x = aligned(xbuf, l.x_offset);
  T* y = l.in_place ? x : aligned(ybuf, l.y_offset);
  std::vector<std::vector<float>> rows(l.rows);
  for (std::size_t r = 0; r < l.rows; ++r) {
    for (std::size_t i = 0; i < l.n; ++i) {
      const float v = fc::to_float(fc::from_float<T>(values[(r * l.n + i) % values.size()]));
      x[r * xs + i] = fc::from_float<T>(v);
      rows[r].push_back(v);
    }
  }
  fs::Call call;
  call.operation = op;
  call.dtype = dtype_of<T>();
  call.rows = l.rows;
  call.n = l.n;
  call.inputs[0] = {x, xs, 1};
  call.outputs[0] = {y, l.in_place ? xs : ys, 1};
  call.options.algorithm = algorithm;
  call.options.temperature = t;
  if (fs::validate_device(call) != fs::Status::kOk) return fail(std::string(label) + ": refused");
  const fc::LaunchPlan plan = fc::plan_launch(call, small_device());
  const std::string error = fc::execute_on_device(call, plan, nullptr);
  const std::string context = std::string(label) + " " + name_of<T>() + " " + fs::operation_name(op) + " " +
                              plan.kernel + " " + std::to_string(l.rows) + "x" + std::to_string(l.n);
  if (!error.empty()) return fail(context + ": " + error);
  const bool log = op == fs::Operation::kLogSoftmax;
  const std::ptrdiff_t out_stride = l.in_place ? xs : ys;
  for (std::size_t r = 0; r < l.rows; ++r) {
    const std::vector<long double> ref = reference_row(rows[r], log, t);
    for (std::size_t i = 0; i < l.n; ++i) {
      const double got = fc::to_float(y[r * out_stride + i]);
      const long double want = ref[i];
      bool ok;
      if (std::isnan((double)want)) {
        ok = std::isnan(got);
      } else if (std::isinf((double)want)) {
        ok = got == (double)want;
      } else {
        // three_pass_reload stores its terms in 16-bit outputs and rounds them again (1.5 ULP,
        // as on the CPU); every other 16-bit result rounds once.
        const double slack = !std::is_same_v<T, float> && plan.algorithm == fs::Algorithm::kThreePassReload ? 1.5 : 1.0;
        ok = std::fabs(got - (double)want) <= (log ? tolerance<T>(std::max(std::fabs((double)want), 1.0)) * 2
                                                   : tolerance<T>((double)want) * slack);
      }
      if (!ok) {
        return fail(context + " row " + std::to_string(r) + " [" + std::to_string(i) + "]: got " +
                    std::to_string(got) + ", want " + std::to_string((double)want));
      }
    }
    // Nothing written between rows.
    if (!l.in_place) {
      for (std::ptrdiff_t i = l.n; i < out_stride && r + 1 < l.rows; ++i) {
        if (std::memcmp(&y[r * out_stride + i], &sentinel, sizeof(T)) != 0) return fail(context + ": wrote between rows");
      }
    }
  }
}

// More SMs than rows: softmax_topk of long rows splits them (split top-k rows).
fc::DeviceLimits wide_device() {
  fc::DeviceLimits d = small_device();
  d.sm_count = 16;
  return d;
}

template <class T>
void check_topk(std::size_t rows, std::size_t n, int k, const std::vector<float>& values, std::ptrdiff_t x_offset,
                const char* label, const fc::DeviceLimits& device = small_device()) {
  ++cases;
  std::vector<T> xbuf(rows * n + 16);
  T* x = xbuf.data();
  while (reinterpret_cast<std::uintptr_t>(x) % 16 != 0) ++x;
  x += x_offset;
  std::vector<T> out(rows * k);
  std::vector<std::int64_t> indices(rows * k, -1);
  std::vector<std::vector<float>> row_values(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = fc::to_float(fc::from_float<T>(values[(r * 7 + i) % values.size()]));
      x[r * n + i] = fc::from_float<T>(v);
      row_values[r].push_back(v);
    }
  }
  fs::Call call;
  call.operation = fs::Operation::kSoftmaxTopk;
  call.dtype = dtype_of<T>();
  call.rows = rows;
  call.n = n;
  call.k = k;
  call.inputs[0] = {x, static_cast<std::ptrdiff_t>(n), 1};
  call.outputs[0] = {out.data(), k, 1};
  call.outputs[1] = {indices.data(), k, 1};
  std::string context = std::string(label) + " " + name_of<T>() + " topk " + std::to_string(rows) + "x" +
                        std::to_string(n) + " k=" + std::to_string(k);
  if (fs::validate_device(call) != fs::Status::kOk) return fail(context + ": refused");
  const fc::LaunchPlan plan = fc::plan_launch(call, device);
  const std::string error = fc::execute_on_device(call, plan, nullptr);
  if (!error.empty()) return fail(context + ": " + error);
  context += " " + plan.kernel;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::vector<float>& v = row_values[r];
    const std::vector<long double> ref = reference_row(v, false, 1.0);
    const bool nan_row = std::isnan((double)ref[0]);
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return v[a] > v[b]; });
    for (int j = 0; j < k; ++j) {
      const std::int64_t want_index = nan_row ? j : order[j];
      const double got = fc::to_float(out[r * k + j]);
      if (indices[r * k + j] != want_index) {
        return fail(context + " row " + std::to_string(r) + " #" + std::to_string(j) + ": index " +
                    std::to_string(indices[r * k + j]) + ", want " + std::to_string(want_index));
      }
      const double want = (double)ref[want_index];
      const bool ok = nan_row ? std::isnan(got) : std::fabs(got - want) <= tolerance<T>(want);
      if (!ok) return fail(context + " #" + std::to_string(j) + ": value " + std::to_string(got) + ", want " + std::to_string(want));
    }
  }
}

std::vector<float> random_values(std::size_t count, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(count);
  for (float& e : v) e = normal(rng);
  return v;
}

template <class T>
void run_dtype() {
  const std::vector<float> normal = random_values(4099, 4.0f, 1);
  const fs::Algorithm algorithms[] = {fs::Algorithm::kAuto, fs::Algorithm::kTwoPass, fs::Algorithm::kThreePassReload,
                                      fs::Algorithm::kThreePassRecompute, fs::Algorithm::kOnline};
  // Shapes reaching every family on the small device: warp rows (sub-warp, full warp, the
  // largest tile), block rows (shared memory) and split rows (rows beyond shared memory).
  const Layout layouts[] = {
      {3, 1}, {5, 3}, {9, 8}, {4, 33}, {3, 200}, {2, 1000},
      {2, 1000, 1, 3, 1003, 1010},  // misaligned starts, different in x and y, strided rows
      {3, 77, 2, 2, 80, 80},        // misaligned, the same misalignment in x and y
      {3, 2000},                    // block rows
      {3, 2000, 1, 0, 2001, 2000},  // block rows, misaligned, odd row stride
      {2, 9000},                    // split rows
      {2, 9000, 3, 1, 9003, 9001},  // split rows, misaligned
      {2, 600, 0, 0, 0, 0, true},   // in place
      {2, 3000, 0, 0, 0, 0, true},  // in place, block rows
  };
  const std::size_t quick_layouts[] = {0, 3, 6, 9, 11, 12};  // one or more of each family and layout kind
  for (fs::Operation op : {fs::Operation::kSoftmax, fs::Operation::kLogSoftmax}) {
    for (fs::Algorithm a : algorithms) {
      for (std::size_t i = 0; i < std::size(layouts); ++i) {
        const Layout& l = layouts[i];
        if (quick && std::find(std::begin(quick_layouts), std::end(quick_layouts), i) == std::end(quick_layouts)) continue;
        if (std::is_same_v<T, float> || l.n <= 2000 || a == fs::Algorithm::kAuto) {
          check_rowwise<T>(op, a, l, normal, 1.0, fs::algorithm_name(a));
        }
      }
      check_rowwise<T>(op, a, {3, 100}, normal, 0.37, "temperature 0.37");
      // Temperatures beyond the float constants: every row on the checked path.
      check_rowwise<T>(op, a, {2, 50}, normal, 1e37, "temperature 1e37");
      if (!quick) check_rowwise<T>(op, a, {2, 3000}, normal, 5.0, "temperature 5");
    }
  }
  // Special rows, in every family: NaN, +inf, only -inf, -inf entries, values beyond the fast range.
  const std::vector<std::vector<float>> specials = {
      {1, NAN, 2, 3}, {1, INFINITY, 2, INFINITY, -INFINITY}, {-INFINITY, -INFINITY, -INFINITY},
      {-INFINITY, 0, -INFINITY, 1}, {70000, 69990, 0, -5}, {80, -80, 0, -20}};
  for (const std::vector<float>& s : specials) {
    for (std::size_t n : {4, 1500, 9000}) {
      if ((!std::is_same_v<T, float> || quick) && n == 9000) continue;
      for (fs::Algorithm a : algorithms) {
        // --quick: the special rows through the one-pass and the three-pass state code.
        if (quick && a != fs::Algorithm::kTwoPass && a != fs::Algorithm::kThreePassReload) continue;
        std::vector<float> row(n, -3.0f);
        for (std::size_t i = 0; i < s.size(); ++i) row[(i * 997) % n] = s[i];
        if (std::isinf(s[0]) && s[0] < 0 && s.size() == 3) row.assign(n, -INFINITY);  // only -inf
        for (fs::Operation op : {fs::Operation::kSoftmax, fs::Operation::kLogSoftmax}) {
          check_rowwise<T>(op, a, {1, n}, row, 1.0, "special");
          // In place: a row that takes the checked path must still read its inputs.
          check_rowwise<T>(op, a, {2, n, 0, 0, 0, 0, true}, row, 1.0, "special in place");
        }
      }
    }
  }
  // Split rows whose chunks differ: one beyond the fast range, one just inside it (its part of
  // the checked sum matters: exp(-6)), the rest ordinary.
  if constexpr (std::is_same_v<T, float>) {
    std::vector<float> row(9000, -3.0f);
    row[0] = 65540.0f;
    row[8999] = 65534.0f;
    for (fs::Algorithm a : algorithms) {
      for (fs::Operation op : {fs::Operation::kSoftmax, fs::Operation::kLogSoftmax}) {
        check_rowwise<T>(op, a, {1, 9000}, row, 1.0, "chunks across the fast range");
        check_rowwise<T>(op, a, {2, 9000, 0, 0, 0, 0, true}, row, 1.0, "chunks across the fast range, in place");
      }
    }
  }
  // Top-k: ties to the lower index, k up to 256, special rows.
  std::vector<float> ties = random_values(5003, 2.0f, 2);
  for (std::size_t i = 0; i < ties.size(); i += 3) ties[i] = 1.5f;  // many equal values
  for (std::size_t n : {1, 7, 300, 5000}) {
    for (int k : {1, 5, 50, 256}) {
      if (static_cast<std::size_t>(k) > n || (quick && n == 5000 && k != 50)) continue;
      check_topk<T>(3, n, k, ties, 0, "ties");
      check_topk<T>(2, n, k, normal, 1, "misaligned");
    }
  }
  // Split top-k rows: chunks select their own k, a block per row merges (ties across chunks).
  for (int k : {1, 5, 50, 256}) {
    if (quick && k != 50) continue;
    check_topk<T>(3, 9000, k, ties, 0, "split ties", wide_device());
    check_topk<T>(2, 5000, k, normal, 1, "split misaligned", wide_device());
  }
  {
    std::vector<float> split_special(9000, -2.0f);
    split_special[100] = 65540.0f;  // beyond the fast range, in chunk 0
    split_special[8000] = 65534.0f;  // inside it, in the last chunk: its part of the sum matters
    check_topk<T>(1, 9000, 2, split_special, 0, "split across the fast range", wide_device());
    std::vector<float> split_inf(9000, 1.0f);
    split_inf[7000] = INFINITY;
    split_inf[10] = INFINITY;
    check_topk<T>(1, 9000, 3, split_inf, 0, "split +inf", wide_device());
    std::vector<float> split_nan(9000, 1.0f);
    split_nan[8500] = NAN;
    check_topk<T>(1, 9000, 3, split_nan, 0, "split nan", wide_device());
  }
  check_topk<T>(1, 6, 3, {1, NAN, 2, 3, 4, 5}, 0, "nan");
  check_topk<T>(1, 6, 3, {1, INFINITY, 2, INFINITY, 4, 5}, 0, "inf");
  check_topk<T>(1, 6, 2, {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, 0, "all -inf");
}

}  // namespace

int main(int argc, char** argv) {
  quick = argc > 1 && std::string(argv[1]) == "--quick";
  run_dtype<float>();
  run_dtype<fc::Half>();
  run_dtype<fc::Bf16>();
  std::printf("%d cases, %d failed\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
