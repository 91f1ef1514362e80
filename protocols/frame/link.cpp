#include "protocols/frame/link.hpp"

#include "protocols/text/text.hpp"

namespace switchyard::frame::link {

namespace {

enum kind : std::uint8_t {
    k_open = 1,
    k_accept = 2,
    k_refuse = 3,
    k_request = 4,
    k_reply = 5,
    k_subscribe = 6,
    k_unsubscribe = 7,
    k_publish = 8,
    k_ping = 9,
    k_pong = 10,
    // 11 and 12 carried account checks before accounts became frames
    // (wire version 2); they are not reused.
    k_received = 13,
};

// Fields outside frames: u8, u64 as 8 bytes big-endian, strings as a
// 2-byte big-endian length then the bytes.
void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
        out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
}
void put_string(std::string& out, std::string_view s) {
    const auto n = static_cast<std::uint16_t>(std::min(s.size(), max_name));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(s.substr(0, n));
}

class reader {
public:
    explicit reader(std::string_view data) : data_(data) {}

    std::optional<std::uint8_t> u8() {
        if (data_.empty()) return std::nullopt;
        const auto v = static_cast<std::uint8_t>(data_[0]);
        data_.remove_prefix(1);
        return v;
    }
    std::optional<std::uint64_t> u64() {
        if (data_.size() < 8) return std::nullopt;
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) {
            v = (v << 8) | static_cast<std::uint8_t>(data_[i]);
        }
        data_.remove_prefix(8);
        return v;
    }
    std::optional<std::string> string() {
        if (data_.size() < 2) return std::nullopt;
        const std::size_t n = (static_cast<std::uint8_t>(data_[0]) << 8) | static_cast<std::uint8_t>(data_[1]);
        if (n > max_name || data_.size() < 2 + n) return std::nullopt;
        std::string s(data_.substr(2, n));
        data_.remove_prefix(2 + n);
        if (!text::is_valid_utf8(s)) return std::nullopt;
        return s;
    }
    std::string_view rest() const { return data_; }
    bool done() const { return data_.empty(); }

private:
    std::string_view data_;
};

template <class... F> struct overloaded : F... {
    using F::operator()...;
};

}  // namespace

std::string_view name(const message& m) {
    static constexpr std::string_view names[] = {"open",        "accept",  "refuse", "request", "reply",
                                                 "subscribe",   "unsubscribe", "publish", "ping", "pong",
                                                 "received"};
    return names[m.index()];
}

void encode(const message& m, std::string& out) {
    const std::size_t start = out.size();
    out.append(record_prefix, '\0');
    std::visit(overloaded{
                   [&](const open& o) {
                       put_u8(out, k_open);
                       put_string(out, magic);
                       put_u8(out, o.lowest);
                       put_u8(out, o.highest);
                       put_string(out, o.gateway);
                       put_string(out, o.incarnation);
                       put_u64(out, o.received);
                   },
                   [&](const accept& a) {
                       put_u8(out, k_accept);
                       put_u8(out, a.version);
                       put_string(out, a.backend);
                       put_u64(out, a.lease_ms);
                       put_u8(out, a.resumed ? 1 : 0);
                   },
                   [&](const refuse& r) {
                       put_u8(out, k_refuse);
                       put_string(out, r.reason);
                   },
                   [&](const request& r) {
                       put_u8(out, k_request);
                       switchyard::frame::encode(r.f, out);
                   },
                   [&](const reply& r) {
                       put_u8(out, k_reply);
                       switchyard::frame::encode(r.f, out);
                   },
                   [&](const subscribe& s) {
                       put_u8(out, k_subscribe);
                       put_string(out, s.object);
                   },
                   [&](const unsubscribe& s) {
                       put_u8(out, k_unsubscribe);
                       put_string(out, s.object);
                   },
                   [&](const publish& p) {
                       put_u8(out, k_publish);
                       put_u64(out, p.seq);
                       switchyard::frame::encode(p.f, out);
                   },
                   [&](const received& r) {
                       put_u8(out, k_received);
                       put_u64(out, r.seq);
                   },
                   [&](const ping&) { put_u8(out, k_ping); },
                   [&](const pong&) { put_u8(out, k_pong); },
               },
               m);
    const std::size_t n = out.size() - start - record_prefix;
    for (std::size_t i = 0; i < record_prefix; ++i) {
        out[start + i] = static_cast<char>((n >> (8 * (record_prefix - 1 - i))) & 0xff);
    }
}

