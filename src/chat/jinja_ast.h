// The syntax tree of a parsed template. Every node keeps the byte offset of
// its source so that errors name the line and column.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace specula::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,      // value
    kName,         // name
    kList,         // args
    kTuple,        // args
    kDict,         // args: key, value, key, value, ...
    kAttribute,    // args[0].name
    kIndex,        // args[0][args[1]]
    kSlice,        // args[0][args[1]:args[2]:args[3]] (null parts omitted)
    kCall,         // args[0](args[1..], kwargs)
    kFilter,       // args[0] | name(args[1..], kwargs)
    kTest,         // args[0] is [not] name(args[1..])
    kUnary,        // op args[0]: "not", "-", "+"
    kBinary,       // args[0] op args[1]: + - * / // % ** ~ and or in "not in"
    kCompare,      // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
    kConditional,  // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  size_t offset = 0;
  std::string name;      // name, attribute, filter, test, or operator
  Value value;           // kLiteral
  bool negated = false;  // kTest: "is not"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroDefinition {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when none
  Body body;
};

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conditions[i] -> bodies[i]; else_body
    kFor,       // targets in expr [if filter]: bodies[0]; else_body
    kSet,       // targets (or ns.attr in attribute) = expr
    kSetBlock,  // {% set targets[0] %}bodies[0]{% endset %}
    kMacro,     // macro
    kBreak,
    kContinue,
    kScope,  // bodies[0] rendered in place ({% generation %})
  };
  Kind kind;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body else_body;
  std::vector<std::string> targets;
  std::string attribute;  // kSet on a namespace: {% set ns.attribute = ... %}
  std::shared_ptr<const MacroDefinition> macro;
};

}  // namespace specula::jinja
