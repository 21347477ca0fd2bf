// The real CompletionBackend: the continuous-batching Scheduler.
#pragma once

#include "serve/http_server.h"
#include "serve/scheduler.h"

namespace specula {

class SchedulerBackend final : public CompletionBackend {
 public:
  explicit SchedulerBackend(Scheduler& scheduler) : scheduler_(scheduler) {}
  std::optional<uint64_t> submit(CompletionRequest request, OnToken on_token,
                                 OnDone on_done) override {
    return scheduler_.submit(std::move(request), std::move(on_token), std::move(on_done));
  }
  void cancel(uint64_t id) override { scheduler_.cancel(id); }
  SchedulerMetrics metrics() const override { return scheduler_.metrics(); }

 private:
  Scheduler& scheduler_;
};

}  // namespace specula
