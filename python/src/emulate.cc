// fastsoftmax._cuda's host checks of the device arithmetic: device_math.h compiled for the host,
// driven the way the warp-rows kernel drives it (elements dealt to lanes in 16-byte vectors, one
// state a lane, a butterfly of merges), so tests compare the kernels' math with the CPU library
// and the float64 reference on machines without a GPU.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arguments.h"
#include "cuda/device_math.h"

namespace py = pybind11;
using namespace fastsoftmax;
using namespace fastsoftmax::cuda;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

constexpr int kFloatPack = 4;  // float32 elements per 16-byte vector

// One row of n floats on `lanes` emulated lanes, as warp_rows_kernel<float, algorithm> computes it.
void emulate_row(const float* x, float* y, std::int64_t n, bool log, Algorithm algorithm, int lanes,
                 const ExpConstants& c) {
  // Lane l holds the vectors l, l + lanes, ... (elements 4v .. 4v + 3), in that order.
  auto lane_elements = [&](int lane, auto&& f) {
    for (std::int64_t v = lane; v * kFloatPack < n; v += lanes) {
      for (int p = 0; p < kFloatPack && v * kFloatPack + p < n; ++p) f(x[v * kFloatPack + p]);
    }
  };
  auto butterfly = [&](std::vector<RowState> s) {
    for (int o = lanes / 2; o > 0; o /= 2) {
      std::vector<RowState> next(s);
      for (int l = 0; l < lanes; ++l) next[l] = merge(s[l], s[l ^ o]);
      s = next;
    }
    return s[0];
  };
  std::vector<RowState> states(lanes, empty_state());
  RowState row;
  if (algorithm == Algorithm::kTwoPass || algorithm == Algorithm::kOnline) {
    for (int l = 0; l < lanes; ++l) {
      RowState& s = states[l];
      float running_max = c.input_floor;
      lane_elements(l, [&](float v) {
        note_element(s, v);
        const float xc = clamp_input(v, c);
        if (algorithm == Algorithm::kOnline) {
          if (xc > running_max) {
            running_max = xc;
            const int e = exponent_of_max(xc, c);
            s.sum = sum_at(s, e);
            s.exponent = e;
          }
          add_element(s, xc, c);
        } else {
          add_element_rescaling(s, xc, c);
        }
      });
    }
    row = butterfly(states);
  } else {
    for (int l = 0; l < lanes; ++l) lane_elements(l, [&](float v) { note_element(states[l], v); });
    const RowState maxima = butterfly(states);
    const bool reload = algorithm == Algorithm::kThreePassReload && !log;
    for (int l = 0; l < lanes; ++l) {
      RowState& s = states[l];
      s = maxima;
      s.exponent = exponent_of_max(clamp_input(maxima.max, c), c);
      s.sum = {};
      lane_elements(l, [&](float v) {
        if (reload) {
          stored_term(clamp_input(v, c), s.sum, s.exponent, c);
        } else {
          add_element(s, clamp_input(v, c), c);
        }
      });
    }
    row = butterfly(states);
    row.max = maxima.max;
    row.inf_count = maxima.inf_count;
  }
  if (!fast_state(row, c)) {
    double sum = 0.0;
    if (checked_needs_sum(row)) {
      for (std::int64_t i = 0; i < n; ++i) sum += checked_term(x[i], row, c);
    }
    for (std::int64_t i = 0; i < n; ++i) y[i] = checked_output(x[i], row, sum, log, c);
    return;
  }
  const OutputScale o = output_scale(row, c);
  for (std::int64_t i = 0; i < n; ++i) {
    if (log) {
      y[i] = log_softmax_output(x[i], o, c);
    } else if (algorithm == Algorithm::kThreePassReload) {
      FloatSum unused{};
      y[i] = reloaded_output(stored_term(clamp_input(x[i], c), unused, o.exponent, c), o);
    } else {
      y[i] = softmax_output(clamp_input(x[i], c), o, c);
    }
  }
}

py::array_t<float> emulate(const FloatArray& x, const std::string& operation, py::handle algorithm, double temperature,
                           int lanes) {
  if (x.ndim() != 2) throw py::value_error("x must be 2-D (rows, n)");
  if (lanes < 1 || lanes > 32 || (lanes & (lanes - 1)) != 0) throw py::value_error("lanes must be 1, 2, 4, ... 32");
  if (operation != "softmax" && operation != "log_softmax") throw py::value_error("softmax or log_softmax");
  Algorithm a = python::algorithm_argument(algorithm);
  if (a == Algorithm::kAuto) a = Algorithm::kTwoPass;
  const ExpConstants c = exp_constants(temperature);
  py::array_t<float> y({x.shape(0), x.shape(1)});
  for (py::ssize_t r = 0; r < x.shape(0); ++r) {
    emulate_row(x.data(r, 0), y.mutable_data(r, 0), x.shape(1), operation == "log_softmax", a, lanes, c);
  }
  return y;
}

py::tuple exp_parts_of(const FloatArray& x, double temperature) {
  const ExpConstants c = exp_constants(temperature);
  py::array_t<double> q(x.size());
  py::array_t<std::int32_t> n(x.size());
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    const ExpParts e = exp_parts(clamp_input(x.data()[i], c), c);
    q.mutable_data()[i] = static_cast<double>(e.q_hi) + e.q_lo;
    n.mutable_data()[i] = e.n;
  }
  return py::make_tuple(q, n);
}

py::array_t<std::uint16_t> to_bits(const FloatArray& x, const std::string& dtype) {
  py::array_t<std::uint16_t> out(x.size());
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    if (dtype == "float16") {
      out.mutable_data()[i] = from_float<Half>(x.data()[i]).bits;
    } else if (dtype == "bfloat16") {
      out.mutable_data()[i] = from_float<Bf16>(x.data()[i]).bits;
    } else {
      throw py::value_error("dtype must be float16 or bfloat16");
    }
  }
  return out;
}

py::array_t<float> from_bits(const py::array_t<std::uint16_t, py::array::c_style | py::array::forcecast>& bits,
                             const std::string& dtype) {
  py::array_t<float> out(bits.size());
  for (py::ssize_t i = 0; i < bits.size(); ++i) {
    if (dtype == "float16") {
      out.mutable_data()[i] = to_float(Half{bits.data()[i]});
    } else if (dtype == "bfloat16") {
      out.mutable_data()[i] = to_float(Bf16{bits.data()[i]});
    } else {
      throw py::value_error("dtype must be float16 or bfloat16");
    }
  }
  return out;
}

}  // namespace

void bind_emulation(py::module_& m) {
  m.def("emulate", &emulate, py::arg("x"), py::arg("operation"), py::arg("algorithm"), py::arg("temperature") = 1.0,
        py::arg("lanes") = 32,
        "The warp-rows kernel's arithmetic on the host: softmax or log_softmax of each row of a 2-D float32 "
        "array, the row dealt to `lanes` lanes in 16-byte vectors, their states merged by butterfly.");
  m.def("exp_parts", &exp_parts_of, py::arg("x"), py::arg("temperature") = 1.0,
        "(q, n) with exp(x / temperature) = (1 + q) * 2^n, as the kernels compute it (q = q_hi + q_lo in float64; x clamped to their domain).");
  m.def("to_bits", &to_bits, py::arg("x"), py::arg("dtype"),
        "float32 values rounded to float16 or bfloat16 bits by the kernels' conversion (host build).");
  m.def("from_bits", &from_bits, py::arg("bits"), py::arg("dtype"),
        "float16 or bfloat16 bits widened to float32 by the kernels' conversion (host build).");
}
