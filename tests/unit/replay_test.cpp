// The replay library without a server: the transcript format, the matcher,
// the MSNP splitter, redaction, renaming, and pcap/pcapng files written here
// from known byte streams, with reordered, duplicated and split segments and
// a connection whose start is missing.
#include "tools/replay/capture_file.hpp"
#include "tools/replay/runner.hpp"
#include "tools/replay/transcript.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>
#include <tuple>

namespace replay = switchyard::replay;
namespace fs = std::filesystem;

#ifndef SWITCHYARD_SOURCE_DIR
#define SWITCHYARD_SOURCE_DIR "."
#endif

namespace {

// ------------------------------------------------------------------ capture files

void put16be(std::string& s, std::uint16_t v) { s += {static_cast<char>(v >> 8), static_cast<char>(v & 255)}; }
void put32be(std::string& s, std::uint32_t v) {
    put16be(s, static_cast<std::uint16_t>(v >> 16));
    put16be(s, static_cast<std::uint16_t>(v & 0xffff));
}
void put16le(std::string& s, std::uint16_t v) { s += {static_cast<char>(v & 255), static_cast<char>(v >> 8)}; }
void put32le(std::string& s, std::uint32_t v) {
    put16le(s, static_cast<std::uint16_t>(v & 0xffff));
    put16le(s, static_cast<std::uint16_t>(v >> 16));
}

struct packet {
    double at;
    std::string frame;
};

// An Ethernet + IPv4 + TCP frame between 10.0.0.1:cport and 10.0.0.2:1863.
packet tcp(double at, bool from_client, std::uint16_t cport, std::uint32_t seq, std::string_view data, bool syn = false,
           std::uint16_t sport = 1863) {
    std::string t;
    put16be(t, from_client ? cport : sport);
    put16be(t, from_client ? sport : cport);
    put32be(t, seq);
    put32be(t, 0);
    t += {static_cast<char>(0x50), static_cast<char>(syn ? 0x02 : 0x18)};
    put16be(t, 65535);
    put32be(t, 0);
    t += data;
    std::string ip;
    ip += {static_cast<char>(0x45), 0};
    put16be(ip, static_cast<std::uint16_t>(20 + t.size()));
    put32be(ip, 0);
    ip += {64, 6, 0, 0};
    const std::string client{10, 0, 0, 1}, server{10, 0, 0, 2};
    ip += from_client ? client + server : server + client;
    std::string eth(12, '\x02');
    put16be(eth, 0x0800);
    return {at, eth + ip + t};
}

std::string pcap_file(const std::vector<packet>& packets) {
    std::string f;
    put32le(f, 0xa1b2c3d4);
    put16le(f, 2);
    put16le(f, 4);
    put32le(f, 0);
    put32le(f, 0);
    put32le(f, 65535);
    put32le(f, 1);
    for (const auto& p : packets) {
        const auto usec = static_cast<std::uint64_t>(p.at * 1e6 + 0.5) + 1'000'000'000'000'000ull / 1000;
        put32le(f, static_cast<std::uint32_t>(usec / 1'000'000));
        put32le(f, static_cast<std::uint32_t>(usec % 1'000'000));
        put32le(f, static_cast<std::uint32_t>(p.frame.size()));
        put32le(f, static_cast<std::uint32_t>(p.frame.size()));
        f += p.frame;
    }
    return f;
}

std::string pcapng_file(const std::vector<packet>& packets) {
    std::string f;
    put32le(f, 0x0a0d0d0a);  // section header
    put32le(f, 28);
    put32le(f, 0x1a2b3c4d);
    put16le(f, 1);
    put16le(f, 0);
    put32le(f, 0xffffffff);
    put32le(f, 0xffffffff);
    put32le(f, 28);
    put32le(f, 1);  // interface description: Ethernet, microseconds
    put32le(f, 20);
    put16le(f, 1);
    put16le(f, 0);
    put32le(f, 65535);
    put32le(f, 20);
    for (const auto& p : packets) {
        const std::size_t padded = (p.frame.size() + 3) / 4 * 4;
        const auto usec = static_cast<std::uint64_t>(p.at * 1e6 + 0.5) + 1'000'000'000'000'000ull / 1000;
        put32le(f, 6);  // enhanced packet
        put32le(f, static_cast<std::uint32_t>(32 + padded));
        put32le(f, 0);
        put32le(f, static_cast<std::uint32_t>(usec >> 32));
        put32le(f, static_cast<std::uint32_t>(usec & 0xffffffff));
        put32le(f, static_cast<std::uint32_t>(p.frame.size()));
        put32le(f, static_cast<std::uint32_t>(p.frame.size()));
        f += p.frame;
        f.append(padded - p.frame.size(), '\0');
        put32le(f, static_cast<std::uint32_t>(32 + padded));
    }
    return f;
}

struct temp_file {
    fs::path path;
    explicit temp_file(const std::string& bytes) {
        path = fs::temp_directory_path() / ("replay_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~temp_file() { fs::remove(path); }
    static int& counter() {
        static int n = 0;
        return n;
    }
};

// Two connections: a notification connection with its SYNs, whose client
// segments are split mid-line, retransmitted and reordered and whose
// server segments carry two commands and half a payload; and a
// switchboard connection whose start is missing (the capture begins in
// the middle of a server line).
std::vector<packet> session_packets() {
    std::vector<packet> p;
    std::uint32_t c = 1000, s = 5000;
    p.push_back(tcp(0.000, true, 50000, c++, "", true));
    p.push_back(tcp(0.001, false, 50000, s++, "", true));
    auto client = [&](double at, std::string_view data) {
        p.push_back(tcp(at, true, 50000, c, data));
        c += static_cast<std::uint32_t>(data.size());
    };
    auto server = [&](double at, std::string_view data) {
        p.push_back(tcp(at, false, 50000, s, data));
        s += static_cast<std::uint32_t>(data.size());
    };
    client(0.010, "VER 1 MS");                   // a line split across segments
    client(0.011, "NP8 CVR0\r\n");
    p.push_back(p.back());                       // a retransmission
    server(0.020, "VER 1 MSNP8 CVR0\r\n");
    // USR I in two segments, the second captured first.
    const std::string usr = "USR 2 MD5 I alice@example.com\r\n";
    p.push_back(tcp(0.031, true, 50000, c + 10, std::string_view(usr).substr(10)));
    p.push_back(tcp(0.032, true, 50000, c, std::string_view(usr).substr(0, 10)));
    c += static_cast<std::uint32_t>(usr.size());
    server(0.040, "USR 2 MD5 S 1013928519.693957190\r\n");
    client(0.050, "USR 3 MD5 S 0123456789abcdef0123456789abcdef\r\n");
    server(0.060, "USR 3 OK alice@example.com Alice\r\nMSG Hotmail Hotmail 10\r\nabcde");  // two commands, half a payload
    server(0.061, "fghij");
    // An overlapping retransmission: old and new bytes in one segment.
    const std::string xfr = "XFR 4 SB\r\n";
    client(0.070, xfr.substr(0, 4));
    p.push_back(tcp(0.071, true, 50000, c - 4, xfr));
    c += static_cast<std::uint32_t>(xfr.size() - 4);
    server(0.080, "XFR 4 SB 10.0.0.2:1863 CKI 17262740.1050826919.32308\r\n");
    // The switchboard: no SYN, the first server bytes end someone's line.
    p.push_back(tcp(0.100, false, 50001, 90000, "ody@example.com Bob\r\nMSG bob@example.com Bob 4\r\nhey!"));
    p.push_back(tcp(0.110, true, 50001, 70000, "MSG 5 N 3\r\nhi!"));
    p.push_back(tcp(0.120, true, 50001, 70014, "OUT\r\n"));
    return p;
}

const char* const expected_transcript =
    "@dialect MSNP8\n"
    "+0.010 NS1 C: VER 1 MSNP8 CVR0\n"
    "+0.020 NS1 S: VER 1 MSNP8 CVR0\n"
    "+0.032 NS1 C: USR 2 MD5 I alice@example.com\n"
    "+0.040 NS1 S: USR 2 MD5 S ${salt1}\n"
    "+0.050 NS1 C: USR 3 MD5 S ${md5:salt1}\n"
    "+0.060 NS1 S: USR 3 OK alice@example.com Alice\n"
    "+0.060 NS1 S: MSG Hotmail Hotmail *\n"
    "+0.070 NS1 C: XFR 4 SB\n"
    "+0.080 NS1 S: XFR 4 SB ${sb1} CKI ${cookie1}\n"
    "+0.100 SB1 S: MSG bob@example.com Bob *\n"
    "    hey!\n"
    "+0.110 SB1 C: MSG 5 N 3\n"
    "    hi!\n"
    "+0.120 SB1 C: OUT\n";

}  // namespace

TEST_CASE("a pcap file with reordered, duplicated and split segments converts to the expected transcript", "[replay]") {
    const temp_file f(pcap_file(session_packets()));
    replay::capture c;
    const auto error = replay::read_capture(f.path.string(), {}, c);
    INFO((error ? error->what() : ""));
    REQUIRE_FALSE(error);
    REQUIRE(c.connections.size() == 2);
    CHECK_FALSE(c.connections[0].start_missing);
    CHECK(c.connections[1].start_missing);
    CHECK(c.connections[0].role == "NS");
    CHECK(c.connections[1].role == "SB");
    CHECK(replay::format(replay::to_transcript(c)) == expected_transcript);
    const std::string summary = replay::summarize(c);
    CHECK(summary.find("connections: 2 (NS 1, SB 1, start missing 1") != std::string::npos);
    CHECK(summary.find("dialect: MSNP8 (from VER)") != std::string::npos);
    CHECK(summary.find("handles: alice@example.com bob@example.com") != std::string::npos);
}

TEST_CASE("a pcapng file converts to the same transcript", "[replay]") {
    const temp_file f(pcapng_file(session_packets()));
    replay::capture c;
    const auto error = replay::read_capture(f.path.string(), {}, c);
    INFO((error ? error->what() : ""));
    REQUIRE_FALSE(error);
    CHECK(replay::format(replay::to_transcript(c)) == expected_transcript);
}

TEST_CASE("a converted transcript reads back as it was written", "[replay]") {
    replay::transcript t;
    REQUIRE_FALSE(replay::parse(expected_transcript, "x.txt", t));
    CHECK(replay::format(t) == expected_transcript);
    REQUIRE(t.steps.size() == 12);
    CHECK(t.steps[0].at == Approx(0.010));
    CHECK(t.steps[10].has_payload);
}

TEST_CASE("a truncated capture is an error naming the packet, not a crash", "[replay]") {
    const std::string whole = pcap_file(session_packets());
    for (std::size_t cut : {std::size_t{10}, std::size_t{30}, whole.size() / 2, whole.size() - 3}) {
        const temp_file f(whole.substr(0, cut));
        replay::capture c;
        const auto error = replay::read_capture(f.path.string(), {}, c);
        INFO(cut);
        REQUIRE(error);
        CHECK(error->what().find(f.path.string()) == 0);
    }
    const temp_file garbage("this is not a capture\n");
    replay::capture c;
    CHECK(replay::read_capture(garbage.path.string(), {}, c));
}

TEST_CASE("bad transcripts are errors with file and line", "[replay]") {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"A C: VER 1 MSNP8\nthis is not a step\n", "x.txt:2: "},
        {"# fine\n    a payload line with no command\n", "x.txt:2: "},
        {"@user alice\n", "x.txt:1: expected @user"},
        {"+abc A C: VER 1\n", "x.txt:1: bad time"},
        {"A C: VER 1\nA C: MSG 2 N *\n", "x.txt:2: a client payload command needs"},
        {"A C: (closed)\n", "x.txt:1: (closed)"},
        {std::string("A C: VER\0 1\n", 12), "x.txt:1: a NUL byte"},
        {"@frobnicate\n", "x.txt:1: unknown directive"},
    };
    for (const auto& [text, message] : cases) {
        replay::transcript t;
        const auto error = replay::parse(text, "x.txt", t);
        INFO(text);
        REQUIRE(error);
        CHECK(error->what().starts_with(message));
    }
}

