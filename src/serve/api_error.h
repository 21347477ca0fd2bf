// An error answered to an HTTP client, shaped as OpenAI's:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// `param` names the request field at fault, so a client can tell which of
// its values to fix.
#pragma once

#include <stdexcept>
#include <string>

namespace specula {

struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = "",
           std::string type = "invalid_request_error", std::string code = "")
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        type(std::move(type)),
        code(std::move(code)) {}

  int status;         // HTTP status: 400, 401, 404, 413, 429, 500, 503
  std::string param;  // the request field at fault; empty: none (JSON null)
  std::string type;   // "invalid_request_error", "authentication_error", ...
  std::string code;   // a machine-readable reason; empty: none (JSON null)
};

// A 400 naming `param`.
[[noreturn]] inline void bad_request(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

}  // namespace specula
