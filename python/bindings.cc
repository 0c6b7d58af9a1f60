// fastsoftmax._core: NumPy arrays in, C++ row kernels out. Argument rules (dtypes, axis, out=)
// live in python/fastsoftmax/__init__.py; this layer only maps array views onto RowLayouts.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastsoftmax/fastsoftmax.h"

namespace py = pybind11;
using namespace fastsoftmax;

namespace {

Isa isa_from_name(const std::string& name) {
  Isa isa;
  if (!parse_isa(name, &isa)) throw py::value_error("unknown isa '" + name + "'");
  return isa;
}

Algorithm algorithm_from_name(const std::string& name) {
  Algorithm algorithm;
  if (!parse_algorithm(name, &algorithm)) throw py::value_error("unknown algorithm '" + name + "'");
  return algorithm;
}

void check(Status status) {
  if (status != Status::kOk) throw py::value_error(status_message(status));
}

// Strides of `a` in elements; false if some stride is not a whole number of elements.
bool element_strides(const py::array& a, std::vector<std::ptrdiff_t>* strides) {
  const auto itemsize = static_cast<std::ptrdiff_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.strides(d) % itemsize != 0) return false;
    strides->push_back(a.strides(d) / itemsize);
  }
  return true;
}

// The element types the kernels take, as NumPy dtypes in native byte order: float32, float64,
// float16, and bfloat16 (ml_dtypes.bfloat16, whose dtype is named "bfloat16").
enum class Element { kFloat32, kFloat64, kFloat16, kBFloat16, kUnsupported };

Element element_of(const py::array& a) {
  const py::dtype dtype = a.dtype();
  if (!dtype.attr("isnative").cast<bool>()) return Element::kUnsupported;
  if (dtype.kind() == 'f') {
    switch (dtype.itemsize()) {
      case 4: return Element::kFloat32;
      case 8: return Element::kFloat64;
      case 2: return Element::kFloat16;
      default: return Element::kUnsupported;
    }
  }
  if (dtype.itemsize() == 2 && dtype.attr("name").cast<std::string>() == "bfloat16") return Element::kBFloat16;
  return Element::kUnsupported;
}

// Calls fn(T{}) with the element type of a and b, which must be one and the same.
template <class Fn>
void with_element_type(const py::array& a, const py::array& b, const char* names, Fn&& fn) {
  const Element element = element_of(a);
  if (element == Element::kUnsupported || element_of(b) != element) {
    throw py::type_error(std::string(names) + " must have one dtype: float32, float64, float16 or bfloat16");
  }
  switch (element) {
    case Element::kFloat32: return fn(float{});
    case Element::kFloat64: return fn(double{});
    case Element::kFloat16: return fn(Float16{});
    case Element::kBFloat16: return fn(BFloat16{});
    case Element::kUnsupported: break;
  }
}

