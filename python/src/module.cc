// fastsoftmax._core: the library for Python. Each function converts its arguments
// (arguments.h), maps the arrays onto the library's Calls (arrays.h) and lets the library
// validate, plan and run them; the fastsoftmax package re-exports these with its docstrings.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <string>

#include "arguments.h"
#include "arrays.h"
#include "fastsoftmax/fastsoftmax.h"
#include "cpu/philox.h"
#include "speed_bound.h"

namespace py = pybind11;
using namespace fastsoftmax;
using namespace fastsoftmax::python;

namespace {

Options options_of(py::handle algorithm, py::handle isa, py::handle num_threads, py::handle temperature) {
  Options options;
  options.algorithm = algorithm_argument(algorithm);
  options.cpu.isa = isa_argument(isa);
  options.cpu.num_threads = threads_argument(num_threads);
  options.temperature = temperature_argument(temperature);
  return options;
}

// ---- The common call, checked once ------------------------------------------------------------

// Below this many elements a call keeps the GIL: releasing and taking it back costs more than
// the other Python threads could gain.
constexpr std::size_t kKeepGilElements = 1 << 14;

// x's array when it is exactly a numpy.ndarray of native float32 or float64 (numpy's own dtype
// objects), C-contiguous and aligned, with at least one dimension; null otherwise.
const py::detail::PyArray_Proxy* plain_array(py::handle x) {
  const auto& api = py::detail::npy_api::get();
  if (Py_TYPE(x.ptr()) != api.PyArray_Type_) return nullptr;
  const auto* a = py::detail::array_proxy(x.ptr());
  constexpr int kContiguousAligned = 0x0001 | 0x0100;  // NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED
  if ((a->flags & kContiguousAligned) != kContiguousAligned || a->nd < 1) return nullptr;
  if (a->descr != py::dtype::of<float>().ptr() && a->descr != py::dtype::of<double>().ptr()) return nullptr;
  return a;
}

// softmax / log_softmax of the calls most callers make: a plain array (plain_array) along its last
// axis (rows), or along an axis with only length-1 axes before it (axis 0 of a matrix: adjacent
// columns), out= None or a plain array of the same shape and dtype that is x or lies apart from
// it. It is one library Call, checked here once, without the general path's conversions (about
// 0.3 us instead of 2-3). Null where it does not apply, or where the library refuses the call
// (a bad temperature, an ISA this machine lacks): the general path then runs, and raises.
py::object common_rowwise(Operation operation, py::handle x, py::handle axis, py::handle out, const Options& options) {
  const auto* a = plain_array(x);
  if (a == nullptr || !PyLong_CheckExact(axis.ptr())) return py::object();
  const long axis_value = PyLong_AsLong(axis.ptr());
  if (axis_value < -a->nd || axis_value >= a->nd) return py::object();  // the general path raises
  const int along = static_cast<int>(axis_value < 0 ? axis_value + a->nd : axis_value);
  std::size_t outer = 1, inner = 1;  // the elements of the axes before and after `along`
  for (int d = 0; d < along; ++d) outer *= static_cast<std::size_t>(a->dimensions[d]);
  for (int d = along + 1; d < a->nd; ++d) inner *= static_cast<std::size_t>(a->dimensions[d]);
  const std::size_t n = static_cast<std::size_t>(a->dimensions[along]);
  const std::size_t size = outer * n * inner;
  if (size == 0 || (inner > 1 && outer > 1)) return py::object();
  const bool float32 = a->descr == py::dtype::of<float>().ptr();
  const std::size_t bytes = size * (float32 ? sizeof(float) : sizeof(double));

  py::object result;
  if (out.is_none()) {
    const auto& api = py::detail::npy_api::get();
    Py_INCREF(a->descr);
    result = py::reinterpret_steal<py::object>(
        api.PyArray_NewFromDescr_(api.PyArray_Type_, a->descr, a->nd, a->dimensions, nullptr, nullptr, 0, nullptr));
    if (!result) throw py::error_already_set();
  } else {
    const auto* o = plain_array(out);
    constexpr int kWriteable = 0x0400;  // NPY_ARRAY_WRITEABLE
    if (o == nullptr || o->descr != a->descr || o->nd != a->nd || (o->flags & kWriteable) == 0 ||
        !std::equal(a->dimensions, a->dimensions + a->nd, o->dimensions)) {
      return py::object();
    }
    const bool apart = o->data + bytes <= a->data || a->data + bytes <= o->data;
    if (!apart && o->data != a->data) return py::object();
    result = py::reinterpret_borrow<py::object>(out);
  }
  Call call;
  call.operation = operation;
  call.options = options;
  call.dtype = float32 ? DataType::kFloat32 : DataType::kFloat64;
  call.n = n;
  // Rows n apart (the last axis), or columns side by side, their elements `inner` apart.
  call.rows = inner > 1 ? inner : outer;
  const auto row_stride = static_cast<std::ptrdiff_t>(inner > 1 ? 1 : n);
  const auto stride = static_cast<std::ptrdiff_t>(inner);
  call.inputs[0] = Operand{a->data, row_stride, stride};
  call.outputs[0] = Operand{py::detail::array_proxy(result.ptr())->data, row_stride, stride};
  Status status;
  if (size < kKeepGilElements) {
    status = fastsoftmax::run(call);
  } else {
    py::gil_scoped_release release;
    status = fastsoftmax::run(call);
  }
  return status == Status::kOk ? result : py::object();
}

py::object rowwise(Operation operation, py::handle x, py::handle axis, py::handle algorithm, py::handle isa,
                   py::handle out, py::handle num_threads, py::handle temperature, py::handle dtype,
                   py::handle casting, py::handle where) {
  const Options options = options_of(algorithm, isa, num_threads, temperature);
  const Casting cast = casting_argument(casting);
  DataType element = DataType::kFloat32;
  const bool has_dtype = dtype_argument(dtype, &element);
  if (!has_dtype && where.is_none()) {
    if (py::object common = common_rowwise(operation, x, axis, out, options)) return common;
  }
  RowwiseResult call = prepare_rowwise(operation, input_array(x, operation_name(operation)), axis, out, options,
                                       has_dtype, element, cast);
  attach_mask(call.prepared, where);
  run(call.prepared);
  finish_rowwise(call);
  return call.result;
}

py::tuple topk(py::handle x, py::handle k, py::handle axis, py::handle temperature, py::handle sorted,
               py::handle isa, py::handle num_threads, py::handle where) {
  const Options options = options_of(py::str("auto"), isa, num_threads, temperature);
  TopkResult call = prepare_topk(input_array(x, "softmax_topk"), k_argument(k), axis, sorted_argument(sorted), options);
  attach_mask(call.prepared, where);
  run(call.prepared);
  return py::make_tuple(call.values, call.indices);
}

// A new C-contiguous array of `shape` and the NumPy dtype of C++ type T, without pybind11's
// general constructor (the router's common call makes two per call).
template <class T>
py::object new_array(int nd, Py_intptr_t* shape) {
  const auto& api = py::detail::npy_api::get();
  PyObject* descr = py::dtype::of<T>().release().ptr();
  auto array = py::reinterpret_steal<py::object>(
      api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, shape, nullptr, nullptr, 0, nullptr));
  if (!array) throw py::error_already_set();
  return array;
}

