"""``python -m fastsoftmax bench`` (or ``fastsoftmax-bench``): time fastsoftmax against its peers.

Candidates
----------
- fastsoftmax: every algorithm on every ISA this CPU has, through the public API,
  ``softmax(x, algorithm=..., isa=..., out=y, num_threads=--threads)``.
- Peers, each only when importable (else listed as skipped): NumPy (the textbook formula
  ``e = exp(x - max); e / sum(e)``, written with ``out=`` so it allocates nothing), SciPy
  (``scipy.special.softmax``, which allocates its result), PyTorch (``torch.softmax(x, -1,
  out=y)`` on the CPU, ``torch.set_num_threads(--threads)``) and ONNX Runtime (a one-node
  Softmax model, opset 13, CPUExecutionProvider, ``intra_op_num_threads = --threads``, run
  through an IOBinding that writes into ``y``). ``--log`` times the log-softmax of each.
- A bound: ``_core.read_twice_write_once`` on the best ISA reads x twice and writes y once with
  trivial arithmetic, the least memory traffic of two_pass and online, measured in the same run
  (float32 only).

``--topk K[,K...]`` times the fused top-k instead, on 64 rows of 128256 (an LLM vocabulary)
unless ``--rows`` and ``--sizes`` say otherwise, for each K:
- ``fastsoftmax.softmax_topk(x, K, num_threads=--threads)`` (one pass, results sorted);
- softmax + argpartition: ``fastsoftmax.softmax(x, out=y, num_threads=--threads)``, then
  ``np.argpartition(y, -K)[:, -K:]`` and a ``np.take_along_axis`` gather of the values (the
  selection on one thread, results not sorted);
- PyTorch, when importable: ``torch.topk(torch.softmax(x, -1, out=y), K)`` (sorted),
  ``torch.set_num_threads(--threads)``.
The table gives each one's time and its ratio to softmax_topk's (how many times faster the fused
call is).

Timing method
-------------
- Input: ``rows x size`` arrays of N(0, 4) values (mean 0, variance 4, standard deviation 2), or
  uniform on [-1000, 1000] with ``--dist uniform``.
- Buffers: each size gets enough (input, output) pairs, each starting on a cache line, to hold
  more than 3x the last-level cache (capped at half the available memory), and consecutive calls
  take consecutive pairs, round the cycle, whichever candidate makes them. So every call starts
  with its input and output out of cache (untouched for 3 LLCs' worth of other data), and sizes
  beyond the cache are timed at memory speed rather than from a cache warmed by the last call.
- Calibration: per size and candidate, one warm-up call, then the number of calls per sample is
  raised until a sample lasts at least 5 ms (2 ms with ``--quick``).
- Repeats: each repeat takes one sample of every candidate in turn (round-robin, so a drift of the
  machine's speed touches all candidates alike rather than the last ones). A sample is the mean
  time per call over its calls, with garbage collection off (as ``timeit`` does); the table shows
  the median over repeats and the JSON file keeps every sample.
- Times include each API's per-call Python overhead (a few microseconds), which dominates rows of
  a few thousand elements.
"""

from .cli import configure_parser, main, run

__all__ = ["configure_parser", "main", "run"]
