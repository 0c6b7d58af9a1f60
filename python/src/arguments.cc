// Python arguments to library values (arguments.h).
#include "arguments.h"

#include <algorithm>
#include <string>
#include <vector>

namespace fastsoftmax::python {
namespace {

// The most threads a call asks for; the library caps them at the CPUs anyway.
constexpr long long kMaxThreads = 1 << 16;

// numpy.<name>, looked up once (the reference is kept for the life of the process).
py::handle numpy_attribute(const char* name) { return py::object(py::module_::import("numpy").attr(name)).release(); }
py::handle numpy_integer() {
  static const py::handle type = numpy_attribute("integer");
  return type;
}
py::handle numpy_floating() {
  static const py::handle type = numpy_attribute("floating");
  return type;
}
py::handle numpy_bool() {
  static const py::handle type = numpy_attribute("bool_");
  return type;
}
// numpy.exceptions.AxisError (NumPy >= 1.25), numpy.AxisError before.
py::handle numpy_axis_error() {
  static const py::handle type = [] {
    const py::module_ numpy = py::module_::import("numpy");
    const bool modern = py::hasattr(numpy, "exceptions") && py::hasattr(numpy.attr("exceptions"), "AxisError");
    return py::object(modern ? numpy.attr("exceptions").attr("AxisError") : numpy.attr("AxisError")).release();
  }();
  return type;
}

std::string type_name(py::handle value) { return py::str(py::type::handle_of(value).attr("__name__")); }

// A Python or NumPy integer, not a bool.
bool is_integer(py::handle value) {
  if (PyBool_Check(value.ptr())) return false;
  return PyLong_Check(value.ptr()) || py::isinstance(value, numpy_integer());
}

// The enum whose name `value` is, from `names` (kAuto first); ValueError otherwise.
template <class Enum>
Enum name_argument(py::handle value, const char* what, const std::vector<std::string>& names) {
  if (py::isinstance<py::str>(value)) {
    const std::string name = value.cast<std::string>();
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<Enum>(i);
    }
  }
  std::string expected;
  for (const std::string& name : names) expected += (expected.empty() ? "" : ", ") + name;
  throw py::value_error("unknown " + std::string(what) + " " + std::string(py::repr(value)) + "; expected one of " +
                        expected);
}

}  // namespace

Algorithm algorithm_argument(py::handle name) {
  static const std::vector<std::string> names = algorithm_names();
  return name_argument<Algorithm>(name, "algorithm", names);
}

Isa isa_argument(py::handle name) {
  static const std::vector<std::string> names = isa_names();
  return name_argument<Isa>(name, "isa", names);
}

int threads_argument(py::handle threads) {
  if (threads.is_none()) return 0;
  if (!is_integer(threads)) {
    throw py::type_error("num_threads must be a positive integer or None, got " + type_name(threads));
  }
  const long long value = threads.cast<long long>();
  if (value < 1) throw py::value_error("num_threads must be a positive integer or None, got " + std::to_string(value));
  return static_cast<int>(std::min(value, kMaxThreads));
}

double temperature_argument(py::handle temperature) {
  const bool real = PyFloat_Check(temperature.ptr()) || is_integer(temperature) ||
                    py::isinstance(temperature, numpy_floating());
  if (!real) throw py::type_error("temperature must be a real number, got " + type_name(temperature));
  return temperature.cast<double>();
}

std::int64_t k_argument(py::handle k) {
  if (!is_integer(k)) throw py::type_error("k must be an integer, got " + type_name(k));
  return k.cast<std::int64_t>();
}

bool sorted_argument(py::handle sorted) {
  if (!PyBool_Check(sorted.ptr()) && !py::isinstance(sorted, numpy_bool())) {
    throw py::type_error("sorted must be a bool, got " + type_name(sorted));
  }
  return sorted.cast<bool>();
}

RouterOptions router_arguments(py::handle renormalize, py::handle scoring, py::handle num_expert_group,
                               py::handle topk_group, py::handle routed_scaling_factor) {
  RouterOptions router;
  if (!PyBool_Check(renormalize.ptr()) && !py::isinstance(renormalize, numpy_bool())) {
    throw py::type_error("renormalize must be a bool, got " + type_name(renormalize));
  }
  router.renormalize = renormalize.cast<bool>();
  if (!py::isinstance<py::str>(scoring)) throw py::type_error("scoring must be a str, got " + type_name(scoring));
  const std::string name = scoring.cast<std::string>();
  if (name != "softmax" && name != "sigmoid") {
    throw py::value_error("scoring must be 'softmax' or 'sigmoid', got '" + name + "'");
  }
  router.scoring = name == "softmax" ? Scoring::kSoftmax : Scoring::kSigmoid;
  if (num_expert_group.is_none() != topk_group.is_none()) {
    throw py::value_error("num_expert_group and topk_group go together: give both or neither");
  }
  if (!num_expert_group.is_none()) {
    for (py::handle value : {num_expert_group, topk_group}) {
      if (!is_integer(value)) throw py::type_error("num_expert_group and topk_group must be integers, got " + type_name(value));
    }
    router.groups = num_expert_group.cast<int>();
    router.topk_group = topk_group.cast<int>();
    if (router.groups < 1) throw py::value_error("num_expert_group must be >= 1, got " + std::to_string(router.groups));
  }
  const bool real = PyFloat_Check(routed_scaling_factor.ptr()) || is_integer(routed_scaling_factor) ||
                    py::isinstance(routed_scaling_factor, numpy_floating());
  if (!real) throw py::type_error("routed_scaling_factor must be a real number, got " + type_name(routed_scaling_factor));
  router.scaling = routed_scaling_factor.cast<double>();
  return router;
}

int axis_argument(py::handle axis, int ndim) {
  if (!is_integer(axis)) throw py::type_error("axis must be an integer, got " + type_name(axis));
  const long long value = axis.cast<long long>();
  if (value < -ndim || value >= ndim) {
    PyErr_SetObject(numpy_axis_error().ptr(), numpy_axis_error()(value, ndim).ptr());
    throw py::error_already_set();
  }
  return static_cast<int>(value < 0 ? value + ndim : value);
}

void raise_refused(const Call& call) { throw py::value_error(explain(call).error); }

}  // namespace fastsoftmax::python
