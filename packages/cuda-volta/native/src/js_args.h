// Reading native arguments from JavaScript values.
#pragma once
#include <napi.h>

#include "driver.h"

namespace fa {

// The first byte of a typed array's elements, whatever backs it. TypedArray::ArrayBuffer() goes
// through napi_get_arraybuffer_info, which refuses a SharedArrayBuffer ("Invalid argument");
// napi_get_typedarray_info hands out the data pointer for both kinds of buffer.
char* viewData(const Napi::TypedArray& a);

// A device address: a BigInt (what DeviceTensor.ptr is) or a Number; anything else is 0.
CUdeviceptr ptrArg(const Napi::Value& v);

}  // namespace fa
