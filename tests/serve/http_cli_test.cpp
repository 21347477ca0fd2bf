// `specula serve` as a process on 127.0.0.1 (a free port it picks itself),
// with the shipped model pair: greedy output under concurrency equals
// `specula generate` alone, a client that hangs up frees its slot, bad
// requests are 4xx naming the field, and SIGTERM drains and exits 0.
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "serve/http_test_support.h"
#include "serve/serve_process.h"

namespace specula {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::ServeProcess;

const std::string kModels = std::string(SPECULA_SOURCE_DIR) + "/models/";
const std::string kTarget = kModels + "specula-py-target-q8_0.gguf";
const std::string kDraft = kModels + "specula-py-draft-distilled-f16.gguf";

json post(const ServeProcess& s, const json& body, int* status) {
  auto res = s.client().Post("/v1/completions", body.dump(), "application/json");
  if (!res) {
    *status = -1;
    return {};
  }
  *status = res->status;
  return json::parse(res->body, nullptr, false);
}

std::string repeated(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// specula:num_requests_running from /metrics (-1 when unreadable).
int running(const ServeProcess& s) {
  auto res = s.client().Get("/metrics");
  if (!res) return -1;
  const std::regex line("specula:num_requests_running ([0-9]+)");
  std::smatch m;
  if (!std::regex_search(res->body, m, line)) return -1;
  return std::stoi(m[1]);
}

// Requests running or waiting, from /metrics (-1 when unreadable).
int in_flight(const ServeProcess& s) {
  auto res = s.client().Get("/metrics");
  if (!res) return -1;
  std::smatch running, waiting;
  if (!std::regex_search(res->body, running, std::regex("specula:num_requests_running ([0-9]+)")) ||
      !std::regex_search(res->body, waiting, std::regex("specula:num_requests_waiting ([0-9]+)"))) {
    return -1;
  }
  return std::stoi(running[1]) + std::stoi(waiting[1]);
}

// The ready line states the KV memory budget and its element type; an F32
// cache (--kv-type f32) takes twice the F16 default's.
TEST(ServeCli, ReadyLineGivesTheKvBudgetOfEachType) {
  const auto budget = [](const std::vector<std::string>& extra, const std::string& type) {
    std::vector<std::string> args = {"-m", kTarget, "-d", kDraft, "--parallel", "2", "-c", "256"};
    args.insert(args.end(), extra.begin(), extra.end());
    ServeProcess server(args);
    EXPECT_GT(server.wait_ready(), 0) << server.log();
    std::smatch m;
    const std::string log = server.log();
    const std::regex line("KV memory budget ([0-9.]+) MiB \\((f16|f32)\\)");
    if (!std::regex_search(log, m, line)) {
      ADD_FAILURE() << "no KV budget in: " << log;
      return 0.0;
    }
    EXPECT_EQ(m[2].str(), type);
    return std::stod(m[1].str());
  };
  const double half = budget({}, "f16");
  const double full = budget({"--kv-type", "f32"}, "f32");
  EXPECT_GT(half, 0.0);
  EXPECT_NEAR(full, 2 * half, 0.16);  // each printed to 0.1 MiB
}

TEST(ServeCli, SixteenConcurrentGreedyRequestsEqualGenerateAlone) {
  ServeProcess server({"-m", kTarget, "-d", kDraft, "--parallel", "8", "-t", "2"});
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  // 16 prompts of different lengths, each asked for a different length.
  std::vector<std::string> prompts;
  const char* heads[] = {"import os\n",
                         "def main():\n    ",
                         "class Parser:\n",
                         "# utils\n",
                         "for i in range(10):\n",
                         "x = {",
                         "if __name__ == '__main__':\n",
                         "return self."};
  for (int i = 0; i < 16; ++i) {
    prompts.push_back(std::string(heads[i % 8]) + (i >= 8 ? "    value = compute(" : ""));
  }
  constexpr int kLongest = 40;
  std::vector<std::future<json>> answers;
  for (int i = 0; i < 16; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      int status = 0;
      json body = post(server,
                       {{"prompt", prompts[i]},
                        {"max_tokens", kLongest - 2 * i},
                        {"temperature", 0},
                        {"return_tokens", true}},
                       &status);
      EXPECT_EQ(status, 200) << body.dump();
      return body;
    }));
  }
  std::vector<json> served;
  for (auto& a : answers) served.push_back(a.get());

  // Each prompt alone through `specula generate` (one engine, one prompt after another).
  testing::TempDir dir;
  const std::string prompt_file = dir.file("prompts.txt");
  {
    std::ofstream out(prompt_file);
    for (int i = 0; i < 16; ++i) out << (i ? "\n---\n" : "") << prompts[i];
  }
  const std::string command = std::string(SPECULA_CLI_PATH) + " generate -m " + kTarget + " -d " +
                              kDraft + " --temp 0 -t 2 -q --json -n " + std::to_string(kLongest) +
                              " --prompt-file " + prompt_file + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  std::istringstream lines(output);
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    const json alone = json::parse(line);
    const int i = alone["request"];
    ASSERT_TRUE(served[i].contains("choices")) << served[i].dump();
    const std::vector<int32_t> expected = alone["tokens"];
    const std::vector<int32_t> got = served[i]["choices"][0]["tokens"];
    const size_t asked = static_cast<size_t>(kLongest - 2 * i);
    const std::vector<int32_t> prefix(expected.begin(),
                                      expected.begin() + std::min(asked, expected.size()));
    EXPECT_EQ(got, prefix) << "request " << i << ": " << prompts[i];
    ++checked;
  }
  EXPECT_EQ(checked, 16);
  server.signal_term();
  EXPECT_EQ(server.wait_exit(30), 0) << server.log();
}

