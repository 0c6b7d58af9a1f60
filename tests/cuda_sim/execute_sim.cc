// The CUDA executor compiled by the host compiler against the simulator (include/cuda_runtime_api.h).
#include "cuda/execute.cu"
