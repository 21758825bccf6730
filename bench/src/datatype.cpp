#include "datatype.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace deepops::bench {
namespace {

float combine(float a, float b, RedOp op) {
  switch (op) {
    case RedOp::sum:
      return a + b;
    case RedOp::prod:
      return a * b;
    case RedOp::min:
      return std::min(a, b);
    case RedOp::max:
      return std::max(a, b);
  }
  return a;
}

// out[i] = f(a[i], b[i]); out may be a. One loop per reduction, so that the
// compiler vectorises each.
template <typename T, typename F>
void each(T* out, const T* a, const T* b, size_t count, F f) {
  for (size_t i = 0; i < count; ++i) out[i] = f(a[i], b[i]);
}

template <typename T>
void reduce_typed(T* out, const T* a, const T* b, size_t count, RedOp op) {
  switch (op) {
    case RedOp::sum:
      return each(out, a, b, count, [](T x, T y) { return static_cast<T>(x + y); });
    case RedOp::prod:
      return each(out, a, b, count, [](T x, T y) { return static_cast<T>(x * y); });
    case RedOp::min:
      return each(out, a, b, count, [](T x, T y) { return std::min(x, y); });
    case RedOp::max:
      return each(out, a, b, count, [](T x, T y) { return std::max(x, y); });
  }
}

template <typename Load, typename Store>
void reduce_16(void* out, const void* a, const void* b, size_t count, RedOp op, Load load,
               Store store) {
  auto* o = static_cast<uint16_t*>(out);
  const auto* x = static_cast<const uint16_t*>(a);
  const auto* y = static_cast<const uint16_t*>(b);
  for (size_t i = 0; i < count; ++i) o[i] = store(combine(load(x[i]), load(y[i]), op));
}

float load_element(const void* buffer, size_t i, DataType t) {
  switch (t) {
    case DataType::f32:
      return static_cast<const float*>(buffer)[i];
    case DataType::f16:
      return half_to_float(static_cast<const uint16_t*>(buffer)[i]);
    case DataType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(buffer)[i]);
    case DataType::i32:
      return static_cast<float>(static_cast<const int32_t*>(buffer)[i]);
  }
  return 0;
}

void store_element(void* buffer, size_t i, DataType t, float v) {
  switch (t) {
    case DataType::f32:
      static_cast<float*>(buffer)[i] = v;
      break;
    case DataType::f16:
      static_cast<uint16_t*>(buffer)[i] = float_to_half(v);
      break;
    case DataType::bf16:
      static_cast<uint16_t*>(buffer)[i] = float_to_bf16(v);
      break;
    case DataType::i32:
      static_cast<int32_t*>(buffer)[i] = static_cast<int32_t>(v);
      break;
  }
}

}  // namespace

size_t type_size(DataType t) { return t == DataType::f32 || t == DataType::i32 ? 4 : 2; }

const char* type_name(DataType t) {
  switch (t) {
    case DataType::f32:
      return "float";
    case DataType::f16:
      return "half";
    case DataType::bf16:
      return "bfloat16";
    case DataType::i32:
      return "int32";
  }
  return "?";
}

const char* op_name(RedOp op) {
  switch (op) {
    case RedOp::sum:
      return "sum";
    case RedOp::prod:
      return "prod";
    case RedOp::min:
      return "min";
    case RedOp::max:
      return "max";
  }
  return "?";
}

DataType parse_type(std::string_view name) {
  if (name == "float" || name == "float32" || name == "fp32" || name == "f32") return DataType::f32;
  if (name == "half" || name == "float16" || name == "fp16" || name == "f16") return DataType::f16;
  if (name == "bfloat16" || name == "bf16") return DataType::bf16;
  if (name == "int32" || name == "int" || name == "i32") return DataType::i32;
  throw std::invalid_argument("unknown datatype '" + std::string(name) +
                              "' (float, half, bfloat16 or int32)");
}

RedOp parse_op(std::string_view name) {
  if (name == "sum") return RedOp::sum;
  if (name == "prod") return RedOp::prod;
  if (name == "min") return RedOp::min;
  if (name == "max") return RedOp::max;
  throw std::invalid_argument("unknown reduction '" + std::string(name) +
                              "' (sum, prod, min or max)");
}

// IEEE binary16 by hand: compilers disagree on _Float16 (clang 14 has none
// on x86-64).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // below 2^-14: a subnormal half, or zero
    float a;
    std::memcpy(&a, &abs, sizeof(a));
    auto m = static_cast<uint32_t>(std::nearbyint(a * 16777216.0f));  // units of 2^-24, to even
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t h = abs - 0x38000000u;  // exponent bias 127 -> 15
  h += 0xfffu + ((h >> 13) & 1u);  // round the 13 dropped bits to nearest even
  return static_cast<uint16_t>(sign | (h >> 13));
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  uint32_t bits =
      exp == 31 ? sign | 0x7f800000u | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN stays a quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);                  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

void reduce(void* out, const void* a, const void* b, size_t count, DataType t, RedOp op) {
  switch (t) {
    case DataType::f32:
      return reduce_typed(static_cast<float*>(out), static_cast<const float*>(a),
                          static_cast<const float*>(b), count, op);
    case DataType::i32:
      if (op == RedOp::sum || op == RedOp::prod) {  // as NCCL does: sums and products wrap
        return reduce_typed(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(a),
                            static_cast<const uint32_t*>(b), count, op);
      }
      return reduce_typed(static_cast<int32_t*>(out), static_cast<const int32_t*>(a),
                          static_cast<const int32_t*>(b), count, op);
    case DataType::f16:
      return reduce_16(out, a, b, count, op, half_to_float, float_to_half);
    case DataType::bf16:
      return reduce_16(out, a, b, count, op, bf16_to_float, float_to_bf16);
  }
}

void reduce_into(void* dst, const void* src, size_t count, DataType t, RedOp op) {
  reduce(dst, dst, src, count, t, op);
}

float input_value(RedOp op, int rank, size_t index) {
  const auto r = static_cast<size_t>(rank);
  switch (op) {
    case RedOp::sum:  // |sum| <= 2n: exact in bfloat16 up to 128 ranks, half up to 1024
      return static_cast<float>(static_cast<int>((index + 3 * r) % 5) - 2);
    case RedOp::prod:  // +-1: the product is exact at any scale
      return (index + r) % 3 == 0 ? -1.0f : 1.0f;
    case RedOp::min:
    case RedOp::max:
      return static_cast<float>(static_cast<int>((index * 5 + r * 3) % 17) - 8);
  }
  return 0;
}

float expected_value(RedOp op, int nranks, size_t index) {
  float acc = input_value(op, 0, index);
  for (int r = 1; r < nranks; ++r) acc = combine(acc, input_value(op, r, index), op);
  return acc;
}

void fill_input(void* buffer, size_t count, DataType t, RedOp op, int rank, size_t first) {
  for (size_t i = 0; i < count; ++i) {
    store_element(buffer, i, t, input_value(op, rank, first + i));
  }
}

size_t count_wrong(const void* buffer, size_t count, DataType t, RedOp op, int nranks,
                   size_t first) {
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    if (load_element(buffer, i, t) != expected_value(op, nranks, first + i)) ++wrong;
  }
  return wrong;
}

}  // namespace deepops::bench