TEST(ServeCli, ClientThatHangsUpFreesItsSlotWithinTwoSeconds) {
  ServeProcess server({"-m", kTarget, "--parallel", "2", "-t", "2", "--policy", "plain"});
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  testing::RawConnection c(server.port());
  // ignore_eos: an end-of-text token must not finish it before the hang-up.
  c.post("/v1/completions",
         R"({"prompt": "import", "max_tokens": 1000, "stream": true, "ignore_eos": true})");
  ASSERT_TRUE(c.read_until("data: ")) << c.received();
  EXPECT_EQ(running(server), 1);
  c.close();
  const auto start = Clock::now();
  while (running(server) != 0 && Clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(running(server), 0);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  const std::string metrics = server.client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("specula:request_success_total{finished_reason=\"cancelled\"} 1"),
            std::string::npos)
      << metrics;
}

TEST(ServeCli, BadRequestsNameTheFieldAndTheServerStaysUp) {
  ServeProcess server({"-m", kTarget, "--parallel", "1", "-t", "1", "--ctx", "64", "--max-body",
                       "4096", "--api-key", "k3y"});
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  struct Case {
    std::string body;
    int status;
    const char* param;
  };
  const std::vector<Case> cases = {
      {"{\"prompt\": ", 400, nullptr},
      {R"({"prompt": {"text": "a"}})", 400, "prompt"},
      {R"({"max_tokens": 4})", 400, "prompt"},
      {R"({"prompt": "a", "max_tokens": 0})", 400, "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 64})", 400, "max_tokens"},
      {R"({"prompt": "a", "temperature": -0.5})", 400, "temperature"},
      {R"({"prompt": "a", "top_p": 2})", 400, "top_p"},
      {R"({"prompt": [1, 99999]})", 400, "prompt"},
      {R"({"prompt": ")" + repeated("f(a, 1) ", 40) + R"("})", 400, "prompt"},
      {"{\"prompt\": \"" + std::string(5000, 'x') + "\"}", 413, nullptr},
  };
  const httplib::Headers key = {{"Authorization", "Bearer k3y"}};
  for (const Case& c : cases) {
    auto res = server.client().Post("/v1/completions", key, c.body, "application/json");
    ASSERT_TRUE(res) << c.body.substr(0, 60);
    EXPECT_EQ(res->status, c.status) << c.body.substr(0, 60) << " -> " << res->body;
    const json error = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(error.contains("error")) << res->body;
    if (c.param) {
      EXPECT_EQ(error["error"]["param"], c.param) << res->body;
    }
  }
  auto res = server.client().Post("/v1/completions", R"({"prompt": "a"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = server.client().Post("/v1/completions", key, R"({"prompt": "a", "max_tokens": 2})",
                             "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST(ServeCli, AModelThatFailsToLoadEndsTheServerWithTheReason) {
  ServeProcess server({"-m", "/nonexistent/target.gguf"});
  EXPECT_EQ(server.wait_exit(20), 1) << server.log();
  EXPECT_NE(server.log().find("/nonexistent/target.gguf"), std::string::npos) << server.log();
}

TEST(ServeCli, SigtermDrainsRequestsInFlightAndExitsZero) {
  ServeProcess server({"-m", kTarget, "-d", kDraft, "--parallel", "4", "-t", "2"});
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  std::vector<std::future<json>> answers;
  std::vector<std::unique_ptr<testing::RawConnection>> streams;
  for (int i = 0; i < 3; ++i) {
    answers.push_back(std::async(std::launch::async, [&] {
      int status = 0;
      json body =
          post(server, {{"prompt", "def f(x):"}, {"max_tokens", 200}, {"temperature", 0}}, &status);
      EXPECT_EQ(status, 200) << body.dump();
      return body;
    }));
  }
  auto stream = std::make_unique<testing::RawConnection>(server.port());
  stream->post("/v1/completions", R"({"prompt": "import", "max_tokens": 200, "stream": true})");
  ASSERT_TRUE(stream->read_until("data: "));
  // All four are in the scheduler before the signal.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (in_flight(server) < 4 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(in_flight(server), 4);
  server.signal_term();
  // New requests are refused while the old ones finish.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto refused = server.client().Get("/health");
  if (refused) {
    EXPECT_EQ(refused->status, 503);
  }
  for (auto& a : answers) {
    const json body = a.get();
    // Finished, not cut: 200 tokens, or fewer ended by an end-of-text token.
    const std::string finish = body["choices"][0]["finish_reason"];
    const int tokens = body["usage"]["completion_tokens"];
    EXPECT_TRUE((finish == "length" && tokens == 200) || (finish == "stop" && tokens < 200))
        << body.dump();
  }
  stream->read_all();
  const std::vector<std::string> events = testing::sse_data(stream->received());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(server.wait_exit(30), 0) << server.log();
}

}  // namespace
}  // namespace specula
