#include "protocols/frame/wire.hpp"

#include <charconv>
#include <type_traits>

namespace switchyard::frame {

namespace {

template <class T>
concept visitable = requires(T& t, int& v) { t.visit(v); };

void put_quoted(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            // Bytes >= 0x80 are kept: string fields are valid UTF-8, and a
            // dump should stay readable for non-Latin names.
            if (u < 0x20 || u == 0x7f) {
                out += "\\x";
                out.push_back(hex[u >> 4]);
                out.push_back(hex[u & 15]);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

void put_bytes(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += "0x";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(hex[u >> 4]);
        out.push_back(hex[u & 15]);
    }
}

struct dumper {
    std::string& out;
    bool first = true;

    void key(std::string_view name) {
        if (!first) {
            out.push_back(' ');
        }
        first = false;
        out += name;
        out.push_back('=');
    }
    void value(const std::string& s) { put_quoted(out, s); }
    void value(const bytes& b) { put_bytes(out, b.data); }
    void value(bool b) { out += b ? "true" : "false"; }
    template <class I>
        requires std::is_integral_v<I> || std::is_enum_v<I>
    void value(I v) {
        if constexpr (std::is_enum_v<I>) {
            out += to_string(v);
        } else {
            char buf[24];
            auto r = std::to_chars(buf, buf + sizeof buf, v);
            out.append(buf, r.ptr);
        }
    }
    template <visitable T> void value(const T& nested) {
        out.push_back('{');
        dumper inner{out};
        const_cast<T&>(nested).visit(inner);
        out.push_back('}');
    }
    template <class T> void value(const std::vector<T>& items) {
        out.push_back('[');
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (i) {
                out.push_back(',');
            }
            value(items[i]);
        }
        out.push_back(']');
    }

    template <class T, class... Limits> void operator()(std::uint32_t, std::string_view name, const T& v, Limits...) {
        key(name);
        value(v);
    }
};

}  // namespace

std::string to_text(const frame& f) {
    std::string out{type_name(f)};
    dumper d{out, false};
    const_cast<frame&>(f).visit_header(d);
    std::visit([&](const auto& b) { const_cast<std::remove_cvref_t<decltype(b)>&>(b).visit(d); }, f.content);
    return out;
}

}  // namespace switchyard::frame
