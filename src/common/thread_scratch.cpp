// The registry behind thread_scratch(): see thread_scratch.hpp for why it exists.
#include "common/thread_scratch.hpp"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace w4a16::detail {

namespace {

struct ThreadObjects {
  std::vector<std::pair<void*, void (*)(void*)>> objects;
};

// Never destroyed: the lists must stay reachable until the process ends (and in forked children).
struct Registry {
  std::mutex mutex;
  std::vector<ThreadObjects*> threads;
  pthread_key_t key{};
};

void free_thread_objects(void* p);

Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;
    pthread_key_create(&created->key, free_thread_objects);
    pthread_atfork([] { registry().mutex.lock(); }, [] { registry().mutex.unlock(); },
                   [] { registry().mutex.unlock(); });
    return created;
  }();
  return *r;
}

// At a thread's exit: free its objects and drop its list from the registry.
void free_thread_objects(void* p) {
  auto* list = static_cast<ThreadObjects*>(p);
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.threads.erase(std::remove(r.threads.begin(), r.threads.end(), list), r.threads.end());
  }
  for (auto it = list->objects.rbegin(); it != list->objects.rend(); ++it) it->second(it->first);
  delete list;
}

}  // namespace

void adopt_thread_object(void* object, void (*destroy)(void*)) {
  Registry& r = registry();
  auto* list = static_cast<ThreadObjects*>(pthread_getspecific(r.key));
  if (list == nullptr) {
    list = new ThreadObjects;
    {
      std::lock_guard lock(r.mutex);
      r.threads.push_back(list);
    }
    pthread_setspecific(r.key, list);
  }
  list->objects.emplace_back(object, destroy);
}

}  // namespace w4a16::detail
