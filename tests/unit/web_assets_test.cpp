// The browser page as the binary serves it: the embedded files and the
// plain HTTP answers of the WebSocket port (gateway/net/web_assets.hpp).
#include "gateway/net/web_assets.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace switchyard::gateway;

namespace {

std::string header(const web_answer& a, std::string_view name) {
    const auto it = std::ranges::find(a.headers, name, [](const auto& kv) { return std::string_view(kv.first); });
    return it == a.headers.end() ? std::string{} : it->second;
}

}  // namespace

TEST_CASE("the page's files are embedded with their content types", "[web]") {
    const web_asset* index = find_web_asset("/");
    REQUIRE(index);
    CHECK(index == find_web_asset("/index.html"));
    CHECK(index->content_type == "text/html; charset=utf-8");
    CHECK(index->body.starts_with("<!doctype html>"));
    CHECK(index->etag.starts_with("\""));
    CHECK(index->etag.ends_with("\""));

    const web_asset* js = find_web_asset("/app.js");
    REQUIRE(js);
    CHECK(js->content_type == "text/javascript; charset=utf-8");
    REQUIRE(find_web_asset("/style.css"));
    CHECK(find_web_asset("/style.css")->content_type == "text/css; charset=utf-8");
    REQUIRE(find_web_asset("/icon.svg"));
    CHECK(find_web_asset("/icon.svg")->content_type == "image/svg+xml");

    // Every file the page names is served.
    for (const char* name : {"app.js", "style.css", "icon.svg"}) {
        INFO(name);
        CHECK(index->body.find(name) != std::string_view::npos);
    }
    CHECK_FALSE(find_web_asset("/nothing.js"));
    CHECK_FALSE(find_web_asset(""));
    CHECK_FALSE(find_web_asset("/../CMakeLists.txt"));
}

TEST_CASE("GET and HEAD serve the page with security headers; other requests are refused", "[web]") {
    const auto get = answer_web_request("GET", "/?from=bookmark", "", "/ws");
    CHECK(get.status == 200);
    CHECK(get.content_type == "text/html; charset=utf-8");
    CHECK(get.send_body);
    CHECK(get.body == find_web_asset("/")->body);
    CHECK(get.content_length == get.body.size());
    CHECK(header(get, "Cache-Control") == "no-cache");
    CHECK(header(get, "X-Content-Type-Options") == "nosniff");
    CHECK(header(get, "ETag") == find_web_asset("/")->etag);
    const std::string csp = header(get, "Content-Security-Policy");
    CHECK(csp.find("default-src 'self'") != std::string::npos);
    CHECK(csp.find("script-src 'self'") != std::string::npos);
    CHECK(csp.find("unsafe-inline") == std::string::npos);

    const auto head = answer_web_request("HEAD", "/app.js", "", "/ws");
    CHECK(head.status == 200);
    CHECK_FALSE(head.send_body);
    CHECK(head.body.empty());
    CHECK(head.content_length == find_web_asset("/app.js")->body.size());

    const std::string etag(find_web_asset("/style.css")->etag);
    const auto cached = answer_web_request("GET", "/style.css", "\"other\", " + etag, "/ws");
    CHECK(cached.status == 304);
    CHECK_FALSE(cached.send_body);
    CHECK(answer_web_request("GET", "/style.css", "W/" + etag, "/ws").status == 304);
    CHECK(answer_web_request("GET", "/style.css", "\"stale\"", "/ws").status == 200);

    const auto missing = answer_web_request("GET", "/admin", "", "/ws");
    CHECK(missing.status == 404);
    CHECK(header(missing, "X-Content-Type-Options") == "nosniff");

    const auto post = answer_web_request("POST", "/", "", "/ws");
    CHECK(post.status == 405);
    CHECK(header(post, "Allow") == "GET, HEAD");

    const auto plain_ws = answer_web_request("GET", "/ws", "", "/ws");
    CHECK(plain_ws.status == 426);
    CHECK(header(plain_ws, "Upgrade") == "websocket");
}
