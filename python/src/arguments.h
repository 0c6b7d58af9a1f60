// fastsoftmax._core: Python arguments to library values. Only the Python-type rules live here
// (TypeError for the wrong kind of object, ValueError for a name the library does not know, numpy's
// AxisError); every rule on values is the library's own (cpp/src/validate.cc), reported with its
// message.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::python {

namespace py = pybind11;

Algorithm algorithm_argument(py::handle name);
Isa isa_argument(py::handle name);
// None: 0 (the library's default, get_num_threads()); else a positive integer.
int threads_argument(py::handle threads);
double temperature_argument(py::handle temperature);
std::int64_t k_argument(py::handle k);
bool sorted_argument(py::handle sorted);
// topk_softmax's options: renormalize a bool, scoring "softmax" or "sigmoid", num_expert_group and
// topk_group both None or both integers, routed_scaling_factor a real number (their values are
// the library's to check).
RouterOptions router_arguments(py::handle renormalize, py::handle scoring, py::handle num_expert_group,
                               py::handle topk_group, py::handle routed_scaling_factor);
// An axis of an array of `ndim` dimensions, in 0..ndim-1: numpy.exceptions.AxisError if out of range.
int axis_argument(py::handle axis, int ndim);

// The library's error for a refused call, as ValueError.
[[noreturn]] void raise_refused(const Call& call);

}  // namespace fastsoftmax::python
