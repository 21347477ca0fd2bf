#include "benchmark/bench_plot.h"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

extern char** environ;

namespace specula {
namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out)
    fail("cannot write ", path.string(), ": check that the plot folder exists and is writable");
}

std::string format(const char* pattern, double a, double b = 0, double c = 0, double d = 0,
                   double e = 0) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, pattern, a, b, c, d, e);
  return buffer;
}

// A string for gnuplot's single quotes, where '' stands for one quote.
std::string gnuplot_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    if (c != '\n') out += c;
  }
  return out + "'";
}

// Columns: rows n, then t(n)/t(1) (per repeat) median, minimum and
// maximum, then the median t(n) in milliseconds.
std::string verify_data(const BenchReport& report) {
  std::string text = "# n ratio_median ratio_min ratio_max t_median_ms\n";
  for (const VerifyPoint& p : report.verify) {
    text += format("%.0f %.6g %.6g %.6g %.6g\n", p.rows, p.ratio.median, p.ratio.min, p.ratio.max,
                   p.seconds.median * 1e3);
  }
  return text;
}

// Columns: g, speedup median/min/max, acceptance, predicted speedup ('?'
// when t(g+1) was not measured), speculative tokens/s.
std::string speedup_data(const BenchReport& report) {
  std::string text =
      "# g speedup_median speedup_min speedup_max acceptance predicted tokens_per_second\n";
  for (const SpeculativePoint& p : report.speculative) {
    text += format("%.0f %.6g %.6g %.6g %.6g ", p.draft_max, p.speedup.median, p.speedup.min,
                   p.speedup.max, p.acceptance_rate);
    text += p.predicted_speedup >= 0 ? format("%.6g", p.predicted_speedup) : "?";
    text += format(" %.6g\n", p.tokens_per_second.median);
  }
  return text;
}

std::string plot_script(const BenchReport& report, const std::string& title) {
  double ratio_top = 2;
  for (const VerifyPoint& p : report.verify) {
    ratio_top = std::max(ratio_top, p.ratio.max);
  }
  std::string script =
      "# Redraw with: gnuplot plots.gp (in this folder)\n"
      "set datafile missing '?'\n"
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
      "  set terminal pngcairo size 900,600 noenhanced\n"
      "} else {\n"
      "  set terminal png size 900,600 noenhanced\n"
      "}\n"
      "set grid\n"
      "set key top left\n"
      "set output 'verify-cost.png'\n"
      "set title " +
      gnuplot_quoted("verify cost t(n)/t(1), " + title) +
      "\n"
      "set xlabel 'rows n in one target forward (last token + n-1 drafted)'\n"
      "set ylabel 't(n) / t(1)'\n" +
      format("set xrange [0.5:%.1f]\n", report.verify.size() + 0.5) +
      format("set yrange [0:%.3g]\n", ratio_top * 1.15) +
      "plot 'verify-cost.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'measured (median, "
      "min-max)', \\\n"
      "     1 with lines dt 2 lc rgb 'dark-green' title 'flat: memory-bound ideal', \\\n"
      "     x with lines dt 3 lc rgb 'red' title 'linear: compute-bound'\n"
      "set output\n";
  if (!report.speculative.empty()) {
    double top = 1.5;
    for (const SpeculativePoint& p : report.speculative) {
      top = std::max({top, p.speedup.max, p.predicted_speedup});
    }
    script +=
        "set output 'speedup.png'\n"
        "set title " +
        gnuplot_quoted("speculative / plain decode tokens/s, " + title) +
        "\n"
        "set xlabel 'draft length g'\n"
        "set ylabel 'speedup (same run, per repeat)'\n"
        "set y2label 'acceptance rate'\n"
        "set y2range [0:1]\n"
        "set y2tics\n"
        "set autoscale x\n"
        "set offsets 0.5, 0.5, 0, 0\n" +
        format("set yrange [0:%.3g]\n", top * 1.15) +
        "plot 'speedup.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'speedup (median, "
        "min-max)', \\\n"
        "     '' using 1:6 with linespoints dt 2 pt 6 title 'predicted from t(n) and t_draft', "
        "\\\n"
        "     '' using 1:5 axes x1y2 with linespoints dt 4 pt 5 title 'acceptance (right axis)', "
        "\\\n"
        "     1 with lines dt 3 lc rgb 'black' title 'plain'\n"
        "set output\n";
  }
  return script;
}

// Runs gnuplot on plots.gp inside `dir`; returns why it failed, or "".
std::string run_gnuplot(const std::filesystem::path& dir) {
  const std::string cd = "cd " + gnuplot_quoted(dir.string());
  const char* argv[] = {"gnuplot", "-e", cd.c_str(), "plots.gp", nullptr};
  pid_t pid = 0;
  const int spawn_error =
      posix_spawnp(&pid, "gnuplot", nullptr, nullptr, const_cast<char* const*>(argv), environ);
  if (spawn_error == ENOENT) {
    return "gnuplot is not installed (Debian: apt-get install gnuplot-nox)";
  }
  if (spawn_error != 0) return std::string("cannot start gnuplot: ") + std::strerror(spawn_error);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::string("waiting for gnuplot: ") + std::strerror(errno);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "gnuplot failed (its messages are above)";
  }
  return "";
}

}  // namespace

PlotOutcome write_bench_plots(const BenchReport& report, const std::string& dir,
                              const std::string& title) {
  if (report.verify.empty()) fail("write_bench_plots: the report has no verify curve");
  const std::filesystem::path folder = std::filesystem::absolute(dir);
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error || !std::filesystem::is_directory(folder)) {
    fail("cannot create the plot folder ", folder.string(), ": ", error.message());
  }
  write_file(folder / "verify-cost.dat", verify_data(report));
  if (!report.speculative.empty()) write_file(folder / "speedup.dat", speedup_data(report));
  write_file(folder / "plots.gp", plot_script(report, title));

  PlotOutcome outcome;
  outcome.skipped = run_gnuplot(folder);
  if (!outcome.skipped.empty()) return outcome;
  outcome.images.push_back((folder / "verify-cost.png").string());
  if (!report.speculative.empty()) outcome.images.push_back((folder / "speedup.png").string());
  return outcome;
}

}  // namespace specula
