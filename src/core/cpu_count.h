// How many threads a run takes when the user names none (-t 0): one per
// physical core that this process may run on.
//
// std::thread::hardware_concurrency() counts every logical CPU of the
// machine: it ignores the affinity mask (taskset, a container's cpuset),
// the cgroup's CPU quota (docker --cpus) and SMT siblings, so a process
// confined to 4 CPUs of a 64-CPU host started 64 threads that spin and
// wait on each other. llama.cpp's default is likewise the physical cores
// (the performance cores on hybrid Intel CPUs), so equal defaults compare.
#pragma once

#include <string>
#include <vector>

namespace specula {

// What the choice rests on, as Linux reports it.
struct CpuFacts {
  // CPUs of the process's affinity mask (sched_getaffinity), ascending.
  std::vector<int> allowed;
  // For each allowed CPU (same order): the lowest CPU id sharing its
  // physical core (topology/core_cpus_list or thread_siblings_list), or
  // the CPU itself where sysfs does not say.
  std::vector<int> core_of;
  // Hybrid CPUs: the performance cores' CPUs (/sys/devices/cpu_core/cpus
  // where /sys/devices/cpu_atom/cpus exists too); empty elsewhere.
  std::vector<int> performance;
  // CPU time the process's cgroups allow, in CPUs (the least cpu.max or
  // cfs_quota_us / cfs_period_us on the way to the root); 0: no limit.
  double quota_cpus = 0;
};

struct ThreadCount {
  int threads = 1;
  std::string why;  // e.g. "8 physical cores of the 16 CPUs this process may use"
};

// The thread count for the facts: the physical cores among the allowed
// CPUs (performance cores only, on a hybrid CPU where any is allowed), no
// more than the quota rounded up, at least 1.
ThreadCount choose_thread_count(const CpuFacts& facts);

// Parses a Linux CPU list ("0-3,8,10-11\n"); empty on malformed text.
std::vector<int> parse_cpu_list(const std::string& text);

// The CPUs of the calling thread's affinity mask (sched_getaffinity),
// ascending; every CPU hardware_concurrency counts where it cannot be read.
std::vector<int> allowed_cpus();

// Reads the facts for `allowed` CPUs from the files under root ("" for
// the real /sys and /proc; tests pass a directory that mimics them).
CpuFacts read_cpu_facts(const std::vector<int>& allowed, const std::string& root = "");

// choose_thread_count for this process (its affinity mask; every online
// CPU where that cannot be read), worked out once.
int default_thread_count();

// The threads a run takes for a -t value: `requested` when positive
// (warning when that is more than the CPUs this process may use), else
// default_thread_count(), whose reason it logs at info level (-v).
int resolve_thread_count(int requested);

}  // namespace specula
