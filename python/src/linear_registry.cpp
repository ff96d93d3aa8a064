// The registry behind kernel_table.h: a hash map under a reader-writer lock. Kernel calls hold
// the lock shared for their whole gemm (so the weight they use cannot be released under them),
// registration holds it exclusive; registration happens when a layer is made or reloaded, so
// its wait for calls in flight is rare and short.
//
// fork(): a child has only the forking thread, so a lock that another thread held at the fork
// would stay held forever in the child. pthread_atfork handlers take the lock exclusive before
// the fork (waiting for the kernel calls in flight, as the thread pool's handlers wait for its
// call) and release it after, in parent and child.
#include "linear_registry.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace w4a16::python {

namespace {

struct Entry {
  const PackedWeight* weight;
  GemmOptions options;
};

std::shared_mutex& registry_lock() {
  static std::shared_mutex lock;
  static std::once_flag fork_handlers;
  std::call_once(fork_handlers,
                 [] { ::pthread_atfork([] { lock.lock(); }, [] { lock.unlock(); }, [] { lock.unlock(); }); });
  return lock;
}

std::unordered_map<int64_t, Entry>& registry() {
  static std::unordered_map<int64_t, Entry> entries;
  return entries;
}

void copy_message(const std::string& text, char* msg, size_t msg_size) {
  if (msg == nullptr || msg_size == 0) return;
  const size_t length = std::min(text.size(), msg_size - 1);
  std::memcpy(msg, text.data(), length);
  msg[length] = '\0';
}

int table_shape(int64_t handle, int64_t* n, int64_t* k) {
  const std::shared_lock lock(registry_lock());
  const auto it = registry().find(handle);
  if (it == registry().end()) return 0;
  *n = it->second.weight->n();
  *k = it->second.weight->k();
  return 1;
}

int table_linear(int64_t handle, const void* x, int x_bf16, int64_t m, int64_t k, void* y, int threads,
                 void (*run)(void*, int, void (*)(void*, int), void*), void* run_ctx, char* msg, size_t msg_size) {
  try {
    const std::shared_lock lock(registry_lock());
    const auto it = registry().find(handle);
    if (it == registry().end()) {
      copy_message("w4a16::linear: no weight has handle " + std::to_string(handle) + " (its Linear was deleted?)", msg,
                   msg_size);
      return 1;
    }
    const PackedWeight& w = *it->second.weight;
    const DType act = x_bf16 != 0 ? DType::bf16 : DType::f16;
    GemmOptions options = it->second.options;
    if (run != nullptr) {  // the planner chooses up to the runner's threads, a Linear's threads= caps them
      const int most = std::clamp(threads, 1, kMaxThreads);
      options.runner = ParallelRunner{run, run_ctx, most};
      if (options.threads > 0) options.threads = std::min(options.threads, most);
    }
    gemm(MatrixRef{x, act, m, k}, w, MutableMatrixRef{y, act, m, w.n()}, options);
    return 0;
  } catch (const std::exception& e) {  // w4a16::Error (a bad shape, say) or std::bad_alloc
    copy_message(std::string("w4a16::linear: ") + e.what(), msg, msg_size);
    return 1;
  }
}

constexpr w4a16_kernel_table kTable{W4A16_KERNEL_TABLE_VERSION, &table_shape, &table_linear};

}  // namespace

void register_linear(int64_t handle, const PackedWeight* w, const GemmOptions& options) {
  const std::unique_lock lock(registry_lock());
  registry().insert_or_assign(handle, Entry{w, options});
}

void unregister_linear(int64_t handle) {
  const std::unique_lock lock(registry_lock());
  registry().erase(handle);
}

const w4a16_kernel_table* kernel_table() { return &kTable; }

}  // namespace w4a16::python
