// Per-thread scratch objects (workspaces, kernel panels) that stay reachable from a global list.
//
// Why not a plain `thread_local T`: after fork() the child has only the forking thread, yet the
// memory of every other thread's thread_local objects (and glibc's list of their destructors) is
// copied into it, owned by no one and referenced only from those threads' vanished TLS. Nothing
// can free it, and a leak checker rightly reports it at the child's exit. Here each object is
// allocated on the heap and listed in a process-wide registry (never destroyed), so it stays
// reachable in every process; a thread's objects are freed at its exit through a pthread key
// destructor, which registers nothing per object. The registry's lock is held across fork().
#pragma once

namespace w4a16 {

namespace detail {
// Takes ownership of `object` (freed by `destroy` when the calling thread exits).
void adopt_thread_object(void* object, void (*destroy)(void*));
}  // namespace detail

// This thread's T for `Tag` (a type unique to the caller, e.g. declared in its ISA namespace, so
// that code compiled with different ISA flags never shares an instantiation), default-constructed
// on first use.
template <typename T, typename Tag>
T& thread_scratch() {
  thread_local T* object = nullptr;  // a raw pointer: no thread_local destructor to register
  if (object == nullptr) {
    object = new T();
    detail::adopt_thread_object(object, [](void* p) { delete static_cast<T*>(p); });
  }
  return *object;
}

}  // namespace w4a16
