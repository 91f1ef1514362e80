// The browser page (gateway/web/), compiled into the binary by
// embed_web_assets.cmake, and the plain HTTP answers the WebSocket port
// gives: the page's files on GET and HEAD, 404 for other paths, 405 for
// other methods. No Asio or Beast: the connection turns a web_answer into
// its own response type.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard::gateway {

struct web_asset {
    std::string_view path;          // "/app.js"
    std::string_view content_type;  // with charset for text
    std::string_view body;
    std::string_view etag;          // quoted, from the file's SHA-256
};

// Every embedded file, sorted by path.
std::span<const web_asset> web_assets();

// The file served at `path` ("/" is "/index.html"), or null.
const web_asset* find_web_asset(std::string_view path);

struct web_answer {
    unsigned status = 200;
    std::string content_type;
    // Static file contents or a short text; a HEAD answer keeps the body's
    // size in content_length and sends no body.
    std::string body;
    std::size_t content_length = 0;
    bool send_body = true;
    std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type and Content-Length
};

// A short text answer (errors), with the same security headers.
web_answer web_text_answer(unsigned status, std::string text);

// The answer to a plain (not upgrade) HTTP request on the WebSocket port.
// `target` may carry a query, which is ignored; `if_none_match` is the
// request's If-None-Match header (a match answers 304).
web_answer answer_web_request(std::string_view method, std::string_view target, std::string_view if_none_match,
                              std::string_view ws_path);

}  // namespace switchyard::gateway
