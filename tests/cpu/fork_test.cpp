// gemm() across fork() (fault 3 of the review at commit e185524): a child forked after a gemm
// with threads != 1 hung forever in its next gemm, waiting for pool workers that do not exist in
// the child. Python's multiprocessing forks by default on Linux, so the child must work, at full
// thread count, and must exit without joining absent threads. Each child runs under alarm(): a
// hang kills it with SIGALRM and fails the test instead of blocking the suite.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "cpu/kernel_check.hpp"

namespace w4a16::test {
namespace {

constexpr unsigned kChildSeconds = 60;

// Forks; the child runs `body` (which returns an exit code) and leaves through exit(), so static
// destructors and atexit handlers run there as in a real program — or through _exit() when
// another thread of the parent held heap memory at the fork (its stack is gone in the child, so a
// leak checker would rightly report that memory, which belongs to the test, not the library).
// Returns the child's status.
template <typename F>
int run_in_child(F&& body, bool exit_normally = true) {
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    ::alarm(kChildSeconds);
    const int code = body();
    if (exit_normally) std::exit(code);
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
  }
  return status;
}

void expect_exit_zero(int status, const char* what) {
  ASSERT_TRUE(WIFEXITED(status)) << what << ": child did not exit normally"
                                 << (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (hung: killed by alarm)"
                                                                                        : "")
                                 << ", status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << what << ": 1 = wrong result, 2 = an exception";
}

struct Case {
  PreparedInput p;
  GemmOptions options;
  HostMatrix expected;
};

Case make_case(Partition partition) {
  KernelInput in;
  in.m = 3, in.k = 2048, in.n = 260, in.g = 128, in.zero = ZeroMode::asym, in.act = DType::bf16;
  Case c{prepare(in, 11), {}, HostMatrix(in.act, in.m, in.n)};
  c.options.threads = 2;
  c.options.partition = partition;
  gemm(c.p.x.ref(), c.p.packed, c.expected.mut(), c.options);  // the pool now has live workers
  return c;
}

int gemm_matches(const Case& c) {
  try {
    for (int i = 0; i < 3; ++i) {
      HostMatrix y(c.expected.dtype, c.expected.rows, c.expected.cols);
      y.poison();
      gemm(c.p.x.ref(), c.p.packed, y.mut(), c.options);
      if (y.bits != c.expected.bits) return 1;
    }
    return 0;
  } catch (...) {
    return 2;
  }
}

TEST(ForkSafety, ChildForkedAfterParallelGemmRunsGemmAndExits) {
  for (Partition partition : {Partition::data_parallel, Partition::split_k}) {
    const Case c = make_case(partition);
    expect_exit_zero(run_in_child([&] { return gemm_matches(c); }), "child");
    // A grandchild forked from a child that rebuilt its pool.
    expect_exit_zero(run_in_child([&] {
                       if (gemm_matches(c) != 0) return 1;
                       const int status = run_in_child([&] { return gemm_matches(c); });
                       return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
                     }),
                     "grandchild");
    EXPECT_EQ(gemm_matches(c), 0) << "the parent's pool after the forks";
  }
}

// fork() while another thread runs parallel gemms: the fork waits for the call in flight, so
// the child never inherits a half-run job, and both processes keep computing correct results.
TEST(ForkSafety, ForkWhileAnotherThreadRunsGemm) {
#if defined(__SANITIZE_ADDRESS__)
  // GCC 12's ASan runtime does not hold its allocator's locks across fork(): a child forked while
  // another thread is inside that allocator waits on its lock forever (in CI the child's new pool
  // worker hung in ASan's own thread-start calloc, most runs). The library's locks are held across
  // fork by their handlers; this test runs in the normal and the ThreadSanitizer builds.
  GTEST_SKIP() << "fork() while another thread runs is not supported by this ASan runtime's allocator";
#endif
  const Case c = make_case(Partition::split_k);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  // The busy thread allocates nothing in its loop (y once; gemm allocates nothing after its first
  // call for a shape: GemmContracts): GCC 12's ASan runtime does not hold its allocator's locks
  // across fork(), so a child forked while another thread is inside that allocator waits on its
  // lock forever (seen in CI: the child's new pool worker stuck in ASan's thread-start calloc).
  // glibc's malloc has fork handlers; the library's own locks are held across fork by theirs.
  std::thread busy([&] {
    HostMatrix y(c.expected.dtype, c.expected.rows, c.expected.cols);
    while (!stop.load()) {
      y.poison();
      try {
        gemm(c.p.x.ref(), c.p.packed, y.mut(), c.options);
        wrong += y.bits != c.expected.bits;
      } catch (...) {
        wrong += 1;
      }
    }
  });
  for (int i = 0; i < 8; ++i) {
    expect_exit_zero(run_in_child([&] { return gemm_matches(c); }, /*exit_normally=*/false), "child");
  }
  stop = true;
  busy.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace w4a16::test