// topk_softmax of the call most callers make: a plain float32 or float64 array (plain_array) of
// two dimensions, k a Python int, correction_bias None or a plain float32 array of one per expert:
// one library Call, checked here once (as common_rowwise). Null where it does not apply or the
// library refuses the call: the general path then runs, and raises.
py::object common_router(py::handle x, py::handle k, const RouterOptions& router, py::handle bias,
                         const Options& options) {
  const auto* a = plain_array(x);
  if (a == nullptr || a->nd != 2 || !PyLong_CheckExact(k.ptr())) return py::object();
  const float* bias_data = nullptr;
  if (!bias.is_none()) {
    const auto* b = plain_array(bias);
    if (b == nullptr || b->descr != py::dtype::of<float>().ptr() || b->nd != 1 || b->dimensions[0] != a->dimensions[1]) {
      return py::object();
    }
    bias_data = reinterpret_cast<const float*>(b->data);
  }
  const long k_value = PyLong_AsLong(k.ptr());
  if (k_value < 1 || k_value > a->dimensions[1]) return py::object();
  Py_intptr_t shape[2] = {a->dimensions[0], k_value};
  py::object weights = new_array<float>(2, shape), ids = new_array<std::int32_t>(2, shape);
  Call call;
  call.operation = Operation::kTopkSoftmax;
  call.options = options;
  call.dtype = a->descr == py::dtype::of<float>().ptr() ? DataType::kFloat32 : DataType::kFloat64;
  call.rows = static_cast<std::size_t>(a->dimensions[0]);
  call.n = static_cast<std::size_t>(a->dimensions[1]);
  call.k = k_value;
  call.router = router;
  call.inputs[0] = Operand{a->data, static_cast<std::ptrdiff_t>(call.n), 1};
  call.inputs[1] = Operand{bias_data, 0, 1};
  call.outputs[0] = Operand{py::detail::array_proxy(weights.ptr())->data, k_value, 1};
  call.outputs[1] = Operand{py::detail::array_proxy(ids.ptr())->data, k_value, 1};
  Status status;
  if (call.rows * call.n < kKeepGilElements) {
    status = fastsoftmax::run(call);
  } else {
    py::gil_scoped_release release;
    status = fastsoftmax::run(call);
  }
  return status == Status::kOk ? py::object(py::make_tuple(weights, ids)) : py::object();
}