void encode_publish(std::uint64_t seq, std::string_view encoded_frame, std::string& out) {
    const std::size_t n = 1 + 8 + encoded_frame.size();
    for (std::size_t i = 0; i < record_prefix; ++i) {
        out.push_back(static_cast<char>((n >> (8 * (record_prefix - 1 - i))) & 0xff));
    }
    put_u8(out, k_publish);
    put_u64(out, seq);
    out.append(encoded_frame);
}

tl::expected<std::optional<message>, std::string> decoder::next() {
    if (failed_) {
        return tl::unexpected(*failed_);
    }
    const auto fail = [this](std::string reason) -> tl::expected<std::optional<message>, std::string> {
        failed_ = reason;
        return tl::unexpected(std::move(reason));
    };
    // Drops what earlier calls consumed, before `pending` (and the reader
    // below) view the buffer: messages copy what they keep.
    if (consumed_ == buffer_.size()) {
        buffer_.clear();
        consumed_ = 0;
    } else if (consumed_ > 65536 && consumed_ * 2 > buffer_.size()) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    const std::string_view pending = std::string_view(buffer_).substr(consumed_);
    if (pending.size() < record_prefix) {
        return std::nullopt;
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < record_prefix; ++i) {
        n = (n << 8) | static_cast<std::uint8_t>(pending[i]);
    }
    // One kind byte on top of the largest frame.
    if (n > max_frame_ + 1) {
        return fail("a message of " + std::to_string(n) + " bytes is over the limit");
    }
    if (n == 0) {
        return fail("an empty message");
    }
    if (pending.size() < record_prefix + n) {
        return std::nullopt;
    }
    reader in(pending.substr(record_prefix, n));
    consumed_ += record_prefix + n;

    const auto kind = *in.u8();
    const auto with_frame = [&](auto wrap) -> tl::expected<std::optional<message>, std::string> {
        auto f = switchyard::frame::decode(in.rest(), max_frame_);
        if (!f) {
            return fail("a frame that does not decode: " + f.error().to_string());
        }
        return message{wrap(std::move(*f))};
    };
    const auto malformed = [&] { return fail("a malformed message of kind " + std::to_string(kind)); };
    switch (kind) {
        case k_open: {
            auto m = in.string();
            if (!m || *m != magic) {
                return fail("not a switchyard link");
            }
            auto lowest = in.u8();
            auto highest = in.u8();
            auto gateway = in.string();
            auto incarnation = in.string();
            // Gateways that predate it leave `received` out: none.
            const auto received = in.done() ? std::optional<std::uint64_t>(0) : in.u64();
            if (!lowest || !highest || !gateway || !incarnation || !received) {
                return malformed();
            }
            // Later versions may append fields to `open`; this one ignores them.
            return message{open{*lowest, *highest, std::move(*gateway), std::move(*incarnation), *received}};
        }
        case k_accept: {
            auto version = in.u8();
            auto backend = in.string();
            auto lease = in.u64();
            auto resumed = in.u8();
            if (!version || !backend || !lease || !resumed || *resumed > 1) {
                return malformed();
            }
            return message{accept{*version, std::move(*backend), *lease, *resumed == 1}};
        }
        case k_refuse: {
            auto reason = in.string();
            if (!reason) {
                return malformed();
            }
            return message{refuse{std::move(*reason)}};
        }
        case k_request:
            return with_frame([](frame f) { return request{std::move(f)}; });
        case k_reply:
            return with_frame([](frame f) { return reply{std::move(f)}; });
        case k_publish: {
            const auto seq = in.u64();
            if (!seq) {
                return malformed();
            }
            return with_frame([seq](frame f) { return publish{*seq, std::move(f)}; });
        }
        case k_received: {
            const auto seq = in.u64();
            if (!seq || !in.done()) {
                return malformed();
            }
            return message{received{*seq}};
        }
        case k_subscribe:
        case k_unsubscribe: {
            auto object = in.string();
            if (!object || !in.done()) {
                return malformed();
            }
            if (kind == k_subscribe) {
                return message{subscribe{std::move(*object)}};
            }
            return message{unsubscribe{std::move(*object)}};
        }
        case k_ping:
            return in.done() ? tl::expected<std::optional<message>, std::string>(message{ping{}}) : malformed();
        case k_pong:
            return in.done() ? tl::expected<std::optional<message>, std::string>(message{pong{}}) : malformed();
        default:
            return fail("an unknown message kind " + std::to_string(kind));
    }
}

}  // namespace switchyard::frame::link
