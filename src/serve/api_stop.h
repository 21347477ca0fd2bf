// Stop strings (the request's `stop`), matched on the detokenized text as
// it streams: text that might be the start of a stop string is held back
// until the next text settles it, and a stop string is never sent.
#pragma once

#include <string>
#include <vector>

namespace specula {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends `text` and returns what can be sent now. After a match it
  // returns the text before the stop string, and stopped() is true; later
  // pushes return nothing.
  std::string push(const std::string& text);
  // What is still held back, at the end of the completion (empty after a match).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace specula
