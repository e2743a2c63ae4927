/*
 * malloc_trim(0) for Node (N-API): hands the free pages glibc keeps inside its heaps back to the
 * kernel. Node has no way to ask for it. See src/memory-trim.ts for when the gateway calls it and
 * docs/decisions.md ("Start-up memory") for why.
 *
 * trim() returns true when memory was released, false when none was, and undefined where the C
 * library is not glibc (musl, macOS): there is nothing to call.
 */
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__GLIBC__)
  napi_get_boolean(env, malloc_trim(0) != 0, &result);
#else
  napi_get_undefined(env, &result);
#endif
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