py::tuple topk_softmax(py::handle x, py::handle k, py::handle renormalize, py::handle scoring,
                       py::handle num_expert_group, py::handle topk_group, py::handle correction_bias,
                       py::handle routed_scaling_factor, py::handle isa, py::handle num_threads) {
  const Options options = options_of(py::str("auto"), isa, num_threads, py::float_(1.0));
  const RouterOptions router =
      router_arguments(renormalize, scoring, num_expert_group, topk_group, routed_scaling_factor);
  if (py::object common = common_router(x, k, router, correction_bias, options)) return common;
  const RouterResult call =
      prepare_router(input_array(x, "topk_softmax"), k_argument(k), router, correction_bias, options);
  run(call.prepared);
  return py::make_tuple(call.weights, call.ids);
}

// sample: (ids, probabilities, whether a row could not be drawn from).
py::tuple sample_rows(py::handle x, py::handle temperature, py::handle top_k, py::handle top_p, py::handle min_p,
                      py::handle seed, py::handle where, py::handle isa, py::handle num_threads) {
  const Options options = options_of(py::str("auto"), isa, num_threads, py::float_(1.0));
  SampleCall sample;
  prepare_sample(input_array(x, "sample"), temperature, top_k, top_p, min_p, seed.cast<std::uint64_t>(), where,
                 options, sample);
  const Call& call = sample.call;
  Status status;
  if (call.rows * call.n < kKeepGilElements) {
    status = fastsoftmax::run(call);
  } else {
    py::gil_scoped_release release;
    status = fastsoftmax::run(call);
  }
  if (status != Status::kOk) raise_refused(call);
  const auto* ids = static_cast<const std::int64_t*>(call.outputs[0].data);
  const bool failed = std::any_of(ids, ids + call.rows, [](std::int64_t id) { return id < 0; });
  return py::make_tuple(sample.ids, sample.probabilities, failed);
}

py::tuple logsumexp_rows(py::handle x, py::handle axis, py::handle b, py::handle where, py::handle temperature,
                    py::handle isa, py::handle num_threads) {
  const Options options = options_of(py::str("auto"), isa, num_threads, temperature);
  const LogSumExpResult call = prepare_logsumexp(input_array(x, "logsumexp"), axis, b, where, options);
  run(call.prepared);
  return py::make_tuple(call.lse, call.sign);
}

py::array softmax_state_rows(py::handle x, py::handle axis, py::handle where, py::handle temperature, py::handle isa,
                        py::handle num_threads) {
  const Options options = options_of(py::str("auto"), isa, num_threads, temperature);
  const StatesResult call = prepare_states(input_array(x, "softmax_state"), axis, where, options);
  run(call.prepared);
  return call.states;
}

py::array from_state(Operation operation, py::handle x, py::handle states, py::handle axis, py::handle where,
                     py::handle out, py::handle isa, py::handle num_threads) {
  const Options options = options_of(py::str("auto"), isa, num_threads, py::float_(1.0));
  const FromStateResult call =
      prepare_from_state(operation, input_array(x, operation_name(operation)), states, axis, where, out, options);
  run(call.prepared);
  return call.y;
}

