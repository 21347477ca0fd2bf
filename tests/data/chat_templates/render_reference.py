#!/usr/bin/env python3
"""Renders every chat template in templates/ with every conversation in
conversations.json, with and without add_generation_prompt, using Python's
jinja2 set up as Hugging Face transformers renders chat templates
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, the
{% generation %} tag, a tojson that keeps non-ASCII, the globals
raise_exception and strftime_now).

  render_reference.py            write expected.json (commit it)
  render_reference.py --check    re-render and compare with expected.json;
                                 exit 1 and name each difference

expected.json maps "template/conversation/agp=0|1" to {"output": text},
{"error": message} when the template raises, or {"failed": exception type}
when jinja2 itself fails on it (e.g. a template adding a null content to a
string). A conversation's "tools" and "variables" are passed as template
variables, as apply_chat_template(messages, tools=..., **kwargs) passes them. specula's test_chat renders the
same pairs with specula's own interpreter and requires the same bytes.

snippets.json holds small templates, one per Jinja feature (and per error a
template can make); expected_snippets.json has jinja2's output for each, or
the kind of error it raised, rendered with SNIPPET_MESSAGES as `messages`.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class GenerationTag(Extension):
    """{% generation %}...{% endgeneration %} renders its body in place, as
    transformers' AssistantTracker does when no assistant mask is asked for."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class TemplateRaised(TemplateError):
    """What raise_exception raises, told apart from jinja2's own errors."""


def make_environment():
    def raise_exception(message):
        raise TemplateRaised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_all():
    env = make_environment()
    with open(os.path.join(HERE, "templates.json"), encoding="utf-8") as f:
        templates = json.load(f)
    with open(os.path.join(HERE, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    results = {}
    for t in templates:
        with open(os.path.join(HERE, "templates", t["name"] + ".jinja"), encoding="utf-8",
                  newline="") as f:
            source = f.read()
        compiled = env.from_string(source)
        for c in conversations:
            for agp in (False, True):
                context = {"messages": c["messages"], "add_generation_prompt": agp,
                           "bos_token": t["bos_token"], "eos_token": t["eos_token"]}
                # As apply_chat_template(messages, tools=..., **kwargs) passes
                # them (chat_template_kwargs in llama-server and vLLM).
                if "tools" in c:
                    context["tools"] = c["tools"]
                context.update(c.get("variables", {}))
                key = "%s/%s/agp=%d" % (t["name"], c["name"], agp)
                try:
                    results[key] = {"output": compiled.render(**context)}
                except TemplateRaised as e:
                    results[key] = {"error": str(e)}
                except Exception as e:  # the template fails on this input (None + str,
                    # None.strip(), ...): jinja2's TypeError, UndefinedError, ...
                    results[key] = {"failed": type(e).__name__}
    return results


SNIPPET_MESSAGES = [
    {"role": "system", "content": "  sys  "},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bye"},
]


def render_snippets():
    env = make_environment()
    with open(os.path.join(HERE, "snippets.json"), encoding="utf-8") as f:
        snippets = json.load(f)
    results = {}
    for s in snippets:
        try:
            out = env.from_string(s["template"]).render(messages=SNIPPET_MESSAGES)
            results[s["name"]] = {"output": out}
        except Exception as e:  # syntax, undefined, type and sandbox errors alike
            kind = "TemplateError" if isinstance(e, TemplateRaised) else type(e).__name__
            results[s["name"]] = {"error": kind}
    return results


def check_or_write(results, name):
    path = os.path.join(HERE, name)
    if "--check" in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            expected = json.load(f)
        bad = [k for k in sorted(set(results) | set(expected))
               if results.get(k) != expected.get(k)]
        for k in bad:
            print("differs from %s: %s\n  jinja2:   %r\n  expected: %r"
                  % (name, k, results.get(k), expected.get(k)))
        print("%s: %d entries, %d differ (jinja2 %s)"
              % (name, len(results), len(bad), jinja2.__version__))
        return not bad
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d entries to %s" % (len(results), path))
    return True


def main():
    ok = check_or_write(render_all(), "expected.json")
    ok = check_or_write(render_snippets(), "expected_snippets.json") and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