TEST_CASE("server lines match with wildcards, captures and open ends", "[replay]") {
    replay::captures known{{"session", "42"}}, out;
    CHECK(replay::match_line("XFR 8 SB ${sb} CKI ${cookie}", "XFR 8 SB 127.0.0.1:1863 CKI abc", known, out));
    CHECK(out.at("cookie") == "abc");
    CHECK(replay::match_line("CAL 2 RINGING ${=session}", "CAL 2 RINGING 42", known, out));
    std::string why;
    CHECK_FALSE(replay::match_line("CAL 2 RINGING ${=session}", "CAL 2 RINGING 43", known, out, &why));
    CHECK(why.find("\"42\"") != std::string::npos);
    CHECK(replay::match_line("LST N=${h} * 11 ...", "LST N=bob@example.com F=bob 11 1 ", known, out));
    CHECK(out.at("h") == "bob@example.com");
    CHECK_FALSE(replay::match_line("ADD 7 FL 9 bob", "ADD 7 FL 1 bob", known, out, &why));
    CHECK(why == "token 4: expected \"9\", received \"1\"");
    CHECK_FALSE(replay::match_line("VER 1 MSNP8", "VER 1 MSNP8 CVR0", known, out));
}

TEST_CASE("transaction ids, and what is not one", "[replay]") {
    CHECK(replay::transaction_id("ADD 7 FL 1 bob bob") == "7");
    CHECK(replay::transaction_id("201 7") == "7");
    CHECK_FALSE(replay::transaction_id("RNG 12345 1.2.3.4:1863 CKI x a b"));
    CHECK_FALSE(replay::transaction_id("QNG 50"));
    CHECK_FALSE(replay::transaction_id("ADD 0 RL 3 bob bob"));
    CHECK_FALSE(replay::transaction_id("NLN NLN bob bob 0"));
}

