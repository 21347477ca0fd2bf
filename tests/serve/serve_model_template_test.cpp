// `specula serve` on a model whose GGUF file carries a real chat template in
// tokenizer.chat_template (the shipped target, copied with Qwen2.5's
// template added): /apply-template with tools gives jinja2's bytes, and
// /v1/chat/completions is the completion of that rendered prompt.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_runner.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "serve/serve_process.h"

namespace specula {
namespace {

using nlohmann::json;

const std::string kDir = std::string(SPECULA_TEST_DATA_DIR) + "/chat_templates";
const std::string kTarget = std::string(SPECULA_SOURCE_DIR) + "/models/specula-py-target-q8_0.gguf";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `source` copied to `path` with `chat_template` as its tokenizer.chat_template.
void copy_with_template(const std::string& source, const std::string& path,
                        const std::string& chat_template) {
  const auto file = GgufReader::open(source);
  GgufWriter writer;
  for (const GgufKv& kv : file->metadata()) {
    if (kv.key != "tokenizer.chat_template") writer.set_value(kv.key, kv.value);
  }
  writer.set_string("tokenizer.chat_template", chat_template);
  for (const GgufTensorInfo& t : file->tensors()) {
    writer.add_tensor(t.name, t.dims, t.type, std::span<const uint8_t>(t.data, t.n_bytes));
  }
  writer.write(path);
}

// POST `body` as sent (key order kept: the template's tojson shows it).
json post_raw(const testing::ServeProcess& server, const std::string& path, const std::string& body,
              int* status) {
  auto result = server.client().Post(path, body, "application/json");
  if (!result) {
    *status = -1;
    return {};
  }
  *status = result->status;
  return json::parse(result->body, nullptr, false);
}

TEST(ServeModelTemplate, ModelsOwnTemplateRendersToolsAsJinja2) {
  testing::TempDir dir;
  const std::string model = dir.file("with-template.gguf");
  copy_with_template(kTarget, model, read_text(kDir + "/templates/qwen2.5.jinja"));
  testing::ServeProcess server({"-m", model, "-t", "1", "--parallel", "1", "--ctx", "1024"});
  ASSERT_GT(server.wait_ready(), 0) << server.log();

  nlohmann::ordered_json body;
  for (const auto& c : nlohmann::ordered_json::parse(read_text(kDir + "/conversations.json"))) {
    if (c["name"] == "tool-call-and-reply")
      body = {{"messages", c["messages"]}, {"tools", c["tools"]}};
  }
  ASSERT_FALSE(body.is_null());
  int status = 0;
  const json rendered = post_raw(server, "/apply-template", body.dump(), &status);
  ASSERT_EQ(status, 200) << rendered.dump();
  const auto expected = json::parse(read_text(kDir + "/expected.json"));
  EXPECT_EQ(rendered["prompt"], expected["qwen2.5/tool-call-and-reply/agp=1"]["output"]);

  // The chat is the greedy completion of that prompt's tokens.
  body["max_tokens"] = 6;
  body["temperature"] = 0;
  const json chat = post_raw(server, "/v1/chat/completions", body.dump(), &status);
  ASSERT_EQ(status, 200) << chat.dump();
  const json ids = server.post("/tokenize", {{"content", rendered["prompt"]}}, &status);
  ASSERT_EQ(status, 200);
  const json completion =
      server.post("/v1/completions",
                  {{"prompt", ids["tokens"]}, {"max_tokens", 6}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << completion.dump();
  EXPECT_EQ(chat["usage"], completion["usage"]);
  EXPECT_EQ(chat["choices"][0]["message"]["content"], completion["choices"][0]["text"]);
}

}  // namespace
}  // namespace specula
