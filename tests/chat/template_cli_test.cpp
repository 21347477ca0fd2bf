// `specula template`: the prompt printed byte for byte (checked against
// jinja2's render in expected.json), from a file, a built-in or a model's
// GGUF; a template that raises is a non-zero exit with its message.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "gguf/gguf_writer.h"

namespace specula {
namespace {

using testing::run_cli;
using testing::TempDir;

const std::string kDir = std::string(SPECULA_TEST_DATA_DIR) + "/chat_templates";

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return nlohmann::ordered_json::parse(s.str());
}

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Messages of conversations.json's `name`, as a --messages file.
std::string messages_file(const TempDir& dir, const std::string& name) {
  for (const auto& c : read_json(kDir + "/conversations.json")) {
    if (c["name"] == name) {
      nlohmann::ordered_json input = {{"messages", c["messages"]}};
      if (c.contains("tools")) input["tools"] = c["tools"];
      if (c.contains("variables")) input.update(c["variables"]);
      return write(dir, name + ".json", input.dump());
    }
  }
  ADD_FAILURE() << "no conversation " << name;
  return "";
}

// A field of conversations.json's `name` ("messages", "tools", "variables").
nlohmann::ordered_json conversation_field(const std::string& name, const std::string& field) {
  for (const auto& c : read_json(kDir + "/conversations.json")) {
    if (c["name"] == name) return c.value(field, nlohmann::ordered_json());
  }
  ADD_FAILURE() << "no conversation " << name;
  return {};
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string expected_output(const std::string& key) {
  const auto expected = read_json(kDir + "/expected.json");
  EXPECT_TRUE(expected[key].contains("output")) << key;
  return expected[key].value("output", "");
}

TEST(TemplateCli, PrintsThePromptByteForByte) {
  TempDir dir;
  const std::string messages = messages_file(dir, "unicode-and-markup");
  const auto result =
      run_cli("template --chat-template " + kDir + "/templates/llama2-vigogne.jinja --messages " +
              messages + " --bos '<s>' --eos '</s>' --add-generation-prompt");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, expected_output("llama2-vigogne/unicode-and-markup/agp=1"));
  const auto tools =
      run_cli("template --chat-template " + kDir + "/templates/mistral-v3-large-2407.jinja " +
              "--messages " + messages_file(dir, "with-tools") + " --bos '<s>' --eos '</s>'");
  EXPECT_EQ(tools.exit_code, 0) << tools.output;
  EXPECT_EQ(tools.output, expected_output("mistral-v3-large-2407/with-tools/agp=0"));
}

TEST(TemplateCli, BuiltInsMatchTheirModelsTemplates) {
  TempDir dir;
  const std::string messages = messages_file(dir, "system-multi-turn");
  const auto chatml =
      run_cli("template --chat-template chatml --add-generation-prompt --messages " + messages);
  EXPECT_EQ(chatml.exit_code, 0) << chatml.output;
  EXPECT_EQ(chatml.output, expected_output("chatml-openhermes/system-multi-turn/agp=1"));
  // Llama 3's own template always adds the assistant header; the built-in
  // adds it only when asked, like later Llama 3 releases.
  const auto llama3 = run_cli(
      "template --chat-template llama3 --add-generation-prompt --bos '<|begin_of_text|>' "
      "--messages " +
      messages);
  EXPECT_EQ(llama3.exit_code, 0) << llama3.output;
  EXPECT_EQ(llama3.output, expected_output("llama3/system-multi-turn/agp=1"));
}

TEST(TemplateCli, ReadsTheModelsTemplateAndTokens) {
  TempDir dir;
  GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string_array("tokenizer.ggml.tokens", {"<|bos|>", "<|eos|>", "a"});
  writer.set_uint32("tokenizer.ggml.bos_token_id", 0);
  writer.set_uint32("tokenizer.ggml.eos_token_id", 1);
  writer.set_string("tokenizer.chat_template",
                    "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ "
                    "eos_token }}{% endfor %}"
                    "{% if add_generation_prompt %}[assistant]{% endif %}");
  const std::string model = dir.file("model.gguf");
  writer.write(model);
  const std::string messages = write(dir, "m.json", R"([{"role": "user", "content": "hé\n"}])");
  auto result =
      run_cli("template -m " + model + " --messages " + messages + " --add-generation-prompt");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "<|bos|>[user]hé\n<|eos|>[assistant]");
  result = run_cli("template -m " + model + " --messages " + messages + " --bos B --eos ''");
  EXPECT_EQ(result.output, "B[user]hé\n");
  result = run_cli("template -m " + model + " --chat-template chatml --messages " + messages);
  EXPECT_EQ(result.output, "<|im_start|>user\nhé\n<|im_end|>\n");