// Calls `call(x_offset, y_offset, layout)` for the rows of x and y, stopping at the first
// error. The last axis is the softmax axis (its length is x's; y's may differ, as top-k's does),
// the one before it the batch of rows; any axes before those are walked here, so every strided
// view runs without a copy. Releases the GIL.
template <class Call>
Status for_each_layout(const py::array& x, const py::array& y, Call&& call) {
  const py::ssize_t ndim = x.ndim();
  std::vector<std::ptrdiff_t> xs, ys;
  if (!element_strides(x, &xs) || !element_strides(y, &ys)) {
    throw py::value_error("array strides must be multiples of the item size");
  }
  std::vector<std::size_t> shape(x.shape(), x.shape() + ndim);

  RowLayout layout;
  layout.n = shape[ndim - 1];
  layout.x_stride = xs[ndim - 1];
  layout.y_stride = ys[ndim - 1];
  if (ndim >= 2) {
    layout.rows = shape[ndim - 2];
    layout.x_row_stride = xs[ndim - 2];
    layout.y_row_stride = ys[ndim - 2];
  }
  py::ssize_t outer_dims = ndim >= 2 ? ndim - 2 : 0;
  // Outer axes laid out as more rows (a C-contiguous batch of matrices) join the rows, so that a
  // single call sees, and can share among threads, all of them.
  while (outer_dims > 0) {
    const py::ssize_t d = outer_dims - 1;
    const auto next = static_cast<std::ptrdiff_t>(layout.rows);
    if (xs[d] != next * layout.x_row_stride || ys[d] != next * layout.y_row_stride) break;
    layout.rows *= shape[d];
    --outer_dims;
  }
  std::size_t outer_count = 1;
  for (py::ssize_t d = 0; d < outer_dims; ++d) outer_count *= shape[d];

  Status status = Status::kOk;
  py::gil_scoped_release release;
  std::vector<std::size_t> index(outer_dims, 0);
  for (std::size_t k = 0; k < outer_count && status == Status::kOk; ++k) {
    std::ptrdiff_t x_offset = 0, y_offset = 0;
    for (py::ssize_t d = 0; d < outer_dims; ++d) {
      x_offset += static_cast<std::ptrdiff_t>(index[d]) * xs[d];
      y_offset += static_cast<std::ptrdiff_t>(index[d]) * ys[d];
    }
    status = call(x_offset, y_offset, layout);
    // Advance the multi-index over the outer axes, last axis fastest.
    for (py::ssize_t d = outer_dims - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return status;
}

template <class T>
void run(const py::array& x, py::array& y, const Options& options, bool log) {
  const T* x_data = static_cast<const T*>(x.data());
  T* y_data = static_cast<T*>(y.mutable_data());
  check(for_each_layout(x, y, [&](std::ptrdiff_t x_offset, std::ptrdiff_t y_offset, const RowLayout& layout) {
    return log ? log_softmax(x_data + x_offset, y_data + y_offset, layout, options)
               : softmax(x_data + x_offset, y_data + y_offset, layout, options);
  }));
}

template <class T>
void run_topk(const py::array& x, py::array& values, py::array& indices, std::size_t k, bool sorted,
              const Options& options) {
  const T* x_data = static_cast<const T*>(x.data());
  T* values_data = static_cast<T*>(values.mutable_data());
  auto* indices_data = static_cast<std::int64_t*>(indices.mutable_data());
  // values and indices are C-contiguous of one shape: the same offsets in elements.
  check(for_each_layout(x, values, [&](std::ptrdiff_t x_offset, std::ptrdiff_t y_offset, const RowLayout& layout) {
    return softmax_topk(x_data + x_offset, layout, k, values_data + y_offset, indices_data + y_offset, sorted,
                        options);
  }));
}

void topk(const py::array& x, py::array& values, py::array& indices, std::size_t k, bool sorted,
          const std::string& isa, int num_threads, double temperature) {
  if (num_threads < 0) throw py::value_error("num_threads must be >= 0 (0: the default)");
  const py::ssize_t ndim = x.ndim();
  if (ndim < 1 || values.ndim() != ndim || indices.ndim() != ndim) {
    throw py::value_error("x, values and indices must have the same ndim >= 1");
  }
  if (k < 1 || k > static_cast<std::size_t>(x.shape(ndim - 1))) throw py::value_error("k must be in 1..n");
  for (py::ssize_t d = 0; d < ndim; ++d) {
    const auto expected = d == ndim - 1 ? static_cast<py::ssize_t>(k) : x.shape(d);
    if (values.shape(d) != expected || indices.shape(d) != expected) {
      throw py::value_error("values and indices must have x's shape with k as the last axis");
    }
  }
  const auto c_contiguous = py::array::c_style;
  if (!(values.flags() & c_contiguous) || !(indices.flags() & c_contiguous)) {
    throw py::value_error("values and indices must be C-contiguous");
  }
  if (!values.writeable() || !indices.writeable()) throw py::value_error("values and indices must be writable");
  if (!py::isinstance<py::array_t<std::int64_t>>(indices)) throw py::type_error("indices must be int64");
  const Options options{Algorithm::kOnline, isa_from_name(isa), num_threads, temperature};
  with_element_type(x, values, "x and values", [&](auto element) {
    run_topk<decltype(element)>(x, values, indices, k, sorted, options);
  });
}

void compute(const py::array& x, py::array& y, const std::string& algorithm, const std::string& isa, bool log,
             int num_threads, double temperature) {
  if (num_threads < 0) throw py::value_error("num_threads must be >= 0 (0: the default)");
  if (x.ndim() < 1 || x.ndim() != y.ndim()) throw py::value_error("x and y must have the same ndim >= 1");
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    if (x.shape(d) != y.shape(d)) throw py::value_error("x and y must have the same shape");
  }
  if (!y.writeable()) throw py::value_error("output array is read-only");
  const Options options{algorithm_from_name(algorithm), isa_from_name(isa), num_threads, temperature};
  with_element_type(x, y, "x and y", [&](auto element) { run<decltype(element)>(x, y, options, log); });
}

std::vector<std::string> isa_names(const std::vector<Isa>& isas) {
  std::vector<std::string> names;
  for (Isa isa : isas) names.emplace_back(isa_name(isa));
  return names;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastsoftmax native core (use the functions of the fastsoftmax package instead)";
  m.attr("__version__") = FASTSOFTMAX_VERSION;
  m.attr("cuda_compiled") = static_cast<bool>(FASTSOFTMAX_CUDA_COMPILED);

  m.def("compute", &compute, py::arg("x"), py::arg("y"), py::arg("algorithm"), py::arg("isa"), py::arg("log"),
        py::arg("num_threads") = 0, py::arg("temperature") = 1.0,
        "Softmax (log=False) or log-softmax of x / temperature along its last axis into y (same shape, "
        "float32 or float64, y writable; y may be x) on up to num_threads threads (0: get_num_threads()). "
        "Releases the GIL.");
  m.def("topk", &topk, py::arg("x"), py::arg("values"), py::arg("indices"), py::arg("k"), py::arg("sorted"),
        py::arg("isa"), py::arg("num_threads") = 0, py::arg("temperature") = 1.0,
        "The k largest probabilities of softmax(x / temperature) along the last axis and their indices, into values "
        "(x's dtype) and indices (int64), both C-contiguous of x's shape with k as the last axis. "
        "Releases the GIL.");
  m.def("set_num_threads", &set_num_threads, py::arg("threads"),
        "Default thread count of calls (threads <= 0: the automatic default).");
  m.def("get_num_threads", &get_num_threads, "Default thread count of calls.");
  m.def("read_twice_write_once", [](const py::array_t<float, py::array::c_style>& x,
                                    py::array_t<float, py::array::c_style>& y, const std::string& isa) {
    if (x.size() != y.size()) throw py::value_error("x and y must have the same size");
    const Isa isa_value = isa_from_name(isa);
    const float* x_data = x.data();
    float* y_data = y.mutable_data();
    Status status;
    {
      py::gil_scoped_release release;
      status = read_twice_write_once(x_data, y_data, static_cast<std::size_t>(x.size()), isa_value);
    }
    check(status);
  }, py::arg("x"), py::arg("y"), py::arg("isa"),
        "Speed bound, not a softmax: reads contiguous float32 x twice and writes y once with trivial "
        "arithmetic (the memory traffic of two_pass and online).");
  m.def("compiled_isas", [] { return isa_names(compiled_isas()); }, "ISAs compiled into the library.");
  m.def("supported_isas", [] { return isa_names(supported_isas()); },
        "ISAs compiled in and usable on this CPU, best last.");
  m.def("auto_isa", [] {
    Isa isa;
    check(auto_isa(&isa));
    return std::string(isa_name(isa));
  }, "The ISA that isa='auto' uses (FASTSOFTMAX_ISA if set).");
  m.def("choose_algorithm", [](const std::string& isa, std::size_t n) {
    return std::string(algorithm_name(choose_algorithm(isa_from_name(isa), n)));
  }, py::arg("isa"), py::arg("n"), "The algorithm that algorithm='auto' picks for a row of length n.");
  m.def("cpu_features", [] {
    const CpuFeatures& f = cpu_features();
    py::dict d;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["f16c"] = f.f16c;
    d["avx512f"] = f.avx512f;
    d["avx512dq"] = f.avx512dq;
    d["avx512bw"] = f.avx512bw;
    d["avx512vl"] = f.avx512vl;
    d["avx512bf16"] = f.avx512bf16;
    d["os_saves_ymm"] = f.os_saves_ymm;
    d["os_saves_zmm"] = f.os_saves_zmm;
    return d;
  }, "CPU features detected at run time (cpuid and the OS's xgetbv state).");
}
