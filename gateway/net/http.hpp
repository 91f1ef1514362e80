// HTTP messages of the admin endpoint and the HTTPS login services (Beast).
// Internal to gateway/.
#pragma once

#include <boost/beast/http.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace switchyard::gateway {

namespace http = boost::beast::http;

using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

// Delivers the response to one request. Call it exactly once, from any
// thread: the connection carries on on its own thread.
using http_reply = std::function<void(http_response)>;

inline http_response make_response(const http_request& req, http::status status, std::string body,
                                   std::string_view content_type = "text/plain; charset=utf-8") {
    http_response res{status, req.version()};
    res.set(http::field::server, "switchyard");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

}  // namespace switchyard::gateway