  GgufWriter bare;
  bare.set_string("general.architecture", "llama");
  const std::string no_template = dir.file("bare.gguf");
  bare.write(no_template);
  result = run_cli("template -m " + no_template + " --messages " + messages);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("has no tokenizer.chat_template"), std::string::npos)
      << result.output;
}

TEST(TemplateCli, RaisingTemplateIsAnErrorWithItsMessage) {
  TempDir dir;
  const auto result =
      run_cli("template --chat-template " + kDir + "/templates/gemma-7b-it.jinja --messages " +
              messages_file(dir, "bad-role-order"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(
      result.output.find("Conversation roles must alternate user/assistant/user/assistant/..."),
      std::string::npos)
      << result.output;
}

TEST(TemplateCli, BadInputIsOneClearMessage) {
  TempDir dir;
  const std::string good = write(dir, "good.json", R"([{"role": "user", "content": "x"}])");
  const struct {
    std::string args, message;
  } cases[] = {
      {"--messages " + good, "give -m MODEL"},
      {"--chat-template nosuch --messages " + good,
       "not a built-in (chatml, llama3) and not a readable file"},
      {"--chat-template chatml --messages " + write(dir, "bad.json", "[{"), "not valid JSON"},
      {"--chat-template chatml --messages " + write(dir, "obj.json", R"({"x": 1})"),
       "expected a JSON array"},
      {"--chat-template chatml --messages " + write(dir, "norole.json", R"([{"content": "x"}])"),
       "needs a string \"role\""},
      {"--chat-template " + write(dir, "t.jinja", "line 1\n{% for x in y %}") + " --messages " +
           good,
       "line 2, column"},
      {"--chat-template " + write(dir, "u.jinja", "{{ messages[0].content + 1 }}") +
           " --messages " + good,
       "unsupported operand type(s) for +"},
      {"--chat-template chatml --messages " + dir.file("missing.json"), "--messages"},
  };
  for (const auto& c : cases) {
    const auto result = run_cli("template " + c.args);
    EXPECT_EQ(result.exit_code, 1) << c.args << "\n" << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << c.args << "\n" << result.output;
  }
}

// --tools FILE and --kwargs JSON|FILE pass what apply_chat_template's tools=
// and **kwargs pass: the same bytes as jinja2 with Qwen2.5 and Llama 3.1's
// template.
TEST(TemplateCli, ToolsAndKwargsFlagsGiveJinja2sBytes) {
  TempDir dir;
  const std::string messages =
      write(dir, "call.json", conversation_field("tool-call-and-reply", "messages").dump());
  const std::string tools =
      write(dir, "tools.json", conversation_field("tool-call-and-reply", "tools").dump());
  auto result =
      run_cli("template --chat-template " + kDir + "/templates/qwen2.5.jinja" + " --messages " +
              messages + " --tools " + tools + " --add-generation-prompt");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, expected_output("qwen2.5/tool-call-and-reply/agp=1"));
  // Without --tools the template takes its other branch.
  result = run_cli("template --chat-template " + kDir + "/templates/qwen2.5.jinja" +
                   " --messages " + messages + " --add-generation-prompt");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output, expected_output("qwen2.5/tool-call-and-reply/agp=1"));

  const std::string llama =
      " --chat-template " + kDir + "/templates/llama3.3.jinja" +
      " --bos '<|begin_of_text|>' --eos '<|eot_id|>' --messages " +
      write(dir, "vars.json", conversation_field("template-variables", "messages").dump()) +
      " --tools " +
      write(dir, "vars-tools.json", conversation_field("template-variables", "tools").dump());
  const nlohmann::ordered_json kwargs = conversation_field("template-variables", "variables");
  ASSERT_TRUE(kwargs.is_object());
  const std::string want = expected_output("llama3.3/template-variables/agp=0");
  // Inline JSON, and a file.
  result = run_cli("template" + llama + " --kwargs '" + kwargs.dump() + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, want);
  result = run_cli("template" + llama + " --kwargs " + write(dir, "kwargs.json", kwargs.dump()));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, want);
  // The kwargs matter: without them the date and the tools' place differ.
  result = run_cli("template" + llama);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output, want);
}

