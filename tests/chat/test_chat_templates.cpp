// Every real chat template in tests/data/chat_templates rendered with every
// conversation, with and without add_generation_prompt, must give the same
// bytes as Python's jinja2 in Hugging Face's setup (expected.json, written by
// render_reference.py), and raise exactly where jinja2 raises.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace specula {
namespace {

const std::string kDir = std::string(SPECULA_TEST_DATA_DIR) + "/chat_templates";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  return nlohmann::ordered_json::parse(read_file(path));
}

TEST(ChatTemplates, EveryPairMatchesJinja2ByteForByte) {
  const auto templates = read_json(kDir + "/templates.json");
  const auto conversations = read_json(kDir + "/conversations.json");
  const auto expected = read_json(kDir + "/expected.json");
  ASSERT_GE(templates.size(), 15u);
  ASSERT_GE(conversations.size(), 6u);
  size_t compared = 0, raised = 0, failed = 0;
  std::ostringstream table;
  table << "template";
  for (const auto& c : conversations) table << " | " << c["name"].get<std::string>();
  table << "\n";
  for (const auto& t : templates) {
    const std::string name = t["name"];
    const ChatTemplate chat_template(read_file(kDir + "/templates/" + name + ".jinja"), name);
    table << name;
    for (const auto& c : conversations) {
      bool row_ok = true;
      for (const bool agp : {false, true}) {
        const std::string key =
            name + "/" + c["name"].get<std::string>() + "/agp=" + (agp ? "1" : "0");
        SCOPED_TRACE(key);
        ASSERT_TRUE(expected.contains(key))
            << "expected.json lacks " << key << ": run render_reference.py";
        const auto& want = expected[key];
        ChatRenderOptions options;
        options.add_generation_prompt = agp;
        options.bos_token = t["bos_token"];
        options.eos_token = t["eos_token"];
        if (c.contains("tools")) options.extra_variables["tools"] = c["tools"];
        if (c.contains("variables")) options.extra_variables.update(c["variables"]);
        try {
          const std::string got = chat_template.render(c["messages"], options);
          EXPECT_TRUE(want.contains("output"))
              << "jinja2 raised \"" << want.value("error", "") << want.value("failed", "")
              << "\" but specula rendered:\n"
              << got;
          if (want.contains("output")) {
            EXPECT_EQ(got, want["output"].get<std::string>());
            row_ok = row_ok && got == want["output"].get<std::string>();
          } else {
            row_ok = false;
          }
        } catch (const jinja::TemplateRaised& e) {
          ++raised;
          EXPECT_TRUE(want.contains("error")) << "specula raised: " << e.what();
          if (want.contains("error")) {
            EXPECT_EQ(e.message(), want["error"].get<std::string>());
            row_ok = row_ok && e.message() == want["error"].get<std::string>();
          } else {
            row_ok = false;
          }
        } catch (const Error& e) {
          // jinja2 failed too (a TypeError such as null content + a string):
          // the template cannot render this conversation in either.
          ++failed;
          EXPECT_TRUE(want.contains("failed")) << "specula failed: " << e.what();
          row_ok = row_ok && want.contains("failed");
        }
        ++compared;
      }
      table << " | " << (row_ok ? "identical" : "DIFFERS");
    }
    table << "\n";
  }
  EXPECT_EQ(compared, expected.size());
  EXPECT_GT(raised, 0u) << "the bad-role-order conversation should make some templates raise";
  EXPECT_GT(failed, 0u) << "null tool-call content should make some templates fail";
  std::cout << table.str();
}

TEST(ChatTemplates, EveryTemplateNamesItsSource) {
  for (const auto& t : read_json(kDir + "/templates.json")) {
    EXPECT_FALSE(t.value("model", "").empty()) << t.dump();
    EXPECT_NE(t.value("source", "").find("http"), std::string::npos) << t.dump();
  }
}

// chat_template_variables: tools= then **kwargs, as apply_chat_template.
TEST(ChatTemplates, TemplateVariablesAsApplyChatTemplateTakesThem) {
  using nlohmann::ordered_json;
  const ordered_json tools =
      ordered_json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  const ordered_json kwargs = ordered_json::parse(R"({"enable_thinking": false, "x": [1]})");
  const ordered_json v = chat_template_variables(tools, kwargs);
  EXPECT_EQ(
      v.dump(),
      R"({"tools":[{"type":"function","function":{"name":"f"}}],"enable_thinking":false,"x":[1]})");
  EXPECT_EQ(chat_template_variables(nullptr, nullptr), ordered_json::object());
  EXPECT_EQ(chat_template_variables(tools, ordered_json::parse(R"({"tools": []})")).dump(),
            R"({"tools":[]})");
  // What a template sees.
  const ChatTemplate t("{{ tools[0].function.name }}|{{ enable_thinking }}|{{ x | tojson }}", "t");
  ChatRenderOptions options;
  options.extra_variables = v;
  EXPECT_EQ(t.render(ordered_json::array(), options), "f|False|[1]");
  const auto message_of = [](const auto& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message_of([] { check_chat_tools(ordered_json("f")); }).find("tools must be an array"),
            std::string::npos);
  EXPECT_NE(message_of([] {
              check_chat_tools(ordered_json::parse("[{}, null]"));
            }).find("tools[1] must be a tool object"),
            std::string::npos);
  EXPECT_NE(message_of([] {
              check_chat_template_kwargs(ordered_json::array());
            }).find("chat_template_kwargs must be an object"),
            std::string::npos);
  EXPECT_NE(message_of([] {
              check_chat_template_kwargs(ordered_json::parse(R"({"eos_token": ""})"));
            }).find("cannot set 'eos_token'"),
            std::string::npos);
}

}  // namespace
}  // namespace specula
