// GGUF tensors into w4a16: Q4_0 / Q4_1 / Q4_K weights as QuantizedWeight, and ggml's own
// dequantization of the types a converted model carries through (docs/formats.md, "GGUF import").
//
// Mapping (W [N, K] with N = dims[1], K = dims[0]; g = 32 for all three):
//   Q4_0  value = d*(q - 8)           -> sym,        fp16 scales s = d                      bit-exact
//   Q4_1  value = d*q + m             -> float_zero, fp32 s = d,     zf = fp32(8d + m)
//   Q4_K  value = (d*sc)*q - dmin*m   -> float_zero, fp32 s = d*sc,  zf = fp32(8s - dmin*m)
// For Q4_1 and Q4_K, value() = fl((q - 8)*s + zf) equals ggml's fl(q*s + add) bit for bit whenever
// 8s + add is representable in fp32 (both then round the same exact sum once: (q - 8)*s and q*s
// are exact) -- always the case when d and dmin (or d and m) are within a few binades of each
// other, as in real checkpoints. Otherwise |value() - ggml| <= ulp(zf)/2 + ulp(value())/2 +
// ulp(ggml)/2. Q4_0 is exact except for the sign of zero: ggml's -0 (q = 8, d < 0) reads +0.
#pragma once

#include <vector>

#include "io/gguf.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::io {

// True for the types import_gguf_weight() reads: Q4_0, Q4_1, Q4_K.
bool gguf_weight_importable(GgmlType type);

// A 2-D Q4_0 / Q4_1 / Q4_K tensor as a QuantizedWeight [N = dims[1], K = dims[0]], g = 32.
// Throws Error(unsupported) for other types, Error(format) naming the tensor, row and block for a
// non-finite fp16 scale or min, and for a tensor that is not 2-D.
QuantizedWeight import_gguf_weight(const GgufFile& file, const GgufTensor& tensor);

// Every element of an F32, F16, BF16, Q8_0, Q4_0, Q4_1 or Q4_K tensor in fp32, in storage order
// (dims[0] fastest), computed with ggml's formulas and fp32 operations (dequantize_row_* in
// ggml-quants.c). Throws Error(unsupported) naming the type for any other type.
std::vector<float> dequantize_gguf_tensor(const GgufTensor& tensor);

}  // namespace w4a16::io