TEST(TemplateCli, BadToolsOrKwargsAreOneClearMessage) {
  TempDir dir;
  const std::string good = write(dir, "good.json", R"([{"role": "user", "content": "x"}])");
  const std::string base = "template --chat-template chatml --messages " + good;
  const struct {
    std::string args, message;
  } cases[] = {
      {" --tools " + write(dir, "obj.json", R"({"type": "function"})"),
       "tools must be an array of tool objects"},
      {" --tools " + write(dir, "num.json", R"([{"type": "function"}, 7])"),
       "tools[1] must be a tool object"},
      {" --tools " + write(dir, "bad.json", "[{"), "--tools"},
      {" --tools " + dir.file("missing.json"), "--tools"},
      {" --kwargs '{\"enable_thinking\": '", "--kwargs: not valid JSON"},
      {" --kwargs '{\"bos_token\": \"x\"}'", "cannot set 'bos_token'"},
      {" --kwargs " + write(dir, "list.json", "[1, 2]"), "chat_template_kwargs must be an object"},
      {" --kwargs " + dir.file("nofile.json"), "--kwargs"},
  };
  for (const auto& c : cases) {
    const auto result = run_cli(base + c.args);
    EXPECT_EQ(result.exit_code, 1) << c.args << "\n" << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << c.args << "\n" << result.output;
  }
}

// A GGUF file that carries Qwen2.5's or Llama 3.1's own template text in
// tokenizer.chat_template (and Llama's BOS/EOS tokens in its vocabulary):
// `specula template -m` prints exactly jinja2's render.
TEST(TemplateCli, ModelsOwnRealTemplateGivesJinja2sBytes) {
  TempDir dir;
  const auto make_model = [&](const std::string& name, const std::string& template_name,
                              const std::vector<std::string>& tokens) {
    GgufWriter writer;
    writer.set_string("general.architecture", "llama");
    writer.set_string("tokenizer.ggml.model", "gpt2");
    writer.set_string_array("tokenizer.ggml.tokens", tokens);
    writer.set_uint32("tokenizer.ggml.bos_token_id", 0);
    writer.set_uint32("tokenizer.ggml.eos_token_id", 1);
    writer.set_string("tokenizer.chat_template",
                      read_text(kDir + "/templates/" + template_name + ".jinja"));
    const std::string path = dir.file(name);
    writer.write(path);
    return path;
  };
  const std::string qwen = make_model("qwen.gguf", "qwen2.5", {"<|endoftext|>", "<|im_end|>", "a"});
  const std::string llama =
      make_model("llama.gguf", "llama3.3", {"<|begin_of_text|>", "<|eot_id|>", "a"});
  for (const char* conversation : {"system-multi-turn", "with-tools", "tool-call-and-reply"}) {
    SCOPED_TRACE(conversation);
    const std::string messages = messages_file(dir, conversation);
    for (const auto& [model, name] :
         {std::pair{qwen, std::string("qwen2.5")}, std::pair{llama, std::string("llama3.3")}}) {
      const auto result =
          run_cli("template -m " + model + " --messages " + messages + " --add-generation-prompt");
      EXPECT_EQ(result.exit_code, 0) << result.output;
      EXPECT_EQ(result.output, expected_output(name + "/" + conversation + "/agp=1")) << name;
    }
  }
}

}  // namespace
}  // namespace specula
