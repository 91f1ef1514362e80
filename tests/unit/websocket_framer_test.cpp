// The RFC 6455 framer alone, with hand-made client frames.
#include "protocols/websocket/framer.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace ws = switchyard::websocket;
using namespace std::string_literals;

namespace {

// A client frame: masked unless told otherwise.
std::string client_frame(std::uint8_t opcode, std::string_view payload, bool fin = true, bool masked = true,
                         std::uint8_t rsv = 0) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | rsv | opcode));
    const char mask_bit = masked ? static_cast<char>(0x80) : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(mask_bit | static_cast<char>(payload.size())));
    } else if (payload.size() <= 0xFFFF) {
        f.push_back(static_cast<char>(mask_bit | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size() & 0xFF));
    } else {
        f.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>((payload.size() >> shift) & 0xFF));
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) f.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        f.push_back(masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i]);
    }
    return f;
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

// The code of an encoded server close frame.
std::uint16_t code_of(std::string_view frame) {
    REQUIRE(frame.size() >= 4);
    REQUIRE(static_cast<unsigned char>(frame[0]) == 0x88);
    return static_cast<std::uint16_t>((static_cast<unsigned char>(frame[2]) << 8) | static_cast<unsigned char>(frame[3]));
}

}  // namespace

TEST_CASE("a masked text frame is one message; an idle framer holds no bytes") {
    ws::framer f;
    auto out = f.feed(client_frame(0x1, "hello"));
    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].text);
    CHECK(out.messages[0].data == "hello");
    CHECK(out.send.empty());
    CHECK_FALSE(out.finished);
    CHECK(f.buffered() == 0);
}

TEST_CASE("frames split anywhere and several in one read") {
    const std::string two = client_frame(0x1, "first") + client_frame(0x2, std::string(300, 'x'));
    for (std::size_t cut = 0; cut <= two.size(); ++cut) {
        ws::framer f;
        auto a = f.feed(std::string_view(two).substr(0, cut));
        auto b = f.feed(std::string_view(two).substr(cut));
        a.messages.insert(a.messages.end(), b.messages.begin(), b.messages.end());
        REQUIRE(a.messages.size() == 2);
        CHECK(a.messages[0].data == "first");
        CHECK_FALSE(a.messages[1].text);
        CHECK(a.messages[1].data == std::string(300, 'x'));
        CHECK(f.buffered() == 0);
    }
}

TEST_CASE("fragmented messages with control frames between fragments") {
    ws::framer f;
    auto out = f.feed(client_frame(0x1, "one ", false));
    CHECK(out.messages.empty());
    CHECK(f.buffered() == 4);
    out = f.feed(client_frame(0x9, "p") + client_frame(0x0, "two ", false) + client_frame(0xA, "") +
                 client_frame(0x0, "three"));
    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].text);
    CHECK(out.messages[0].data == "one two three");
    CHECK(out.send == ws::framer::encode_pong("p"));
    CHECK(f.buffered() == 0);
}

TEST_CASE("64-bit lengths decode") {
    ws::framer f(1 << 20);
    const std::string big(70000, 'a');
    auto out = f.feed(client_frame(0x1, big));
    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].data == big);
}

TEST_CASE("ping is answered with a pong of the same payload; pong is ignored") {
    ws::framer f;
    auto out = f.feed(client_frame(0x9, "abc"));
    CHECK(out.send == "\x8A\x03" "abc"s);
    out = f.feed(client_frame(0xA, "zz"));
    CHECK(out.send.empty());
    CHECK(out.messages.empty());
    CHECK_FALSE(out.finished);
}

TEST_CASE("a client's close is echoed and finishes the framer") {
    ws::framer f;
    auto out = f.feed(client_frame(0x8, close_payload(1000, "bye")));
    CHECK(out.finished);
    CHECK_FALSE(out.refused);
    CHECK(code_of(out.send) == 1000);
    CHECK(out.close_code == 1000);
    CHECK(out.close_reason == "bye");
    CHECK(f.finished());
    CHECK(f.feed(client_frame(0x1, "late")).messages.empty());

    ws::framer empty;
    out = empty.feed(client_frame(0x8, ""));
    CHECK(out.finished);
    CHECK(out.send == "\x88\x00"s);
}

TEST_CASE("malformed close frames are refused with 1002") {
    for (const std::string& payload : {"x"s, close_payload(999), close_payload(1005), close_payload(1006), close_payload(5000)}) {
        ws::framer f;
        auto out = f.feed(client_frame(0x8, payload));
        CHECK(out.finished);
        CHECK(out.refused);
        CHECK(code_of(out.send) == 1002);
    }
    ws::framer f;
    auto out = f.feed(client_frame(0x8, close_payload(1000, "\xff")));
    CHECK(code_of(out.send) == 1007);
}