// merge_states over parts (rows, parts, fields) -> (rows, fields), and logsumexp_from_state
// (rows, fields) -> (rows,): C-contiguous float64 arrays, shaped by the package.
py::array_t<double> merge_state_rows(const py::array_t<double, py::array::c_style>& parts) {
  if (parts.ndim() != 3 || parts.shape(2) != kStateFields) {
    throw py::value_error("expected states of shape (rows, parts, " + std::to_string(kStateFields) + ")");
  }
  const auto rows = static_cast<std::size_t>(parts.shape(0)), count = static_cast<std::size_t>(parts.shape(1));
  py::array_t<double> merged(std::vector<py::ssize_t>{parts.shape(0), kStateFields});
  const auto* in = reinterpret_cast<const NormalizerState*>(parts.data());
  auto* out = reinterpret_cast<NormalizerState*>(merged.mutable_data());
  for (std::size_t r = 0; r < rows; ++r) {
    const Status status = merge_states(in + r * count, count, out + r);
    if (status == Status::kMismatchedStates) {
      throw py::value_error("the states to merge have different temperatures (their last field); merge only states "
                            "computed at one temperature");
    }
    if (status != Status::kOk) throw py::value_error(status_message(status));
  }
  return merged;
}
py::array_t<double> logsumexp_state_rows(const py::array_t<double, py::array::c_style>& states) {
  if (states.ndim() != 2 || states.shape(1) != kStateFields) {
    throw py::value_error("expected states of shape (rows, " + std::to_string(kStateFields) + ")");
  }
  py::array_t<double> lse(std::vector<py::ssize_t>{states.shape(0)});
  const auto* in = reinterpret_cast<const NormalizerState*>(states.data());
  double* out = lse.mutable_data();
  for (py::ssize_t r = 0; r < states.shape(0); ++r) out[r] = logsumexp_from_state(in[r]);
  return lse;
}

std::vector<py::ssize_t> shape_without_axis(const py::array& x, py::handle axis);

Explanation explain_call(py::handle x, py::handle axis, const std::string& function, py::handle k,
                         py::handle algorithm, py::handle isa, py::handle num_threads, py::handle temperature) {
  const Options options = options_of(algorithm, isa, num_threads, temperature);
  if (function == "softmax_topk") {
    if (k.is_none()) throw py::type_error("explain(function='softmax_topk') needs k");
    return explain(prepare_topk(input_array(x, "softmax_topk"), k_argument(k), axis, true, options).prepared);
  }
  if (function == "topk_softmax") {  // its default options: softmax scores, no bias, no groups
    if (k.is_none()) throw py::type_error("explain(function='topk_softmax') needs k");
    return explain(prepare_router(input_array(x, "topk_softmax"), k_argument(k), RouterOptions{}, py::none(), options)
                       .prepared);
  }
  if (function == "sample") {  // the plan does not depend on the parameters: the defaults
    SampleCall sample;
    prepare_sample(input_array(x, "sample"), py::none(), py::none(), py::none(), py::none(), 0, py::none(), options,
                   sample);
    return fastsoftmax::explain(sample.call);
  }
  if (function == "logsumexp") {
    return explain(prepare_logsumexp(input_array(x, "logsumexp"), axis, py::none(), py::none(), options).prepared);
  }
  if (function == "softmax_state") {
    return explain(prepare_states(input_array(x, "softmax_state"), axis, py::none(), options).prepared);
  }
  if (function == "softmax_from_state" || function == "log_softmax_from_state") {
    const Operation operation =
        function == "softmax_from_state" ? Operation::kSoftmaxFromState : Operation::kLogSoftmaxFromState;
    // The plan does not depend on the states' values: any states of the right shape.
    const Input input = input_array(x, function.c_str());
    py::array_t<double> states(shape_without_axis(input.array, axis));
    return explain(prepare_from_state(operation, input, states, axis, py::none(), py::none(), options).prepared);
  }
  Operation operation;
  if (function == "softmax") {
    operation = Operation::kSoftmax;
  } else if (function == "log_softmax") {
    operation = Operation::kLogSoftmax;
  } else {
    throw py::value_error("unknown function '" + function + "'; expected softmax, log_softmax, softmax_topk, "
                          "topk_softmax, sample, logsumexp, softmax_state, softmax_from_state or log_softmax_from_state");
  }
  return explain(prepare_rowwise(operation, input_array(x, function.c_str()), axis, py::none(), options, false,
                                 DataType::kFloat32, Casting::kSafe)
                     .prepared);
}

