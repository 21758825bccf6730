#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace deepops::bench {

// The element types and reductions of nccl-tests' -d and -o.
enum class DataType { f32, f16, bf16, i32 };
enum class RedOp { sum, prod, min, max };

size_t type_size(DataType t);
const char* type_name(DataType t);  // as nccl-tests prints it: float, half, bfloat16, int32
const char* op_name(RedOp op);      // sum, prod, min, max
// Accepts nccl-tests' names and the usual aliases (float32, fp16, bf16, int).
// Throws std::invalid_argument naming the choices.
DataType parse_type(std::string_view name);
RedOp parse_op(std::string_view name);

// dst[i] = op(dst[i], src[i]) for `count` elements of type `t`, computed in
// float for the 16-bit types and rounded back to nearest-even.
void reduce_into(void* dst, const void* src, size_t count, DataType t, RedOp op);
// out[i] = op(a[i], b[i]); `out` may be `a`.
void reduce(void* out, const void* a, const void* b, size_t count, DataType t, RedOp op);

// The 16-bit formats, for filling and checking buffers.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t b);

// Element `index` of `rank`'s input, and what the reduction over `nranks`
// ranks must give there. The values are small integers chosen so that every
// result is exact in every type, whatever order the ranks are combined in:
// a single wrong element is a real error, never rounding.
float input_value(RedOp op, int rank, size_t index);
float expected_value(RedOp op, int nranks, size_t index);

// Fills `count` elements of a rank's input; `first` is the index of
// buffer[0] in the whole vector.
void fill_input(void* buffer, size_t count, DataType t, RedOp op, int rank, size_t first = 0);
// Counts the elements of a reduced buffer that differ from expected_value;
// `first` is the index of buffer[0] in the whole vector.
size_t count_wrong(const void* buffer, size_t count, DataType t, RedOp op, int nranks,
                   size_t first = 0);

}  // namespace deepops::bench