TEST_CASE("after our close only the client's close is looked for") {
    ws::framer f;
    const std::string c = f.close(1008, "too fast");
    CHECK(code_of(c) == 1008);
    CHECK(c.substr(4) == "too fast");
    CHECK(f.close_sent());
    CHECK(f.close(1000, "again").empty());
    auto out = f.feed(client_frame(0x1, "ignored") + client_frame(0x9, "p"));
    CHECK(out.messages.empty());
    CHECK(out.send.empty());
    out = f.feed(client_frame(0x8, close_payload(1008)));
    CHECK(out.finished);
    CHECK(out.send.empty());
}

TEST_CASE("unmasked client frames are refused with 1002") {
    ws::framer f;
    auto out = f.feed(client_frame(0x1, "hi", true, false));
    CHECK(out.finished);
    CHECK(out.refused);
    CHECK(out.messages.empty());
    CHECK(code_of(out.send) == 1002);
    CHECK(f.buffered() == 0);
}

TEST_CASE("reserved bits and reserved opcodes are refused with 1002") {
    for (const std::string& frame : {client_frame(0x1, "x", true, true, 0x40), client_frame(0x1, "x", true, true, 0x20),
                                     client_frame(0x1, "x", true, true, 0x10), client_frame(0x3, "x"),
                                     client_frame(0x7, "x"), client_frame(0xB, "x"), client_frame(0xF, "x")}) {
        ws::framer f;
        auto out = f.feed(frame);
        CHECK(out.refused);
        CHECK(code_of(out.send) == 1002);
    }
}

TEST_CASE("control frames over 125 bytes or fragmented are refused with 1002") {
    {
        ws::framer f;
        CHECK(code_of(f.feed(client_frame(0x9, std::string(126, 'p'))).send) == 1002);
    }
    {
        ws::framer f;
        CHECK(f.feed(client_frame(0x9, std::string(125, 'p'))).send.size() == 127);
    }
    {
        ws::framer f;
        CHECK(code_of(f.feed(client_frame(0x9, "p", false)).send) == 1002);
    }
}

TEST_CASE("continuation rules: none without a message, no new message inside one") {
    {
        ws::framer f;
        CHECK(code_of(f.feed(client_frame(0x0, "x")).send) == 1002);
    }
    {
        ws::framer f;
        CHECK(code_of(f.feed(client_frame(0x1, "a", false) + client_frame(0x1, "b")).send) == 1002);
    }
}

TEST_CASE("a message over the limit is refused with 1009 and a reason, before its payload arrives") {
    ws::framer f(10);
    CHECK(f.feed(client_frame(0x1, std::string(10, 'a'))).messages.size() == 1);
    const std::string frame = client_frame(0x1, std::string(11, 'a'));
    auto out = f.feed(std::string_view(frame).substr(0, 2));
    CHECK(out.refused);
    CHECK(code_of(out.send) == 1009);
    CHECK(out.close_reason == "message over 10 bytes");
    CHECK(out.send.substr(4) == "message over 10 bytes");

    ws::framer g(10);
    out = g.feed(client_frame(0x1, "123456", false) + client_frame(0x0, "7890a"));
    CHECK(code_of(out.send) == 1009);
    CHECK(g.buffered() == 0);
}

TEST_CASE("text that is not UTF-8 is refused with 1007; binary is not checked") {
    {
        ws::framer f;
        auto out = f.feed(client_frame(0x1, "ok") + client_frame(0x1, "\xc3\x28"));
        REQUIRE(out.messages.size() == 1);
        CHECK(out.messages[0].data == "ok");
        CHECK(code_of(out.send) == 1007);
    }
    {
        // A sequence split across fragments is valid once whole.
        ws::framer f;
        auto out = f.feed(client_frame(0x1, "\xe2\x82", false) + client_frame(0x0, "\xac"));
        REQUIRE(out.messages.size() == 1);
        CHECK(out.messages[0].data == "\xe2\x82\xac");
    }
    {
        ws::framer f;
        CHECK(f.feed(client_frame(0x2, "\xff")).messages.size() == 1);
    }
}

TEST_CASE("server frames are unmasked with the shortest length form") {
    CHECK(ws::framer::encode_text("hi") == "\x81\x02hi"s);
    CHECK(ws::framer::text_header(125) == "\x81\x7d"s);
    CHECK(ws::framer::text_header(126) == "\x81\x7e\x00\x7e"s);
    CHECK(ws::framer::text_header(65536) == "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s);
    CHECK(ws::framer::encode_ping() == "\x89\x00"s);
    CHECK(ws::framer::encode_close(1001, "server shutting down") == "\x88\x16\x03\xe9server shutting down"s);
    // Reasons are cut to 123 bytes without splitting a character.
    const std::string c = ws::framer::encode_close(1000, std::string(122, 'a') + "\xc3\xa9");
    CHECK(c.size() == 2 + 2 + 122);
}