TEST_CASE("the splitter resynchronises and waits for whole payloads", "[replay]") {
    replay::splitter s(false, true);
    s.feed("tail of a payload\r\nMIME-Version: 1.0\r\nNLN NLN bob@example.com Bob\r\nMSG bob Bob 5\r\nab", 1);
    auto steps = s.take();
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].text == "NLN NLN bob@example.com Bob");
    s.feed("cde", 2);
    steps = s.take();
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].payload == std::vector<std::string>{"abcde"});
    CHECK(steps[0].at == 1);  // when its first byte was seen
}

TEST_CASE("binary payloads survive as base64", "[replay]") {
    const std::string bytes("\x00\x01\nP2P\r", 7);
    const auto lines = replay::payload_lines(bytes);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].starts_with("!base64 "));
    CHECK(replay::payload_bytes(lines) == bytes);
}

TEST_CASE("handles are renamed everywhere, URL-encoded forms included", "[replay]") {
    replay::transcript t;
    REQUIRE_FALSE(replay::parse("@user alice@example.com pw\nA C: USR 1 MD5 I alice@example.com\n"
                                "A S: NLN NLN bob@example.com alice%40example.com\nA C: MSG 2 N *\n    to alice@example.com\n",
                                "x.txt", t));
    replay::rename_handles(t, {{"alice@example.com", "bob@example.com"}, {"bob@example.com", "alice@example.com"}});
    CHECK(t.users[0].handle == "bob@example.com");
    CHECK(t.steps[0].text == "USR 1 MD5 I bob@example.com");
    CHECK(t.steps[1].text == "NLN NLN alice@example.com bob%40example.com");
    CHECK(t.steps[2].payload[0] == "to bob@example.com");
}

