#include "core/cpu_count.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/log.h"

namespace specula {
namespace {

// The whole of a small text file (sysfs and cgroup files are a line or
// two); false where it cannot be read.
bool read_text(const std::string& path, std::string* text) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream out;
  out << in.rdbuf();
  *text = out.str();
  return true;
}

std::vector<int> read_cpu_list(const std::string& path) {
  std::string text;
  return read_text(path, &text) ? parse_cpu_list(text) : std::vector<int>{};
}

// "/a/b" -> "/a" -> "/".
std::string parent_path(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// The tighter of two quotas in CPUs, 0 standing for none.
double tighter(double a, double b) {
  return a <= 0 ? b : b <= 0 ? a : std::min(a, b);
}

// The least quota (in CPUs) over dir + path and its ancestors, read by
// `quota_at` (a directory -> CPUs, 0 for none).
template <typename QuotaAt>
double least_quota(const std::string& dir, std::string path, const QuotaAt& quota_at) {
  double least = 0;
  for (;;) {
    least = tighter(least, quota_at(dir + (path == "/" ? "" : path)));
    if (path == "/" || path.empty()) return least;
    path = parent_path(path);
  }
}

// cgroup v2: cpu.max holds "max PERIOD" or "QUOTA PERIOD" (microseconds).
double cgroup2_quota(const std::string& dir) {
  std::string text;
  if (!read_text(dir + "/cpu.max", &text)) return 0;
  std::istringstream in(text);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  return end != quota.c_str() && q > 0 ? q / period : 0;
}

// cgroup v1: cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us.
double cgroup1_quota(const std::string& dir) {
  std::string quota_text, period_text;
  if (!read_text(dir + "/cpu.cfs_quota_us", &quota_text) ||
      !read_text(dir + "/cpu.cfs_period_us", &period_text)) {
    return 0;
  }
  const double quota = std::strtod(quota_text.c_str(), nullptr);
  const double period = std::strtod(period_text.c_str(), nullptr);
  return quota > 0 && period > 0 ? quota / period : 0;
}

bool names_cpu_controller(const std::string& controllers) {
  std::istringstream in(controllers);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (name == "cpu") return true;
  }
  return false;
}

// The least CPU quota of the cgroups in root/proc/self/cgroup, v2 and v1.
double read_quota_cpus(const std::string& root) {
  std::string text;
  if (!read_text(root + "/proc/self/cgroup", &text)) return 0;
  std::istringstream lines(text);
  std::string line;
  double least = 0;
  while (std::getline(lines, line)) {
    // "ID:CONTROLLERS:PATH"; v2's line is "0::PATH".
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a);
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (path.empty() || path[0] != '/') continue;
    if (id == "0" && controllers.empty()) {
      least = tighter(least, least_quota(root + "/sys/fs/cgroup", path, cgroup2_quota));
    } else if (names_cpu_controller(controllers)) {
      for (const char* mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
        least = tighter(least, least_quota(root + "/sys/fs/cgroup" + mount, path, cgroup1_quota));
      }
    }
  }
  return least;
}

}  // namespace

