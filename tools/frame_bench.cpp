// Encode and decode throughput of the frame wire format (version 1) on a
// realistic mix of frames, single-threaded, against a JSON encoding of the
// same frames: Boost.JSON driven by the same field lists, the way a generic
// JSON codec for these frames would be written. Prints a table; not a test.
//
//   frame_bench
#include "protocols/frame/wire.hpp"

#include <boost/json.hpp>

#include <sched.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace switchyard::frame;
namespace json = boost::json;

template <class T>
concept has_fields = requires(T& t, int& v) { t.visit(v); };

// ------------------------------------------------------------------ JSON codec
// {"type":"room_message","corr":7,"object":"room:…","sender":"…","body":{…}}
// Enums are written by name, bytes as hex, nested structs as objects, lists
// as arrays.

struct json_writer {
    json::object& out;

    template <class T, class... Limits> void operator()(std::uint32_t, std::string_view name, const T& v, Limits...) {
        out[name] = value(v);
    }

    static json::value value(const std::string& s) { return json::string(s); }
    static json::value value(const bytes& b) {
        static constexpr char digits[] = "0123456789abcdef";
        json::string s;
        s.reserve(b.data.size() * 2);
        for (const char c : b.data) {
            const auto u = static_cast<unsigned char>(c);
            s.push_back(digits[u >> 4]);
            s.push_back(digits[u & 15]);
        }
        return s;
    }
    static json::value value(bool b) { return b; }
    template <class I>
        requires std::is_integral_v<I>
    static json::value value(I v) {
        return static_cast<std::uint64_t>(v);
    }
    template <class E>
        requires std::is_enum_v<E>
    static json::value value(E v) {
        return json::string(to_string(v));
    }
    template <has_fields T> static json::value value(const T& nested) {
        json::object o;
        json_writer w{o};
        const_cast<T&>(nested).visit(w);
        return o;
    }
    template <class T> static json::value value(const std::vector<T>& items) {
        json::array a;
        a.reserve(items.size());
        for (const T& item : items) {
            a.push_back(value(item));
        }
        return a;
    }
};

std::string encode_json(const frame& f) {
    json::object o;
    o["type"] = type_name(f);
    json_writer header{o};
    const_cast<frame&>(f).visit_header(header);
    json::object fields;
    json_writer body{fields};
    std::visit([&](const auto& b) { const_cast<std::remove_cvref_t<decltype(b)>&>(b).visit(body); }, f.content);
    o["body"] = std::move(fields);
    return json::serialize(o);
}

struct json_reader {
    const json::object& in;

    template <class T, class... Limits> void operator()(std::uint32_t, std::string_view name, T& v, Limits...) {
        read(in.at(name), v);
    }

    static void read(const json::value& j, std::string& s) {
        const json::string& js = j.as_string();
        s.assign(js.data(), js.size());
    }
    static void read(const json::value& j, bytes& b) {
        const json::string& hex = j.as_string();
        const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
        b.data.resize(hex.size() / 2);
        for (std::size_t i = 0; i < b.data.size(); ++i) {
            b.data[i] = static_cast<char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
        }
    }
    static void read(const json::value& j, bool& b) { b = j.as_bool(); }
    template <class I>
        requires std::is_integral_v<I>
    static void read(const json::value& j, I& v) {
        v = j.to_number<I>();
    }
    template <class E>
        requires std::is_enum_v<E>
    static void read(const json::value& j, E& v) {
        const json::string& name = j.as_string();
        for (unsigned i = 0; i <= enum_traits<E>::max_value; ++i) {
            if (to_string(static_cast<E>(i)) == std::string_view(name)) {
                v = static_cast<E>(i);
                return;
            }
        }
        throw std::invalid_argument("unknown enum value");
    }
    template <has_fields T> static void read(const json::value& j, T& nested) {
        json_reader r{j.as_object()};
        nested.visit(r);
    }
    template <class T> static void read(const json::value& j, std::vector<T>& items) {
        const json::array& a = j.as_array();
        items.reserve(a.size());
        for (const json::value& item : a) {
            read(item, items.emplace_back());
        }
    }
};

body make_body(std::size_t index) {
    static constexpr auto makers = []<std::size_t... I>(std::index_sequence<I...>) {
        return std::array<body (*)(), sizeof...(I)>{+[]() -> body { return body{std::in_place_index<I>}; }...};
    }(std::make_index_sequence<type_count>{});
    return makers.at(index)();
}