TEST_CASE("a trace without a login gets a prelude and the contacts it names", "[replay]") {
    replay::transcript t;
    REQUIRE_FALSE(replay::parse("@dialect MSNP11\nNS1 C: PNG\nNS1 S: QNG 50\nNS1 S: NLN NLN bob@example.com Bob 0\n"
                                "SB1 C: ANS 3 alice@example.com ${cookie1} ${session1}\n",
                                "x.txt", t));
    CHECK(replay::add_login_prelude(t, {{"alice@example.com", "pw"}}) == 1);
    CHECK(t.steps[0].text == "VER 1 MSNP11 CVR0");
    CHECK(t.steps[4].text == "USR 3 TWN I alice@example.com");
    CHECK(t.steps[6].text == "USR 4 TWN S ${ticket:alice@example.com}");
    CHECK(t.steps[8].text == "ADC 5 FL N=bob@example.com F=bob@example.com");
    CHECK(t.steps[10].text == "ADC 6 AL N=bob@example.com");
}

TEST_CASE("MSNP in HTTP gateway polling is one session across HTTP connections", "[replay]") {
    std::vector<packet> p;
    auto http = [&](double at, std::uint16_t cport, bool from_client, std::uint32_t seq, const std::string& text) {
        p.push_back(tcp(at, from_client, cport, seq, text, false, 80));
    };
    const std::string body1 = "VER 1 MSNP8 CVR0\r\n";
    http(0.0, 40000, true, 1, "POST /gateway/gateway.dll?Action=open&Server=NS&IP=10.0.0.2 HTTP/1.1\r\nContent-Length: " +
                                 std::to_string(body1.size()) + "\r\n\r\n" + body1);
    const std::string reply1 = "HTTP/1.1 200 OK\r\nX-MSN-Messenger: SessionID=123.456; GW-IP=10.0.0.2\r\nContent-Length: " +
                               std::to_string(body1.size()) + "\r\n\r\n" + body1;
    http(0.1, 40000, false, 1, reply1);
    const std::string body2 = "PNG\r\n";
    http(0.2, 40001, true, 1, "POST /gateway/gateway.dll?SessionID=123.456 HTTP/1.1\r\nContent-Length: 5\r\n\r\n" + body2);
    http(0.3, 40001, false, 1, "HTTP/1.1 200 OK\r\nX-MSN-Messenger: SessionID=123.456; GW-IP=10.0.0.2\r\nContent-Length: 5\r\n\r\nQNG\r\n");
    const temp_file f(pcap_file(p));
    replay::capture c;
    const auto error = replay::read_capture(f.path.string(), {}, c);
    INFO((error ? error->what() : ""));
    REQUIRE_FALSE(error);
    REQUIRE(c.connections.size() == 1);
    CHECK(c.connections[0].http);
    const auto t = replay::to_transcript(c);
    REQUIRE(t.steps.size() == 4);
    CHECK(t.steps[0].text == "VER 1 MSNP8 CVR0");
    CHECK(t.steps[2].text == "PNG");
    CHECK(t.steps[3].text == "QNG");
    CHECK_FALSE(t.steps[3].client);
}

