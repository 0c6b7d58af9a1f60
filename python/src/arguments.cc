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