std::vector<int> allowed_cpus() {
  for (int n_cpus = 1024; n_cpus <= (1 << 16); n_cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(static_cast<size_t>(n_cpus));
    if (set == nullptr) break;
    const size_t bytes = CPU_ALLOC_SIZE(static_cast<size_t>(n_cpus));
    CPU_ZERO_S(bytes, set);
    const bool read = sched_getaffinity(0, bytes, set) == 0;
    const int error = errno;  // before CPU_FREE, which may set it
    if (read) {
      std::vector<int> cpus;
      for (int c = 0; c < n_cpus; ++c) {
        if (CPU_ISSET_S(static_cast<size_t>(c), bytes, set)) cpus.push_back(c);
      }
      CPU_FREE(set);
      if (!cpus.empty()) return cpus;
      break;
    }
    CPU_FREE(set);
    if (error != EINVAL) break;  // EINVAL: the kernel's mask is larger than n_cpus
  }
  std::vector<int> cpus(std::max(1u, std::thread::hardware_concurrency()));
  for (size_t c = 0; c < cpus.size(); ++c) cpus[c] = static_cast<int>(c);
  return cpus;
}

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::istringstream in(text);
  std::string range;
  while (std::getline(in, range, ',')) {
    while (!range.empty() && std::isspace(static_cast<unsigned char>(range.back()))) {
      range.pop_back();
    }
    if (range.empty()) continue;
    // "N" or "N-M".
    const char* p = range.c_str();
    char* end = nullptr;
    const long first = std::strtol(p, &end, 10);
    if (end == p) return {};
    long last = first;
    if (*end == '-') {
      p = end + 1;
      last = std::strtol(p, &end, 10);
      if (end == p) return {};
    }
    if (*end != '\0' || first < 0 || last < first || last > (1 << 20)) return {};
    for (long c = first; c <= last; ++c) cpus.push_back(static_cast<int>(c));
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

CpuFacts read_cpu_facts(const std::vector<int>& allowed, const std::string& root) {
  CpuFacts facts;
  facts.allowed = allowed;
  for (int cpu : allowed) {
    const std::string topology =
        root + "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::vector<int> siblings = read_cpu_list(topology + "core_cpus_list");
    if (siblings.empty()) siblings = read_cpu_list(topology + "thread_siblings_list");
    facts.core_of.push_back(siblings.empty() ? cpu : siblings.front());
  }
  std::string atom;
  if (read_text(root + "/sys/devices/cpu_atom/cpus", &atom)) {
    facts.performance = read_cpu_list(root + "/sys/devices/cpu_core/cpus");
  }
  facts.quota_cpus = read_quota_cpus(root);
  return facts;
}

ThreadCount choose_thread_count(const CpuFacts& facts) {
  ThreadCount count;
  if (facts.allowed.empty()) {
    count.why = "no CPU list could be read";
    return count;
  }
  std::set<int> performance(facts.performance.begin(), facts.performance.end());
  bool any_performance = false;
  for (int cpu : facts.allowed) any_performance = any_performance || performance.count(cpu) > 0;
  std::set<int> cores;
  for (size_t i = 0; i < facts.allowed.size(); ++i) {
    if (any_performance && performance.count(facts.allowed[i]) == 0) continue;
    cores.insert(i < facts.core_of.size() ? facts.core_of[i] : facts.allowed[i]);
  }
  count.threads = static_cast<int>(cores.size());
  count.why = str_cat(cores.size(), any_performance ? " performance" : "", " physical core",
                      cores.size() == 1 ? "" : "s", " of the ", facts.allowed.size(), " CPU",
                      facts.allowed.size() == 1 ? "" : "s", " this process may use");
  if (facts.quota_cpus > 0) {
    // Rounded up: a quota of 1.5 CPUs runs 2 threads a little throttled
    // rather than 1 that leaves half a CPU unused.
    const int cap = std::max(1, static_cast<int>(std::ceil(facts.quota_cpus - 1e-6)));
    if (cap < count.threads) {
      count.threads = cap;
      count.why += str_cat(", capped by its cgroup's CPU quota of ", facts.quota_cpus);
    }
  }
  count.threads = std::max(1, count.threads);
  return count;
}

namespace {

const ThreadCount& this_process_count() {
  static const ThreadCount count = choose_thread_count(read_cpu_facts(allowed_cpus()));
  return count;
}

}  // namespace

int default_thread_count() {
  return this_process_count().threads;
}

int resolve_thread_count(int requested) {
  if (requested > 0) {
    const size_t cpus = allowed_cpus().size();
    if (static_cast<size_t>(requested) > cpus) {
      log_warn("-t ", requested, ": more threads than the ", cpus, " CPU", cpus == 1 ? "" : "s",
               " this process may use; the extra threads take turns on ",
               "them and every barrier waits for them (-t 0 runs one per physical core)");
    }
    return requested;
  }
  const ThreadCount& count = this_process_count();
  log_info("threads: ", count.threads, " (", count.why, "; -t sets another count)");
  return count.threads;
}

}  // namespace specula