frame decode_json(std::string_view text) {
    const json::value v = json::parse(text);
    const json::object& o = v.as_object();
    const std::string_view type = o.at("type").as_string();
    frame f;
    std::size_t index = 0;
    while (index < type_count && type_name(index) != type) {
        ++index;
    }
    f.content = make_body(index);
    json_reader header{o};
    f.visit_header(header);
    json_reader fields{o.at("body").as_object()};
    std::visit([&](auto& b) { b.visit(fields); }, f.content);
    return f;
}

// ------------------------------------------------------------------ the mix

constexpr std::string_view guid = "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}";

frame framed(std::uint64_t corr, std::string object, std::string sender, body content) {
    frame f;
    f.corr = corr;
    f.object = std::move(object);
    f.sender = std::move(sender);
    f.content = std::move(content);
    return f;
}

text_format messenger_font() {
    text_format fmt;
    fmt.font = "Segoe UI";
    fmt.effects = "B";
    fmt.color = 0x0000ff;
    fmt.pitch_family = 34;
    return fmt;
}

std::string chat_text(std::size_t i) {
    static constexpr std::array<std::string_view, 4> lines{
        "Are we still on for lunch tomorrow? I can book the usual place.",
        "Sure, 12:30 works for me. Bring the slides from Tuesday please!",
        "Running ten minutes late, the train is stuck outside the station",
        "No worries, I'll grab a table by the window and order for us :)",
    };
    return std::string(lines[i % lines.size()]);
}

