#include "core/cpu_count.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/log.h"

namespace specula {
namespace {

namespace fs = std::filesystem;

TEST(ParseCpuList, RangesAndSingles) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5"), (std::vector<int>{5}));
  EXPECT_EQ(parse_cpu_list("2,0-2"), (std::vector<int>{0, 1, 2}));  // sorted, once each
  EXPECT_TRUE(parse_cpu_list("").empty());
  EXPECT_TRUE(parse_cpu_list("\n").empty());
}

TEST(ParseCpuList, MalformedGivesNothing) {
  for (const char* text : {"3-1", "a", "5x", "1-", "-2", "0-3,z", "1-2-3"}) {
    EXPECT_TRUE(parse_cpu_list(text).empty()) << text;
  }
}

// A directory that stands for / : sysfs topology and cgroup files.
class FakeRoot {
 public:
  FakeRoot()
      : root_(fs::temp_directory_path() /
              ("specula-cpu-count-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~FakeRoot() { fs::remove_all(root_); }

  void write(const std::string& path, const std::string& text) const {
    const fs::path file = root_ / path;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  // CPU `cpu` shares its core with `siblings` (a CPU list).
  void siblings(int cpu, const std::string& list, const char* file = "thread_siblings_list") const {
    write("sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/" + file, list + "\n");
  }
  std::string path() const { return root_.string(); }

 private:
  fs::path root_;
};

std::vector<int> range(int first, int last) {
  std::vector<int> cpus;
  for (int c = first; c <= last; ++c) cpus.push_back(c);
  return cpus;
}

// 8 CPUs, two per core: CPU c and c + 4 are siblings (Linux's usual
// numbering on SMT machines).
void write_smt_pairs(const FakeRoot& root) {
  for (int c = 0; c < 4; ++c) {
    const std::string pair = std::to_string(c) + "," + std::to_string(c + 4);
    root.siblings(c, pair);
    root.siblings(c + 4, pair);
  }
}

TEST(CpuCount, OneThreadPerPhysicalCore) {
  FakeRoot root;
  write_smt_pairs(root);
  const ThreadCount count = choose_thread_count(read_cpu_facts(range(0, 7), root.path()));
  EXPECT_EQ(count.threads, 4);
  EXPECT_EQ(count.why, "4 physical cores of the 8 CPUs this process may use");
}

TEST(CpuCount, OnlyTheAffinityMaskCounts) {
  FakeRoot root;
  write_smt_pairs(root);
  // Two siblings of one core (taskset -c 0,4), then two cores.
  EXPECT_EQ(choose_thread_count(read_cpu_facts({0, 4}, root.path())).threads, 1);
  EXPECT_EQ(choose_thread_count(read_cpu_facts({0, 1}, root.path())).threads, 2);
}

TEST(CpuCount, CoreCpusListIsPreferred) {
  FakeRoot root;
  // thread_siblings_list says every CPU is alone; core_cpus_list (newer
  // kernels) pairs 0 and 1.
  for (int c = 0; c < 2; ++c) {
    root.siblings(c, std::to_string(c));
    root.siblings(c, "0-1", "core_cpus_list");
  }
  EXPECT_EQ(choose_thread_count(read_cpu_facts({0, 1}, root.path())).threads, 1);
}

TEST(CpuCount, WithoutTopologyEveryAllowedCpuIsACore) {
  FakeRoot root;
  const CpuFacts facts = read_cpu_facts({0, 2, 5}, root.path());
  EXPECT_EQ(facts.quota_cpus, 0);
  EXPECT_TRUE(facts.performance.empty());
  EXPECT_EQ(choose_thread_count(facts).threads, 3);
}

// A hybrid Intel CPU: 4 performance cores with SMT (CPUs 0-7, pairs 2k,
// 2k + 1) and 8 efficiency cores (8-15).
void write_hybrid(const FakeRoot& root) {
  for (int c = 0; c < 8; c += 2) {
    const std::string pair = std::to_string(c) + "-" + std::to_string(c + 1);
    root.siblings(c, pair);
    root.siblings(c + 1, pair);
  }
  for (int c = 8; c < 16; ++c) root.siblings(c, std::to_string(c));
  root.write("sys/devices/cpu_core/cpus", "0-7\n");
  root.write("sys/devices/cpu_atom/cpus", "8-15\n");
}

TEST(CpuCount, HybridCpusRunOnThePerformanceCores) {
  FakeRoot root;
  write_hybrid(root);
  const ThreadCount all = choose_thread_count(read_cpu_facts(range(0, 15), root.path()));
  EXPECT_EQ(all.threads, 4);
  EXPECT_EQ(all.why, "4 performance physical cores of the 16 CPUs this process may use");
  // Confined to efficiency cores: those are what there is.
  EXPECT_EQ(choose_thread_count(read_cpu_facts(range(8, 11), root.path())).threads, 4);
  // One performance CPU allowed beside efficiency ones: the performance core alone.
  EXPECT_EQ(choose_thread_count(read_cpu_facts({1, 8, 9}, root.path())).threads, 1);
}

TEST(CpuCount, Cgroup2QuotaCapsTheCountRoundedUp) {
  FakeRoot root;
  write_smt_pairs(root);
  root.write("proc/self/cgroup", "0::/app/worker\n");
  root.write("sys/fs/cgroup/app/cpu.max", "250000 100000\n");  // 2.5 CPUs
  root.write("sys/fs/cgroup/app/worker/cpu.max", "max 100000\n");
  const CpuFacts facts = read_cpu_facts(range(0, 7), root.path());
  EXPECT_DOUBLE_EQ(facts.quota_cpus, 2.5);
  const ThreadCount count = choose_thread_count(facts);
  EXPECT_EQ(count.threads, 3);
  EXPECT_EQ(count.why,
            "4 physical cores of the 8 CPUs this process may use, capped by its cgroup's CPU "
            "quota of 2.5");
}

TEST(CpuCount, TheLeastQuotaOnTheWayToTheRootHolds) {
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/a/b\n");
  root.write("sys/fs/cgroup/cpu.max", "400000 100000\n");
  root.write("sys/fs/cgroup/a/b/cpu.max", "50000 100000\n");  // half a CPU
  const CpuFacts facts = read_cpu_facts(range(0, 7), root.path());
  EXPECT_DOUBLE_EQ(facts.quota_cpus, 0.5);
  EXPECT_EQ(choose_thread_count(facts).threads, 1);
}

TEST(CpuCount, Cgroup1QuotaAtTheContainersRoot) {
  FakeRoot root;
  // Inside a container the cgroup path names the host's hierarchy; the
  // container sees its own group at the mount's root.
  root.write("proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n");
  root.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n");
  root.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  const CpuFacts facts = read_cpu_facts(range(0, 7), root.path());
  EXPECT_DOUBLE_EQ(facts.quota_cpus, 2.0);
  EXPECT_EQ(choose_thread_count(facts).threads, 2);
}

TEST(CpuCount, NoQuotaOrAMalformedOneLeavesTheCores) {
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/\n3:cpu:/\n");
  root.write("sys/fs/cgroup/cpu.max", "max 100000\n");
  root.write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  root.write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(read_cpu_facts(range(0, 5), root.path()).quota_cpus, 0);
  root.write("sys/fs/cgroup/cpu.max", "lots\n");
  EXPECT_EQ(read_cpu_facts(range(0, 5), root.path()).quota_cpus, 0);
  EXPECT_EQ(choose_thread_count(read_cpu_facts(range(0, 5), root.path())).threads, 6);
}

TEST(CpuCount, NoCpusGivesOneThread) {
  EXPECT_EQ(choose_thread_count(CpuFacts{}).threads, 1);
}

// A thread pinned to one CPU sees that CPU alone (what taskset or a
// cpuset does to the whole process).
TEST(CpuCount, AllowedCpusFollowTheAffinityMask) {
  const std::vector<int> all = allowed_cpus();
  ASSERT_FALSE(all.empty());
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  const int last = all.back();
  std::vector<int> seen;
  std::thread pinned([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    if (sched_setaffinity(0, sizeof set, &set) == 0) seen = allowed_cpus();
  });
  pinned.join();
  if (seen.empty()) GTEST_SKIP() << "this system refused to pin a thread";
  EXPECT_EQ(seen, std::vector<int>{last});
}

// This machine: at least one thread, never more than its logical CPUs.
TEST(CpuCount, DefaultIsBetweenOneAndTheLogicalCpus) {
  const int threads = default_thread_count();
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

// -t N runs N threads whatever the machine has; -t 0 the default.
TEST(CpuCount, ResolveKeepsAnExplicitCountAndDefaultsZero) {
  EXPECT_EQ(resolve_thread_count(5), 5);
  EXPECT_EQ(resolve_thread_count(1), 1);
  EXPECT_EQ(resolve_thread_count(0), default_thread_count());
}

// More threads than CPUs runs, with a warning that says what to do; one
// thread per CPU says nothing.
TEST(CpuCount, MoreThreadsThanCpusWarns) {
  const int cpus = static_cast<int>(allowed_cpus().size());
  const LogLevel before = log_level();
  set_log_level(LogLevel::kWarn);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(resolve_thread_count(cpus + 1), cpus + 1);
  const std::string over = ::testing::internal::GetCapturedStderr();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(resolve_thread_count(cpus), cpus);
  const std::string fitting = ::testing::internal::GetCapturedStderr();
  set_log_level(before);
  EXPECT_NE(over.find("more threads than the " + std::to_string(cpus) + " CPU"), std::string::npos)
      << over;
  EXPECT_NE(over.find("-t 0"), std::string::npos) << over;
  EXPECT_EQ(fitting, "");
}

}  // namespace
}  // namespace specula