// Every golden transcript as the bytes its connections carried, cut into
// segments of random sizes, some sent twice and some swapped with the next,
// written as pcap and as pcapng: what comes out is what went in.
TEST_CASE("golden transcripts survive a trip through pcap and pcapng", "[replay]") {
    std::mt19937 random(20261208);
    const fs::path dir = fs::path(SWITCHYARD_SOURCE_DIR) / "fixtures" / "transcripts";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE_FALSE(files.empty());
    for (const auto& file : files) {
        replay::transcript t;
        REQUIRE_FALSE(replay::parse_file(file.string(), t));
        // The wire form of each step: lengths computed, "*" server payloads empty.
        std::map<std::string, std::uint16_t> ports;
        std::map<std::string, std::vector<std::pair<bool, std::string>>> expected;  // per connection: (client, line)
        std::map<std::pair<std::uint16_t, bool>, std::uint32_t> seq;
        std::vector<packet> packets;
        double at = 0;
        for (const auto& s : t.steps) {
            if (s.text == "(closed)") continue;
            auto [it, fresh] = ports.try_emplace(s.connection, static_cast<std::uint16_t>(40000 + ports.size()));
            const std::uint16_t port = it->second;
            if (fresh) {
                packets.push_back(tcp(at, true, port, 100, "", true));
                packets.push_back(tcp(at, false, port, 900, "", true));
                seq[{port, true}] = 101;
                seq[{port, false}] = 901;
            }
            auto words = replay::split(s.text);
            const std::string payload = replay::payload_bytes(s.payload);
            if (s.has_payload) words.back() = std::to_string(payload.size());
            std::string line;
            for (std::size_t i = 0; i < words.size(); ++i) line += (i ? " " : "") + words[i];
            expected[s.connection].push_back({s.client, line});
            const std::string bytes = line + "\r\n" + (s.has_payload ? payload : "");
            std::vector<packet> segments;
            for (std::size_t pos = 0; pos < bytes.size();) {
                const std::size_t n = std::min<std::size_t>(bytes.size() - pos, 1 + random() % 24);
                at += 0.001;
                segments.push_back(tcp(at, s.client, port, seq[{port, s.client}], std::string_view(bytes).substr(pos, n)));
                seq[{port, s.client}] += static_cast<std::uint32_t>(n);
                pos += n;
            }
            for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
                if (random() % 4 == 0) std::swap(segments[i], segments[i + 1]);
            }
            for (auto& seg : segments) {
                packets.push_back(seg);
                if (random() % 8 == 0) packets.push_back(seg);  // retransmitted
            }
        }
        for (const bool ng : {false, true}) {
            const temp_file f(ng ? pcapng_file(packets) : pcap_file(packets));
            replay::capture c;
            const auto error = replay::read_capture(f.path.string(), {}, c);
            INFO(file.filename().string() << (ng ? " as pcapng" : " as pcap") << (error ? ": " + error->what() : ""));
            REQUIRE_FALSE(error);
            REQUIRE(c.connections.size() == expected.size());
            for (const auto& cc : c.connections) {
                const std::uint16_t port = static_cast<std::uint16_t>(std::stoi(cc.client.substr(cc.client.rfind(':') + 1)));
                const auto name = std::find_if(ports.begin(), ports.end(), [&](const auto& p) { return p.second == port; })->first;
                std::vector<std::pair<bool, std::string>> got;
                for (const auto& s : cc.steps) got.push_back({s.client, s.text});
                INFO(name);
                CHECK(got == expected[name]);
            }
        }
    }
}

