#include "protocols/frame/wire.hpp"

#include "protocols/text/text.hpp"

#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace switchyard::frame {

namespace {

enum wire_type : std::uint8_t { wt_varint = 0, wt_length = 2 };

// Tags above this are unknown to every version-1 reader and skipped; the
// decoder tracks seen fields in one 64-bit mask.
constexpr std::uint32_t max_known_tag = 63;

template <class T>
concept visitable = requires(T& t, int& v) { t.visit(v); };

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};

// The frame header seen as a struct, so it shares the field machinery.
struct header_view {
    frame& f;
    template <class V> void visit(V& v) { f.visit_header(v); }
};

// ------------------------------------------------------------------ encoding

void put_varint(std::string& out, std::uint64_t v) {
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>(static_cast<std::uint8_t>(v) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

std::size_t varint_size(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

void put_key(std::string& out, std::uint32_t tag, wire_type wt) { put_varint(out, (std::uint64_t{tag} << 3) | wt); }

// Writes a one-byte length placeholder, runs `body`, then patches the real
// length in, moving the content only in the rare case it is 128 bytes or more.
template <class F> void put_length_delimited(std::string& out, F&& body) {
    const std::size_t at = out.size();
    out.push_back('\0');
    body();
    const std::size_t len = out.size() - at - 1;
    const std::size_t width = varint_size(len);
    if (width > 1) {
        out.insert(at + 1, width - 1, '\0');
    }
    std::string tmp;
    tmp.reserve(width);
    put_varint(tmp, len);
    std::memcpy(out.data() + at, tmp.data(), width);
}

struct encoder {
    std::string& out;

    void operator()(std::uint32_t tag, std::string_view, const std::string& s, std::size_t = 0) const {
        put_key(out, tag, wt_length);
        put_varint(out, s.size());
        out += s;
    }
    void operator()(std::uint32_t tag, std::string_view name, const bytes& b, std::size_t limit) const {
        (*this)(tag, name, b.data, limit);
    }
    void operator()(std::uint32_t tag, std::string_view, bool b) const {
        put_key(out, tag, wt_varint);
        out.push_back(b ? '\1' : '\0');
    }
    template <class I>
        requires std::is_integral_v<I> || std::is_enum_v<I>
    void operator()(std::uint32_t tag, std::string_view, I value) const {
        put_key(out, tag, wt_varint);
        if constexpr (std::is_enum_v<I>) {
            put_varint(out, static_cast<std::uint64_t>(static_cast<std::underlying_type_t<I>>(value)));
        } else {
            put_varint(out, static_cast<std::uint64_t>(value));
        }
    }
    template <visitable T> void operator()(std::uint32_t tag, std::string_view, const T& nested) const {
        put_key(out, tag, wt_length);
        put_length_delimited(out, [&] { encode_fields(nested); });
    }
    template <class T>
    void operator()(std::uint32_t tag, std::string_view name, const std::vector<T>& items, std::size_t,
                    std::size_t element_limit = 0) const {
        for (const T& item : items) {
            if constexpr (visitable<T>) {
                (*this)(tag, name, item);
            } else {
                (*this)(tag, name, item, element_limit);
            }
        }
    }

    template <class T> void encode_fields(const T& value) const {
        encoder e{out};
        // visit() only reads through the visitor when it is an encoder.
        const_cast<T&>(value).visit(e);
    }
};

// ------------------------------------------------------------------ decoding

struct reader {
    std::string_view data;
    std::size_t pos = 0;
    std::size_t base = 0;  // offset of data[0] within the whole frame

    std::size_t offset() const { return base + pos; }
    bool done() const { return pos >= data.size(); }

    tl::expected<std::uint64_t, errc> varint() {
        std::uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (pos >= data.size()) {
                return tl::unexpected(errc::truncated);
            }
            const auto byte = static_cast<std::uint8_t>(data[pos++]);
            if (shift == 63 && byte > 1) {
                return tl::unexpected(errc::bad_varint);
            }
            v |= std::uint64_t{byte & 0x7fu} << shift;
            if ((byte & 0x80) == 0) {
                return v;
            }
        }
        return tl::unexpected(errc::bad_varint);
    }
};

template <class T> tl::expected<void, decode_error> decode_fields(T& value, std::string_view data, std::size_t base);

// Matches one raw field against the declared fields of a struct; the struct's
// visit() calls it once per declared field.
struct field_decoder {
    std::uint32_t tag;
    wire_type wt;
    std::uint64_t number;     // the value, for varint fields
    std::string_view span;    // the content, for length-delimited fields
    std::size_t offset;       // of the field's key within the frame
    std::size_t span_offset;  // of span[0] within the frame
    std::uint64_t& seen;
    bool matched = false;
    std::optional<decode_error> failure;

    void fail(errc code, std::string_view name) { failure = decode_error{code, offset, name}; }

    // Common checks; false when this declared field is not the raw one or it failed.
    bool claim(std::uint32_t declared, std::string_view name, wire_type expected, bool repeated) {
        if (declared != tag || matched) {
            return false;
        }
        matched = true;
        if (wt != expected) {
            fail(errc::wrong_type, name);
            return false;
        }
        if (!repeated) {
            const std::uint64_t bit = std::uint64_t{1} << declared;
            if (seen & bit) {
                fail(errc::duplicate_field, name);
                return false;
            }
            seen |= bit;
        }
        return true;
    }

    bool take_string(std::string& out, std::string_view name, std::size_t limit, bool check_utf8) {
        if (limit != 0 && span.size() > limit) {
            fail(errc::oversize, name);
            return false;
        }
        if (check_utf8 && !text::is_valid_utf8(span)) {
            fail(errc::invalid_utf8, name);
            return false;
        }
        out.assign(span);
        return true;
    }

    void operator()(std::uint32_t declared, std::string_view name, std::string& s, std::size_t limit = 0) {
        if (claim(declared, name, wt_length, false)) {
            take_string(s, name, limit, true);
        }
    }
    void operator()(std::uint32_t declared, std::string_view name, bytes& b, std::size_t limit) {
        if (claim(declared, name, wt_length, false)) {
            take_string(b.data, name, limit, false);
        }
    }
    void operator()(std::uint32_t declared, std::string_view name, bool& b) {
        if (claim(declared, name, wt_varint, false)) {
            if (number > 1) {
                fail(errc::bad_value, name);
            } else {
                b = number == 1;
            }
        }
    }
    template <class I>
        requires std::is_integral_v<I> || std::is_enum_v<I>
    void operator()(std::uint32_t declared, std::string_view name, I& value) {
        if (!claim(declared, name, wt_varint, false)) {
            return;
        }
        if constexpr (std::is_enum_v<I>) {
            bool below_min = false;
            if constexpr (requires { enum_traits<I>::min_value; }) {
                below_min = number < enum_traits<I>::min_value;
            }
            if (below_min || number > enum_traits<I>::max_value) {
                fail(errc::bad_value, name);
                return;
            }
            value = static_cast<I>(number);
        } else {
            if (number > std::numeric_limits<I>::max()) {
                fail(errc::bad_value, name);
                return;
            }
            value = static_cast<I>(number);
        }
    }
    template <visitable T> void operator()(std::uint32_t declared, std::string_view name, T& nested) {
        if (claim(declared, name, wt_length, false)) {
            decode_nested(nested);
        }
    }
    template <class T>
    void operator()(std::uint32_t declared, std::string_view name, std::vector<T>& items, std::size_t max_count,
                    std::size_t element_limit = 0) {
        if (!claim(declared, name, wt_length, true)) {
            return;
        }
        if (items.size() >= max_count) {
            fail(errc::oversize, name);
            return;
        }
        T& item = items.emplace_back();
        if constexpr (visitable<T>) {
            decode_nested(item);
        } else {
            take_string(item, name, element_limit, true);
        }
    }

    template <class T> void decode_nested(T& nested) {
        if (auto r = decode_fields(nested, span, span_offset); !r) {
            failure = r.error();
        }
    }
};

// After all fields were read: every declared non-repeated field must have been seen.
struct presence_check {
    std::uint64_t seen;
    std::optional<decode_error> failure;
    std::size_t offset;

    template <class T, class... Limits> void operator()(std::uint32_t tag, std::string_view name, T&, Limits...) {
        if constexpr (!is_vector<T>::value) {
            if (!failure && (seen & (std::uint64_t{1} << tag)) == 0) {
                failure = decode_error{errc::missing_field, offset, name};
            }
        }
    }
};

template <class T> tl::expected<void, decode_error> decode_fields(T& value, std::string_view data, std::size_t base) {
    reader r{data, 0, base};
    std::uint64_t seen = 0;
    while (!r.done()) {
        const std::size_t key_offset = r.offset();
        auto key = r.varint();
        if (!key) {
            return tl::unexpected(decode_error{key.error(), key_offset, {}});
        }
        const auto wt = static_cast<std::uint8_t>(*key & 7);
        const std::uint64_t tag = *key >> 3;
        if (wt != wt_varint && wt != wt_length) {
            return tl::unexpected(decode_error{errc::bad_wire_type, key_offset, {}});
        }
        auto number = r.varint();
        if (!number) {
            return tl::unexpected(decode_error{number.error(), key_offset, {}});
        }
        std::string_view span;
        std::size_t span_offset = r.offset();
        if (wt == wt_length) {
            if (*number > data.size() - r.pos) {
                return tl::unexpected(decode_error{errc::truncated, key_offset, {}});
            }
            span = data.substr(r.pos, static_cast<std::size_t>(*number));
            r.pos += span.size();
        }
        if (tag == 0 || tag > max_known_tag) {
            continue;  // unknown field from a newer writer: skipped
        }
        field_decoder d{static_cast<std::uint32_t>(tag), static_cast<wire_type>(wt), *number, span, key_offset,
                        span_offset, seen, false, std::nullopt};
        value.visit(d);
        if (d.failure) {
            return tl::unexpected(*d.failure);
        }
    }
    presence_check check{seen, std::nullopt, base};
    value.visit(check);
    if (check.failure) {
        return tl::unexpected(*check.failure);
    }
    return {};
}

// Body constructors by wire type id (index + 1).
template <std::size_t... I> constexpr auto make_body_table(std::index_sequence<I...>) {
    return std::array<body (*)(), sizeof...(I)>{+[]() -> body { return body{std::in_place_index<I>}; }...};
}
constexpr auto body_table = make_body_table(std::make_index_sequence<type_count>{});

template <std::size_t... I> constexpr bool type_ids_are_dense(std::index_sequence<I...>) {
    return ((std::variant_alternative_t<I, body>::type_id == I + 1) && ...);
}
static_assert(type_ids_are_dense(std::make_index_sequence<type_count>{}),
              "body alternatives must be listed in type_id order, starting at 1");

template <std::size_t... I> constexpr auto make_name_table(std::index_sequence<I...>) {
    return std::array<std::string_view, sizeof...(I)>{std::variant_alternative_t<I, body>::name...};
}
constexpr auto name_table = make_name_table(std::make_index_sequence<type_count>{});

}  // namespace

std::string_view to_string(errc e) {
    switch (e) {
    case errc::truncated: return "truncated";
    case errc::bad_version: return "unsupported version";
    case errc::unknown_type: return "unknown frame type";
    case errc::bad_wire_type: return "bad wire type";
    case errc::wrong_type: return "wrong field type";
    case errc::missing_field: return "missing field";
    case errc::duplicate_field: return "duplicate field";
    case errc::oversize: return "oversize";
    case errc::invalid_utf8: return "invalid UTF-8";
    case errc::bad_value: return "value out of range";
    case errc::bad_varint: return "bad varint";
    }
    return "unknown error";
}

std::string decode_error::to_string() const {
    std::string s{switchyard::frame::to_string(code)};
    if (!field.empty()) {
        s += " '";
        s += field;
        s += '\'';
    }
    s += " at byte ";
    s += std::to_string(offset);
    return s;
}

std::string_view type_name(std::size_t index) { return index < name_table.size() ? name_table[index] : "unknown"; }
std::string_view type_name(const frame& f) { return type_name(f.content.index()); }

std::uint8_t version_of(const frame& f) { return f.content.index() + 1 <= last_v1_type ? 1 : 2; }

void encode(const frame& f, std::string& out) {
    out.push_back(static_cast<char>(version_of(f)));
    out.push_back(static_cast<char>(f.content.index() + 1));
    encoder e{out};
    put_length_delimited(out, [&] { e.encode_fields(header_view{const_cast<frame&>(f)}); });
    std::visit([&](const auto& b) { e.encode_fields(b); }, f.content);
}

std::string encode(const frame& f) {
    std::string out;
    encode(f, out);
    return out;
}

void encode_record(const frame& f, std::string& out) {
    const std::size_t at = out.size();
    out.append(record_prefix, '\0');
    encode(f, out);
    const auto len = static_cast<std::uint32_t>(out.size() - at - record_prefix);
    for (std::size_t i = 0; i < record_prefix; ++i) {
        out[at + i] = static_cast<char>(len >> (8 * (record_prefix - 1 - i)));
    }
}

tl::expected<frame, decode_error> decode(std::string_view bytes, std::size_t max_frame) {
    if (bytes.size() > max_frame) {
        return tl::unexpected(decode_error{errc::oversize, 0, {}});
    }
    if (bytes.size() < 2) {
        return tl::unexpected(decode_error{errc::truncated, bytes.size(), {}});
    }
    const auto version = static_cast<std::uint8_t>(bytes[0]);
    if (version == 0 || version > wire_version) {
        return tl::unexpected(decode_error{errc::bad_version, 0, {}});
    }
    const auto type = static_cast<std::uint8_t>(bytes[1]);
    if (type == 0 || type > (version == 1 ? last_v1_type : type_count)) {
        return tl::unexpected(decode_error{errc::unknown_type, 1, {}});
    }
    reader r{bytes, 2, 0};
    auto header_len = r.varint();
    if (!header_len) {
        return tl::unexpected(decode_error{header_len.error(), 2, {}});
    }
    if (*header_len > bytes.size() - r.pos) {
        return tl::unexpected(decode_error{errc::truncated, 2, {}});
    }
    const std::size_t header_at = r.pos;
    const std::size_t body_at = header_at + static_cast<std::size_t>(*header_len);
    frame f{.corr = 0, .object = {}, .sender = {}, .content = body_table[type - 1]()};
    header_view header{f};
    if (auto h = decode_fields(header, bytes.substr(header_at, body_at - header_at), header_at); !h) {
        return tl::unexpected(h.error());
    }
    auto b = std::visit([&](auto& content) { return decode_fields(content, bytes.substr(body_at), body_at); },
                        f.content);
    if (!b) {
        return tl::unexpected(b.error());
    }
    return f;
}

tl::expected<std::optional<frame>, decode_error> record_decoder::next() {
    if (failed_) {
        return tl::unexpected(*failed_);
    }
    const std::string_view pending = std::string_view{buffer_}.substr(consumed_);
    if (pending.size() < record_prefix) {
        return std::nullopt;
    }
    std::size_t len = 0;
    for (std::size_t i = 0; i < record_prefix; ++i) {
        len = (len << 8) | static_cast<std::uint8_t>(pending[i]);
    }
    if (len > max_frame_) {
        failed_ = decode_error{errc::oversize, 0, {}};
        return tl::unexpected(*failed_);
    }
    if (pending.size() < record_prefix + len) {
        return std::nullopt;
    }
    auto f = decode(pending.substr(record_prefix, len), max_frame_);
    if (!f) {
        failed_ = f.error();
        return tl::unexpected(*failed_);
    }
    consumed_ += record_prefix + len;
    // Compact once the consumed prefix dominates, keeping feed() amortised O(n).
    if (consumed_ > 4096 && consumed_ * 2 > buffer_.size()) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    return std::optional<frame>{std::move(*f)};
}

}  // namespace switchyard::frame