frame chat_message() {
    room_message m;
    m.seq = 1'234'567;
    m.message_id = "3f2a9c1e-7b4d-4e8a-9c61-0d5b2e8f4a17";
    m.timestamp_ms = 1'700'000'123'456;
    m.text = chat_text(0);
    m.format = messenger_font();
    return framed(88'213, "room:9b1f0c2e5d", "alice@example.com", m);
}

frame presence() {
    presence_update p;
    p.user = "alice@example.com";
    p.presence.state = status::busy;
    p.presence.display_name = "Alice 🌻";
    p.presence.personal_message = "Back from holiday, catching up on mail";
    p.presence.capabilities = 0x8c04cc2c;
    p.presence.capabilities_ex = 0x30;
    p.presence.msn_object =
        R"(<msnobj Creator="alice@example.com" Size="24539" Type="3" Location="TFR2C2.tmp" Friendly="AAA=" )"
        R"(SHA1D="trC8SlFx2sWQxZMIBAWSEnXc8oQ=" SHA1C="U6ppzGkUU/SHVmDBk27HHhaBvPI="/>)";
    p.presence.endpoint = guid;
    return framed(0, "user:bob@example.com", "alice@example.com", p);
}

frame acknowledgement() { return framed(88'213, "room:9b1f0c2e5d", "", ack{1'234'567}); }

frame contact_list() {
    roster r;
    r.version = 4'711;
    r.privacy = privacy_default::allow;
    r.display_name = "Bob";
    for (int g = 0; g < 5; ++g) {
        r.groups.push_back(group{"g" + std::to_string(g), "Group " + std::to_string(g)});
    }
    for (int i = 0; i < 100; ++i) {
        roster_entry e;
        e.handle = "contact" + std::to_string(i) + "@example.com";
        e.display_name = "Contact Number " + std::to_string(i);
        e.lists = 1 | 2 | 8;
        e.contact_id = "9c1e7b4d-4e8a-" + std::to_string(1000 + i) + "-0d5b2e8f4a17";
        e.groups.push_back("g" + std::to_string(i % 5));
        r.entries.push_back(std::move(e));
    }
    return framed(3, "user:bob@example.com", "bob@example.com", std::move(r));
}

frame history() {
    room_history h;
    for (std::uint64_t i = 0; i < 100; ++i) {
        stored_message m;
        m.seq = 1'234'467 + i;
        m.sender = i % 2 ? "alice@example.com" : "bob@example.com";
        m.message_id = "3f2a9c1e-7b4d-4e8a-9c61-" + std::to_string(100'000'000'000 + i);
        m.timestamp_ms = 1'700'000'000'000 + 45'000 * i;
        m.text = chat_text(i);
        m.format = messenger_font();
        h.messages.push_back(std::move(m));
    }
    h.last_seq = 1'234'566;
    return framed(12, "room:9b1f0c2e5d", "", std::move(h));
}

// ------------------------------------------------------------------ timing

constexpr const char* compiler =
#if defined(__clang__)
    "clang " __clang_version__
#else
    "gcc " __VERSION__
#endif
#ifdef __OPTIMIZE__
    ", optimised";
#else
    ", NOT optimised";
#endif

using bench_clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds min_run{300};
constexpr int runs = 3;

// Keeps each operation's result observable so the loop is not optimised away.
volatile std::size_t sink;

// Operations per second: the best of `runs` runs of at least `min_run` each.
template <class Op> double best_rate(Op&& op) {
    // Batches of at least 10 ms keep clock reads out of the figures.
    std::size_t batch = 1;
    for (;;) {
        const auto start = bench_clock::now();
        for (std::size_t i = 0; i < batch; ++i) {
            op();
        }
        if (bench_clock::now() - start >= std::chrono::milliseconds{10}) {
            break;
        }
        batch *= 2;
    }
    double best = 0;
    for (int run = 0; run < runs; ++run) {
        std::size_t done = 0;
        const auto start = bench_clock::now();
        std::chrono::duration<double> elapsed{};
        do {
            for (std::size_t i = 0; i < batch; ++i) {
                op();
            }
            done += batch;
            elapsed = bench_clock::now() - start;
        } while (elapsed < min_run);
        best = std::max(best, static_cast<double>(done) / elapsed.count());
    }
    return best;
}

struct measured {
    std::size_t size = 0;  // encoded bytes of one frame
    double encode = 0;     // frames per second
    double decode = 0;
};

measured measure_binary(const frame& f) {
    const std::string wire = encode(f);
    std::string out;
    measured m{wire.size(), 0, 0};
    m.encode = best_rate([&] {
        out.clear();
        encode(f, out);
        sink = out.size();
    });
    m.decode = best_rate([&] { sink = decode(wire)->corr; });
    return m;
}

measured measure_json(const frame& f) {
    const std::string text = encode_json(f);
    measured m{text.size(), 0, 0};
    m.encode = best_rate([&] { sink = encode_json(f).size(); });
    m.decode = best_rate([&] { sink = decode_json(text).corr; });
    return m;
}

double mb_per_s(std::size_t size, double frames_per_s) { return static_cast<double>(size) * frames_per_s / 1e6; }

std::size_t cpus() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        return static_cast<std::size_t>(CPU_COUNT(&set));
    }
    return std::thread::hardware_concurrency();
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("model name")) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
    struct named {
        std::string label;
        frame f;
    };
    const std::vector<named> mix{
        {"room_message (text 63 B)", chat_message()},
        {"presence_update", presence()},
        {"ack", acknowledgement()},
        {"roster (100 entries)", contact_list()},
        {"room_history (100 msgs)", history()},
    };
    for (const named& n : mix) {
        const auto binary = decode(encode(n.f));
        if (!binary || *binary != n.f || decode_json(encode_json(n.f)) != n.f) {
            std::fprintf(stderr, "frame_bench: %s does not round-trip\n", n.label.c_str());
            return 1;
        }
    }

    std::string command = argv[0];
    for (int i = 1; i < argc; ++i) {
        command += ' ';
        command += argv[i];
    }
    std::printf("# %s\n", command.c_str());
    std::printf("# machine: nproc=%zu, %s; %s\n", cpus(), cpu_model().c_str(), compiler);
    std::printf("# single thread; each figure is the best of %d runs of at least %lld ms; MB = 10^6 bytes\n\n", runs,
                static_cast<long long>(min_run.count()));

    std::vector<measured> binary;
    std::printf("binary wire format v1\n");
    std::printf("%-26s %7s %15s %11s %15s %11s\n", "frame", "bytes", "encode frame/s", "encode MB/s",
                "decode frame/s", "decode MB/s");
    for (const named& n : mix) {
        const measured m = measure_binary(n.f);
        binary.push_back(m);
        std::printf("%-26s %7zu %15.0f %11.1f %15.0f %11.1f\n", n.label.c_str(), m.size, m.encode,
                    mb_per_s(m.size, m.encode), m.decode, mb_per_s(m.size, m.decode));
        std::fflush(stdout);
    }

    std::printf("\nJSON (Boost.JSON, same fields); last columns: binary's speed-up over JSON, binary/JSON size\n");
    std::printf("%-26s %7s %15s %11s %15s %11s %8s %8s %6s\n", "frame", "bytes", "encode frame/s", "encode MB/s",
                "decode frame/s", "decode MB/s", "enc x", "dec x", "size");
    for (std::size_t i = 0; i < mix.size(); ++i) {
        const measured m = measure_json(mix[i].f);
        const measured& b = binary[i];
        std::printf("%-26s %7zu %15.0f %11.1f %15.0f %11.1f %7.1fx %7.1fx %6.2f\n", mix[i].label.c_str(), m.size,
                    m.encode, mb_per_s(m.size, m.encode), m.decode, mb_per_s(m.size, m.decode), b.encode / m.encode,
                    b.decode / m.decode, static_cast<double>(b.size) / static_cast<double>(m.size));
        std::fflush(stdout);
    }
    return 0;
}
