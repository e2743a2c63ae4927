/*
 * malloc_trim(0) for Node (N-API): hands the free pages glibc keeps inside its heaps back to the
 * kernel. Node has no way to ask for it. See src/memory-trim.ts for when the gateway calls it and
 * docs/decisions.md ("Start-up memory") for why.
 *
 * trim() calls it on the calling thread and returns true when memory was released, false when none
 * was. trimAsync() calls it on a thread of libuv's pool, so the event loop does not wait for the walk
 * over malloc's free lists, and returns a promise of the same. Where the C library is not glibc
 * (musl, macOS) there is nothing to call: both give undefined.
 */
#include <node_api.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static int do_trim(void) {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0 ? 1 : 0;
#else
  return -1;
#endif
}

static napi_value result_of(napi_env env, int released) {
  napi_value result;
  if (released < 0) napi_get_undefined(env, &result);
  else napi_get_boolean(env, released != 0, &result);
  return result;
}

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  return result_of(env, do_trim());
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int released;
} TrimJob;

static void TrimExecute(napi_env env, void* data) {
  (void)env;
  ((TrimJob*)data)->released = do_trim();
}

static void TrimComplete(napi_env env, napi_status status, void* data) {
  TrimJob* job = (TrimJob*)data;
  if (status == napi_ok) {
    napi_resolve_deferred(env, job->deferred, result_of(env, job->released));
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "malloc_trim did not run", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value TrimAsync(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value promise, name;
  TrimJob* job = (TrimJob*)calloc(1, sizeof(TrimJob));
  if (job == NULL) {
    napi_throw_error(env, NULL, "malloc_trim: out of memory");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "microgate:malloc_trim", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, TrimExecute, TrimComplete, job, &job->work) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "malloc_trim: could not queue the work");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    free(job);
    napi_throw_error(env, NULL, "malloc_trim: could not queue the work");
    return NULL;
  }
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "trimAsync", NAPI_AUTO_LENGTH, TrimAsync, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trimAsync", fn) != napi_ok) return NULL;
  return exports;
}
