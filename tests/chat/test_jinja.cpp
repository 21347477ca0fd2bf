// The interpreter feature by feature: each snippet in
// tests/data/chat_templates/snippets.json must render exactly as Python's
// jinja2 rendered it (expected_snippets.json), and fail where jinja2 fails.
// Then what jinja2 cannot tell us: the sandbox's limits and the positions
// its errors name.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chat/jinja.h"

namespace specula::jinja {
namespace {

const std::string kDir = std::string(SPECULA_TEST_DATA_DIR) + "/chat_templates";

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return nlohmann::ordered_json::parse(s.str());
}

// The `messages` render_reference.py gives every snippet.
Value snippet_messages() {
  return Value::from_json(nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "  sys  "},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bye"}])"));
}

std::string render(std::string_view source, Limits limits = {}) {
  return Template(source, limits).render({{"messages", snippet_messages()}});
}

std::string error_of(std::string_view source, Limits limits = {}) {
  try {
    render(source, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, EverySnippetMatchesJinja2) {
  const auto snippets = read_json(kDir + "/snippets.json");
  const auto expected = read_json(kDir + "/expected_snippets.json");
  ASSERT_EQ(snippets.size(), expected.size()) << "run render_reference.py";
  size_t errors = 0;
  for (const auto& s : snippets) {
    const std::string name = s["name"];
    SCOPED_TRACE(name);
    const auto& want = expected[name];
    try {
      const std::string got = render(s["template"].get<std::string>());
      EXPECT_TRUE(want.contains("output"))
          << "jinja2 raised " << want.value("error", "") << ", specula rendered " << got;
      if (want.contains("output")) {
        EXPECT_EQ(got, want["output"].get<std::string>());
      }
    } catch (const Error& e) {
      ++errors;
      EXPECT_TRUE(want.contains("error")) << "specula failed: " << e.what();
      // Every error names where it happened (the template's own
      // raise_exception names its call site).
      EXPECT_NE(std::string(e.what()).find("line "), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 10u);
}

// The expected files are jinja2's output today: re-run the reference when
// jinja2 is installed, so that they cannot drift from it.
TEST(Jinja, ExpectedFilesMatchLiveJinja2) {
  if (std::system("python3 -c 'import jinja2' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 with jinja2 (Debian's python3-jinja2) is not installed";
  }
  const std::string command = "python3 " + kDir + "/render_reference.py --check";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(Jinja, ErrorsNameLineAndColumn) {
  EXPECT_NE(error_of("a\nb\n  {{ 'x' | nope }}").find("line 3, column 12: unknown filter 'nope'"),
            std::string::npos)
      << error_of("a\nb\n  {{ 'x' | nope }}");
  EXPECT_NE(error_of("{% for x in y %}\n{{ x }}").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("{% for x in y %}\n{{ x }}").find("expected {% endfor %}"), std::string::npos);
  EXPECT_NE(error_of("\n\n {{ 'a' + 1 }}")
                .find("line 3, column 9: unsupported operand type(s) for +: 'str' and 'int'"),
            std::string::npos)
      << error_of("\n\n {{ 'a' + 1 }}");
  EXPECT_NE(error_of("{{ foo.bar }}").find("'foo' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{% raw %}x{% endraw %}").find("raw"), std::string::npos);
  EXPECT_NE(error_of("{% include 'a' %}").find("unsupported statement {% include"),
            std::string::npos);
}

TEST(Jinja, RaiseExceptionCarriesTheTemplatesMessage) {
  try {
    render("\n{{ raise_exception('Roles must alternate') }}");
    FAIL() << "no exception";
  } catch (const TemplateRaised& e) {
    EXPECT_EQ(e.message(), "Roles must alternate");
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(Jinja, SandboxRejectsMutationAndDunders) {
  EXPECT_NE(error_of("{{ messages.append(1) }}").find("unsafe"), std::string::npos);
  EXPECT_NE(error_of("{{ messages[0].update({'a': 1}) }}").find("unsafe"), std::string::npos);
  EXPECT_NE(error_of("{{ ''.__class__ }}").find("unsafe"), std::string::npos)
      << error_of("{{ ''.__class__ }}");
  EXPECT_NE(error_of("{{ messages.__len__() }}").find("unsafe"), std::string::npos);
  EXPECT_NE(error_of("{{ cycler }}{{ lipsum() }}").find("'lipsum' is undefined"),
            std::string::npos);
}

TEST(Jinja, LimitsStopRunawayTemplates) {
  Limits small;
  small.max_loop_iterations = 1000;
  small.max_output_bytes = 10000;
  small.max_call_depth = 10;
  small.max_template_bytes = 100;
  small.max_nesting = 20;
  EXPECT_NE(error_of("{% for i in range(2000) %}{% endfor %}", small).find("loop iterations"),
            std::string::npos);
  Limits loops = small;
  loops.max_template_bytes = 1000;
  EXPECT_NE(error_of("{% for i in range(30) %}{% for j in range(30) %}{% for k in range(30) %}{% "
                     "endfor %}{% endfor %}"
                     "{% endfor %}",
                     loops)
                .find("loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000 }}", small).find("output limit"), std::string::npos);
  EXPECT_NE(
      error_of(
          "{% for i in range(300) %}{{ '0123456789abcdef0123456789abcdef0123456789' }}{% endfor %}",
          small)
          .find("output limit"),
      std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(20) %}{% set ns.s = ns.s ~ "
                     "ns.s %}{% endfor %}",
                     loops)
                .find("output limit"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", small)
                .find("macro calls nested"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(200, 'x'), small).find("limit of 100 bytes"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(30, '(') + "1" + std::string(30, ')') + " }}", small)
                .find("nesting"),
            std::string::npos);
  // The default limits still hold with deep nesting: no stack overflow.
  EXPECT_NE(
      error_of("{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}").find("nesting"),
      std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '[')).find("(no error)"),
            std::string::npos);  // plain text
  EXPECT_NE(error_of(std::string(5000, '-').insert(0, "{{ 1 ") + " 1 }}").find("nesting"),
            std::string::npos);
  // Values nested without end, or holding themselves, are refused.
  EXPECT_NE(
      error_of("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
               "{% endfor %}{{ ns.x }}")
          .find("nested more than 256 levels"),
      std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}")
                .find("cannot hold a namespace"),
            std::string::npos);
  EXPECT_NE(
      error_of("{% set ns = namespace() %}{% set ns.l = [ns] %}").find("cannot hold a namespace"),
      std::string::npos);
  // Integers stay in range instead of wrapping.
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").find("overflow"), std::string::npos);
  EXPECT_NE(error_of("{{ 2 ** 100 }}").find("overflow"), std::string::npos);
}

TEST(Jinja, FormatWithAnIndexPastAnyArgumentIsAnError) {
  // Found by fuzz_chat: an index too large for size_t escaped as
  // std::out_of_range and ended the process.
  EXPECT_EQ(render("{{ '{1} and {0}'.format('a', 'b') }}"), "b and a");
  const std::string huge = error_of("{{ '{100000000000000000000000}'.format(1) }}");
  EXPECT_NE(huge.find("no argument for field {100000000000000000000000}"), std::string::npos)
      << huge;
  const std::string past = error_of("{{ '{7}'.format(1) }}");
  EXPECT_NE(past.find("format()"), std::string::npos) << past;
}

TEST(Jinja, BadInputNeverCrashes) {
  // Truncations of a real template at every byte: each either renders or
  // gives an Error, and never anything else.
  const std::string source =
      "{%- set ns = namespace(i=0) -%}{% for m in messages if m.role != 'x' %}{{ '<|' + m['role'] "
      "+ '|>\\n' "
      "+ m.content | trim }}{% if loop.last and add_generation_prompt %}{{ [1, {'a': (2, "
      "3)}][1].a[0:1] }}"
      "{% endif %}{% set ns.i = ns.i + 1 %}{% endfor %}{# c #}{{ ns.i ~ 'x' if true else 'y' }}";
  for (size_t n = 0; n <= source.size(); ++n) {
    try {
      render(source.substr(0, n));
    } catch (const Error&) {
    }
  }
  EXPECT_EQ(render(source), "<|system|>\nsys<|user|>\nHi<|assistant|>\nHello<|user|>\nBye4x");
}

}  // namespace
}  // namespace specula::jinja
