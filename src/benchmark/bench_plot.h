// PNG plots of a bench report, drawn by gnuplot when it is installed: the
// verify-cost curve t(n)/t(1) and, with a draft, speedup and acceptance
// against the draft length g. The data and the gnuplot script stay in the
// folder, so a plot can be redrawn or restyled without measuring again.
#pragma once

#include <string>
#include <vector>

#include "benchmark/bench_runner.h"

namespace specula {

struct PlotOutcome {
  std::vector<std::string> images;  // PNG files written
  std::string skipped;              // why no images were drawn; empty when they were
};

// Writes into `dir` (created if missing): verify-cost.dat, speedup.dat (with
// speculative points), plots.gp, and runs `gnuplot plots.gp` for
// verify-cost.png and speedup.png. `title` heads each plot (e.g. the model's
// file name). A missing gnuplot, or one that fails, is reported in
// `skipped`, not thrown: the measurements stand without pictures. Throws
// Error when `dir` cannot be created or written.
PlotOutcome write_bench_plots(const BenchReport& report, const std::string& dir,
                              const std::string& title);

}  // namespace specula