// The shape of the states of x's rows along `axis`: x's shape without it, then the fields.
std::vector<py::ssize_t> shape_without_axis(const py::array& x, py::handle axis) {
  const int ndim = static_cast<int>(x.ndim());
  const int along = axis_argument(axis, std::max(ndim, 1));
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + ndim);
  if (ndim > 0) shape.erase(shape.begin() + along);
  shape.push_back(kStateFields);
  return shape;
}

std::vector<std::string> names_of(const std::vector<Isa>& isas) {
  std::vector<std::string> names;
  for (Isa isa : isas) names.emplace_back(isa_name(isa));
  return names;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastsoftmax native core (use the functions of the fastsoftmax package instead)";
  m.attr("__version__") = FASTSOFTMAX_VERSION;
  m.attr("cuda_compiled") = static_cast<bool>(FASTSOFTMAX_CUDA_COMPILED);

  m.def("softmax",
        [](py::handle x, py::handle axis, py::handle algorithm, py::handle isa, py::handle out, py::handle threads,
           py::handle temperature, py::handle dtype, py::handle casting, py::handle where) {
          return rowwise(Operation::kSoftmax, x, axis, algorithm, isa, out, threads, temperature, dtype, casting,
                         where);
        },
        "fastsoftmax.softmax with every argument given positionally.", py::arg("x"), py::arg("axis"),
        py::arg("algorithm"), py::arg("isa"), py::arg("out"), py::arg("num_threads"), py::arg("temperature"),
        py::arg("dtype"), py::arg("casting"), py::arg("where") = py::none());
  m.def("log_softmax",
        [](py::handle x, py::handle axis, py::handle algorithm, py::handle isa, py::handle out, py::handle threads,
           py::handle temperature, py::handle dtype, py::handle casting, py::handle where) {
          return rowwise(Operation::kLogSoftmax, x, axis, algorithm, isa, out, threads, temperature, dtype, casting,
                         where);
        },
        "fastsoftmax.log_softmax with every argument given positionally.", py::arg("x"), py::arg("axis"),
        py::arg("algorithm"), py::arg("isa"), py::arg("out"), py::arg("num_threads"), py::arg("temperature"),
        py::arg("dtype"), py::arg("casting"), py::arg("where") = py::none());
  m.def("softmax_topk", &topk, "fastsoftmax.softmax_topk with every argument given positionally.", py::arg("x"),
        py::arg("k"), py::arg("axis"), py::arg("temperature"), py::arg("sorted"), py::arg("isa"),
        py::arg("num_threads"), py::arg("where") = py::none());
  m.def("sample", &sample_rows,
        "fastsoftmax.sample with every argument given positionally: (ids, probabilities, whether a row failed).");
  m.def("_philox4x64_10",
        [](std::array<std::uint64_t, 4> counter, std::array<std::uint64_t, 2> key) { return philox4x64_10(counter, key); },
        "Philox4x64-10 of (counter, key): sample()'s random words (for the tests).");
  m.def("logsumexp", &logsumexp_rows, "fastsoftmax.logsumexp along one axis, every argument positional: (lse, sign).");
  m.def("topk_softmax", &topk_softmax, "fastsoftmax.topk_softmax with every argument given positionally.");
  m.def("softmax_state", &softmax_state_rows, "fastsoftmax.softmax_state with every argument given positionally.");
  m.def("softmax_from_state",
        [](py::handle x, py::handle states, py::handle axis, py::handle where, py::handle out, py::handle isa,
           py::handle threads) {
          return from_state(Operation::kSoftmaxFromState, x, states, axis, where, out, isa, threads);
        },
        "fastsoftmax.softmax_from_state with every argument given positionally.");
  m.def("log_softmax_from_state",
        [](py::handle x, py::handle states, py::handle axis, py::handle where, py::handle out, py::handle isa,
           py::handle threads) {
          return from_state(Operation::kLogSoftmaxFromState, x, states, axis, where, out, isa, threads);
        },
        "fastsoftmax.log_softmax_from_state with every argument given positionally.");
  m.def("merge_state_rows", &merge_state_rows, "merge_states over (rows, parts, fields) float64 states.");
  m.def("logsumexp_state_rows", &logsumexp_state_rows, "logsumexp_from_state over (rows, fields) float64 states.");
  m.attr("state_fields") = kStateFields;
  m.def("explain", &explain_call, "fastsoftmax.explain with every argument given positionally.");

  py::class_<Explanation>(m, "Explanation", "What a call would run, and why (fastsoftmax.explain).")
      .def_property_readonly("ok", [](const Explanation& e) { return e.status == Status::kOk; },
                             "Whether the call would run (else `error` says why not).")
      .def_readonly("error", &Explanation::error, "Why the call would be refused ('' when ok).")
      .def_readonly("implementation", &Explanation::implementation, "The implementation asked for or chosen.")
      .def_readonly("kernel", &Explanation::kernel, "The catalogue name of the kernel that runs (see kernels()).")
      .def_readonly("algorithm", &Explanation::algorithm, "The algorithm that runs, never 'auto'.")
      .def_readonly("schedule", &Explanation::schedule,
                    "'rows', 'short rows', 'columns', 'split rows' or 'one element'.")
      .def_readonly("threads", &Explanation::threads, "Threads the call asks for.")
      .def_property_readonly(
          "reasons", [](const Explanation& e) { return py::dict(py::cast(e.reasons)); },
          "{choice: reason} for implementation, kernel, algorithm, schedule and threads.")
      .def("__str__", &Explanation::text)
      .def("__repr__", [](const Explanation& e) { return "<fastsoftmax.Explanation\n" + e.text() + ">"; });

  m.def("set_num_threads", &set_num_threads, py::arg("threads"),
        "Default thread count of calls (threads <= 0: the automatic default).");
  m.def("get_num_threads", &get_num_threads, "Default thread count of calls.");
  m.def("threads_argument", [](py::handle threads) { return threads_argument(threads); },
        "num_threads as the library takes it (None: 0), or TypeError / ValueError.");
  m.def("read_twice_write_once", [](const py::array_t<float, py::array::c_style>& x,
                                    py::array_t<float, py::array::c_style>& y, py::handle isa) {
    if (x.size() != y.size()) throw py::value_error("x and y must have the same size");
    const Isa isa_value = isa_argument(isa);
    const float* x_data = x.data();
    float* y_data = y.mutable_data();
    Status status;
    {
      py::gil_scoped_release release;
      status = read_twice_write_once(x_data, y_data, static_cast<std::size_t>(x.size()), isa_value);
    }
    if (status != Status::kOk) throw py::value_error(status_message(status));
  }, py::arg("x"), py::arg("y"), py::arg("isa"),
        "Speed bound, not a softmax: reads contiguous float32 x twice and writes y once with trivial "
        "arithmetic (the memory traffic of two_pass and online).");

  m.def("isa_names", &isa_names, "Every isa= name, 'auto' first, the others lowest priority first.");
  m.def("algorithm_names", &algorithm_names, "Every algorithm= name, 'auto' first.");
  m.def("compiled_isas", [] { return names_of(compiled_isas()); }, "ISAs compiled into the library.");
  m.def("supported_isas", [] { return names_of(supported_isas()); },
        "ISAs compiled in and usable on this CPU, best last.");
  m.def("auto_isa", [] {
    Isa isa;
    if (auto_isa(&isa) != Status::kOk) throw py::value_error(explain(Call{}).error);
    return std::string(isa_name(isa));
  }, "The ISA that isa='auto' uses (FASTSOFTMAX_ISA if set).");
  m.def("implementations", [] {
    py::list list;
    for (const ImplementationInfo& i : implementations()) {
      list.append(py::dict(py::arg("name") = i.name, py::arg("backend") = i.backend,
                           py::arg("description") = i.description, py::arg("required_features") = i.required_features,
                           py::arg("priority") = i.priority, py::arg("compiled") = i.compiled,
                           py::arg("supported") = i.supported));
    }
    return list;
  }, "Every implementation, lowest priority first, as dicts.");
  m.def("kernels", [] {
    py::list list;
    for (const KernelInfo& k : kernels()) {
      list.append(py::dict(py::arg("name") = k.name, py::arg("dtype") = dtype_name(k.dtype),
                           py::arg("operation") = operation_name(k.operation), py::arg("algorithm") = k.algorithm,
                           py::arg("target") = isa_name(k.target), py::arg("layout") = k.layout));
    }
    return list;
  }, "Every kernel compiled into the library, as dicts.");
  m.def("cpu_features", [] {
    py::dict features;
    for (const auto& [name, value] : cpu_feature_flags()) features[py::str(name)] = value;
    return features;
  }, "CPU features detected at run time (cpuid and the OS's xgetbv state).");
}
