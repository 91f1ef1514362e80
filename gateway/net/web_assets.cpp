// The page's files and the HTTP answers around them (web_assets.hpp).
#include "gateway/net/web_assets.hpp"

#include <algorithm>

namespace switchyard::gateway {

namespace web_data {
extern const web_asset table[];
extern const std::size_t table_size;
}  // namespace web_data

namespace {

// The page loads nothing from elsewhere and runs no inline script or style;
// 'self' in connect-src covers ws:// and wss:// to the page's own host.
constexpr std::string_view content_security_policy =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

void common_headers(web_answer& a) {
    a.headers.emplace_back("X-Content-Type-Options", "nosniff");
    a.headers.emplace_back("Referrer-Policy", "no-referrer");
    a.headers.emplace_back("Content-Security-Policy", std::string(content_security_policy));
}

}  // namespace

web_answer web_text_answer(unsigned status, std::string text) {
    web_answer a;
    a.status = status;
    a.content_type = "text/plain; charset=utf-8";
    a.body = std::move(text);
    a.content_length = a.body.size();
    common_headers(a);
    return a;
}

namespace {

// One entry of an If-None-Match list matches the ETag (weak comparison, as
// RFC 9110 section 13.1.2 asks for GET and HEAD).
bool etag_matches(std::string_view header, std::string_view etag) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.starts_with("W/")) item.remove_prefix(2);
        if (item == "*" || item == etag) return true;
    }
    return false;
}

}  // namespace

std::span<const web_asset> web_assets() { return {web_data::table, web_data::table_size}; }

const web_asset* find_web_asset(std::string_view path) {
    if (path == "/") path = "/index.html";
    const auto all = web_assets();
    const auto it = std::ranges::find(all, path, &web_asset::path);
    return it == all.end() ? nullptr : &*it;
}

web_answer answer_web_request(std::string_view method, std::string_view target, std::string_view if_none_match,
                              std::string_view ws_path) {
    const std::string_view path = target.substr(0, target.find('?'));
    const web_asset* asset = find_web_asset(path);
    if (!asset) {
        if (path == ws_path) {
            web_answer a = web_text_answer(426, "WebSocket clients upgrade on " + std::string(ws_path) + "\n");
            a.headers.emplace_back("Upgrade", "websocket");
            return a;
        }
        return web_text_answer(404, "not found\n");
    }
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
        web_answer a = web_text_answer(405, "only GET and HEAD are served here\n");
        a.headers.emplace_back("Allow", "GET, HEAD");
        return a;
    }
    web_answer a;
    a.content_type = std::string(asset->content_type);
    common_headers(a);
    a.headers.emplace_back("Cache-Control", "no-cache");
    a.headers.emplace_back("ETag", std::string(asset->etag));
    if (!if_none_match.empty() && etag_matches(if_none_match, asset->etag)) {
        a.status = 304;
        a.send_body = false;
        return a;
    }
    a.content_length = asset->body.size();
    a.send_body = !head;
    if (a.send_body) a.body = std::string(asset->body);
    return a;
}

}  // namespace switchyard::gateway