// Garbage in: an error or a result, never a crash; and whatever a capture
// converts to reads back as a transcript.
TEST_CASE("random and damaged input never crashes the readers", "[replay]") {
    std::mt19937 random(7);
    for (int i = 0; i < 300; ++i) {
        std::string text(random() % 200, '\0');
        for (auto& c : text) c = static_cast<char>(random() % 3 ? "AB C:S+0.1@ $\n{}*"[random() % 18] : random() % 256);
        replay::transcript t;
        if (const auto error = replay::parse(text, "x.txt", t)) CHECK(error->what().starts_with("x.txt:"));
    }
    const std::string whole = pcapng_file(session_packets());
    for (int i = 0; i < 300; ++i) {
        std::string damaged = whole;
        for (int flips = 0; flips < 4; ++flips) {
            // Past the section and interface headers, so some packets still read.
            damaged[48 + random() % (damaged.size() - 48)] = static_cast<char>(random() % 256);
        }
        const temp_file f(damaged.substr(0, damaged.size() - random() % 40));
        replay::capture c;
        if (replay::read_capture(f.path.string(), {}, c)) continue;
        const auto text = replay::format(replay::to_transcript(c));
        replay::transcript back;
        const auto error = replay::parse(text, "converted", back);
        INFO(text);
        CHECK_FALSE(error);
    }
}

#ifdef SWITCHYARD_REPLAY
namespace {
// Runs a command line; its exit status and everything it printed.
std::pair<int, std::string> shell(const std::string& command) {
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST_CASE("switchyard-replay convert and stats on a capture, and their errors", "[replay]") {
    const std::string tool = SWITCHYARD_REPLAY;
    const temp_file capture(pcapng_file(session_packets()));
    const fs::path out = capture.path.string() + ".txt";
    auto [status, output] = shell(tool + " convert " + capture.path.string() + " -o " + out.string());
    INFO(output);
    CHECK(status == 0);
    std::ifstream in(out);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    fs::remove(out);
    CHECK(text == "# converted by switchyard-replay from " + capture.path.string() + "\n" + expected_transcript);

    std::tie(status, output) = shell(tool + " stats " + capture.path.string());
    CHECK(status == 0);
    CHECK(output.find("dialect: MSNP8 (from VER)") != std::string::npos);
    CHECK(output.find("client -> server: MSG 1 OUT 1 USR 2 VER 1 XFR 1") != std::string::npos);

    const std::string whole = pcapng_file(session_packets());
    const temp_file truncated(whole.substr(0, whole.size() - 7));
    std::tie(status, output) = shell(tool + " stats " + truncated.path.string());
    CHECK(status == 2);
    CHECK(output.starts_with("switchyard-replay: " + truncated.path.string() + ":"));

    const temp_file garbage("NS1 C: VER 1 MSNP8\nnot a step at all\n");
    std::tie(status, output) = shell(tool + " run " + garbage.path.string() + " --target 127.0.0.1:9");
    CHECK(status == 2);
    CHECK(output == "switchyard-replay: " + garbage.path.string() +
                        ":2: expected \"[+SECONDS] CONNECTION C: LINE\" or \"... S: LINE\"\n");
}
#endif
