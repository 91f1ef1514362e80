#include "protocols/msnp/msnp.hpp"

#include <algorithm>

namespace switchyard::msnp {

namespace {

bool is_trid(std::string_view token) {
    return !token.empty() && token.size() <= 10 &&
           std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

step connection::feed(std::string_view bytes) {
    step out;
    pending_.append(bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(pending_.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.size() > max_line_) {
            return {std::move(out.output), true, "command line too long"};
        }
        if (line.empty()) {
            continue;
        }
        // Command, then TrID: echo the TrID when there is one (§2.2).
        const std::size_t sp = line.find(' ');
        std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        const std::string_view trid = rest.substr(0, rest.find(' '));
        out.output += "502";
        if (is_trid(trid)) {
            out.output.push_back(' ');
            out.output += trid;
        }
        out.output += "\r\n";
    }
    pending_.erase(0, start);
    if (pending_.size() > max_line_) {
        out.close = true;
        out.close_reason = "command line too long";
    }
    return out;
}

}  // namespace switchyard::msnp
