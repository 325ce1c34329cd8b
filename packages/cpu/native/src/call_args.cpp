#include "call_args.h"

#include <cmath>

namespace fastattn {

int64_t intField(Napi::Env env, const Napi::Object& o, const char* name, int64_t min, int64_t max) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwInvalid(env, name, "expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || std::floor(d) != d) {
    throwInvalid(env, name, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return int64_t(d);
}

namespace {

/** A window side: a non-negative integer, or Infinity (unbounded). */
int64_t bandField(Napi::Env env, const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwInvalid(env, name, "expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || d < 0) throwInvalid(env, name, "expected a non-negative integer or Infinity");
  if (d >= double(kInfiniteBand)) return kInfiniteBand;
  return int64_t(d);
}

bool boolField(const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}


}  // namespace

void throwInvalid(Napi::Env env, const std::string& field, const std::string& message) {
  throw codedError(env, "INVALID_INPUT", field + ": " + message, field);
}

const void* typedArrayData(Napi::Env env, const Napi::Value& value, const char* field, size_t* bytes) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!value.IsTypedArray() || napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    throwInvalid(env, field, "expected a typed array");
  }
  *bytes = value.As<Napi::TypedArray>().ByteLength();
  return data;
}

AttnParams readProblemShape(Napi::Env env, const Napi::Object& a) {
  AttnParams p;
  p.dtype = DType(intField(env, a, "dtype", 0, 2));
  p.batch = intField(env, a, "batch", 1, kMaxDim);
  p.seqQ = intField(env, a, "seqQ", 1, kMaxDim);
  p.seqK = intField(env, a, "seqK", 1, (int64_t(1) << 31) - 1);  // key indices are int32 in the kernels
  p.headsQ = intField(env, a, "headsQ", 1, kMaxDim);
  p.headsKV = intField(env, a, "headsKV", 1, kMaxDim);
  p.headDim = intField(env, a, "headDim", 1, kMaxDecodeHeadDim);
  if (p.headsQ % p.headsKV != 0) throwInvalid(env, "headsKV", "must divide headsQ");
  const double qLen = double(p.batch) * double(p.seqQ) * double(p.headsQ) * double(p.headDim);
  double kvLen = double(p.batch) * double(p.seqK) * double(p.headsKV) * double(p.headDim);
  // A paged cache (validated in TypeScript; checked again here before any pointer is formed).
  if (!a.Get("blockSize").IsUndefined()) {
    p.blockSize = intField(env, a, "blockSize", 1, int64_t(1) << 16);
    if ((p.blockSize & (p.blockSize - 1)) != 0) throwInvalid(env, "pagedKV.blockSize", "expected a power of two");
    p.blocksPerSeq = intField(env, a, "blocksPerSeq", 1, kMaxDim);
    p.numBlocks = intField(env, a, "numBlocks", 1, kMaxDim);
    if (double(p.blocksPerSeq) * double(p.blockSize) < double(p.seqK)) {
      throwInvalid(env, "seqK", "more keys than blocksPerSeq x blockSize");
    }
    kvLen = double(p.numBlocks) * double(p.blockSize) * double(p.headsKV) * double(p.headDim);
  }
  if (qLen > double(kMaxDim) || kvLen > double(kMaxDim)) throwInvalid(env, "q", "larger than 2^32 elements");
  const Napi::Value scale = a.Get("scale");
  if (!scale.IsNumber() || !std::isfinite(scale.As<Napi::Number>().DoubleValue())) {
    throwInvalid(env, "scale", "expected a finite number");
  }
  p.scale = float(scale.As<Napi::Number>().DoubleValue());
  p.left = bandField(env, a, "left");
  p.right = bandField(env, a, "right");

  const napi_typedarray_type storage = p.dtype == DType::F32 ? napi_float32_array : napi_uint16_array;
  p.q = typedField<const void>(env, a, "q", storage, size_t(qLen));
  p.k = typedField<const void>(env, a, "k", storage, size_t(kvLen));
  p.v = typedField<const void>(env, a, "v", storage, size_t(kvLen));
  return p;
}

AttnParams readProblem(Napi::Env env, const Napi::Object& a) {
  AttnParams p = readProblemShape(env, a);
  p.seqLensK = typedField<const int32_t>(env, a, "seqLensK", napi_int32_array, size_t(p.batch));
  for (int64_t b = 0; b < p.batch; ++b) {
    if (p.seqLensK[b] < 0 || p.seqLensK[b] > p.seqK) {
      throwInvalid(env, "seqLensK[" + std::to_string(b) + "]", "outside [0, seqK]");
    }
  }
  if (p.blockSize != 0) {
    p.blockTable = typedField<const int32_t>(env, a, "blockTable", napi_int32_array, size_t(p.batch * p.blocksPerSeq));
    for (int64_t b = 0; b < p.batch; ++b) {
      const int64_t used = (p.seqLensK[b] + p.blockSize - 1) / p.blockSize;
      for (int64_t i = 0; i < used; ++i) {
        const int32_t block = p.blockTable[b * p.blocksPerSeq + i];
        if (block < 0 || block >= p.numBlocks) {
          throwInvalid(env, "pagedKV.blockTable[" + std::to_string(b * p.blocksPerSeq + i) + "]", "outside [0, numBlocks)");
        }
      }
    }
  }
  return p;
}

void readPlanShape(Napi::Env env, const Napi::Object& a, AttnParams& p) {
  p.blockQ = intField(env, a, "blockQ", 1, 1 << 20);
  p.blockK = intField(env, a, "blockK", 1, 1 << 20);
  p.stack = intField(env, a, "stack", 1, p.headsQ);
  p.splitKV = intField(env, a, "splitKV", 1, 1 << 12);
  p.allHeads = boolField(a, "allHeads");
  if (p.stack != 1 && p.stack != p.headsQ / p.headsKV) throwInvalid(env, "stack", "expected 1 or headsQ / headsKV");
  p.decode = boolField(a, "decode");
  if (p.decode && !(p.allHeads && p.stack == p.headsQ / p.headsKV)) {
    throwInvalid(env, "decode", "the decode kernel needs allHeads and stack = headsQ / headsKV");
  }
  p.qTiles = (p.seqQ + p.blockQ - 1) / p.blockQ;
  p.kTiles = (p.seqK + p.blockK - 1) / p.blockK;
}

void readPlan(Napi::Env env, const Napi::Object& a, AttnParams& p) {
  readPlanShape(env, a, p);
  const size_t tileRows = size_t(p.batch * p.qTiles);
  p.kinds = typedField<const uint8_t>(env, a, "kinds", napi_uint8_array, tileRows * size_t(p.kTiles));
  p.kStart = typedField<const int32_t>(env, a, "kStart", napi_int32_array, tileRows);
  p.kEnd = typedField<const int32_t>(env, a, "kEnd", napi_int32_array, tileRows);
  for (size_t t = 0; t < tileRows; ++t) {
    if (p.kStart[t] < 0 || p.kEnd[t] > p.kTiles || p.kStart[t] > p.kEnd[t]) {
      throwInvalid(env, "kStart", "tile range outside [0, kTiles]");
    }
  }
  for (size_t t = 0; t < tileRows * size_t(p.kTiles); ++t) {
    if (p.kinds[t] > kTilePartial) throwInvalid(env, "kinds", "unknown tile kind");
  }
}

}  // namespace fastattn
