// switchyard-replay: MSNP traces from captures and transcripts, replayed
// against any MSNP server. See tools/replay/README.md.
//
//   switchyard-replay convert IN -o OUT       a capture (pcap, pcapng) as a transcript
//   switchyard-replay stats IN                what a capture or transcript holds
//   switchyard-replay run TRACE --target HOST:PORT
//   switchyard-replay load TRACE --copies N --target HOST:PORT
//
// Exit codes: 0 passed, 1 the server did not do what the trace says, 2 bad
// input or usage.
#include "tools/replay/capture_file.hpp"
#include "tools/replay/runner.hpp"
#include "tools/replay/transcript.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <sys/stat.h>

namespace replay = switchyard::replay;

namespace {

bool is_capture(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char m[4] = {};
    in.read(reinterpret_cast<char*>(m), 4);
    if (in.gcount() < 4) return false;
    const std::uint32_t v = static_cast<std::uint32_t>(m[0]) << 24 | static_cast<std::uint32_t>(m[1]) << 16 |
                            static_cast<std::uint32_t>(m[2]) << 8 | m[3];
    return v == 0xa1b2c3d4 || v == 0xd4c3b2a1 || v == 0xa1b23c4d || v == 0x4d3cb2a1 || v == 0x0a0d0d0a;
}

struct input_options {
    std::vector<std::uint16_t> ports;
    std::vector<std::uint16_t> http_ports;
    replay::capture_options capture() const {
        replay::capture_options o;
        if (!ports.empty()) o.ports = {ports.begin(), ports.end()};
        if (!http_ports.empty()) o.http_ports = {http_ports.begin(), http_ports.end()};
        return o;
    }
};

// A transcript from either kind of file; false (with the message printed) on bad input.
bool load_trace(const std::string& path, const input_options& io, replay::transcript& t) {
    if (is_capture(path)) {
        replay::capture c;
        if (auto e = replay::read_capture(path, io.capture(), c)) {
            std::cerr << "switchyard-replay: " << e->what() << "\n";
            return false;
        }
        t = replay::to_transcript(c);
        t.file = path;
        return true;
    }
    if (auto e = replay::parse_file(path, t)) {
        std::cerr << "switchyard-replay: " << e->what() << "\n";
        return false;
    }
    return true;
}

bool parse_target(const std::string& target, replay::run_options& o) {
    const auto colon = target.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    o.host = target.substr(0, colon);
    if (o.host.starts_with("[") && o.host.ends_with("]")) o.host = o.host.substr(1, o.host.size() - 2);
    try {
        const int port = std::stoi(target.substr(colon + 1));
        if (port <= 0 || port > 65535) return false;
        o.port = static_cast<std::uint16_t>(port);
    } catch (...) {
        return false;
    }
    return true;
}

bool parse_pace(const std::string& pace, replay::run_options& o) {
    if (pace == "fast") {
        o.pace = 0;
    } else if (pace == "captured") {
        o.pace = 1;
    } else {
        try {
            std::size_t used = 0;
            o.pace = std::stod(pace, &used);
            if (used != pace.size() || o.pace < 0) return false;
        } catch (...) {
            return false;
        }
    }
    return true;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(v.size()))) ;
    return v[std::min(v.size() - 1, i ? i - 1 : 0)];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"switchyard-replay: capture, convert and replay MSNP traces against any MSNP server"};
    app.require_subcommand(1);
    input_options io;

    std::string in_path, out_path;
    auto* convert = app.add_subcommand("convert", "write a transcript from a pcap or pcapng capture");
    convert->add_option("IN", in_path, "capture file")->required();
    convert->add_option("-o,--output", out_path, "transcript to write")->required();
    convert->add_option("--port", io.ports, "MSNP server ports (default 1863)");
    convert->add_option("--http-port", io.http_ports, "HTTP gateway (gateway.dll) server ports (default 80)");

    auto* stats = app.add_subcommand("stats", "connections, commands, dialect, handles, errors and durations of a capture");
    stats->add_option("IN", in_path, "capture or transcript")->required();
    stats->add_option("--port", io.ports, "MSNP server ports (default 1863)");
    stats->add_option("--http-port", io.http_ports, "HTTP gateway server ports (default 80)");

    replay::run_options ro;
    std::string target, mapping, pace = "fast";
    long timeout_ms = 5000;
    bool prelude = true;
    int copies = 1;
    auto add_run_options = [&](CLI::App* cmd) {
        cmd->add_option("TRACE", in_path, "transcript or capture")->required();
        cmd->add_option("--target", target, "the server under test, HOST:PORT")->required();
        cmd->add_option("--accounts", mapping, "mapping file: HANDLE PASSWORD [NEW-HANDLE] per line");
        cmd->add_option("--nexus", ro.nexus_url, "Passport nexus URL (https://host:port/rdr/pprdr.asp)");
        cmd->add_option("--login-url", ro.login_url, "Passport login URL, instead of asking the nexus");
        cmd->add_option("--ca-file", ro.ca_file, "trust this CA file for the login server");
        cmd->add_option("--ticket-command", ro.ticket_command,
                        "for handles without a password: a program run as COMMAND HANDLE that prints a ticket");
        cmd->add_flag("--insecure", ro.insecure, "do not verify the login server's certificate");
        cmd->add_option("--pace", pace, "fast, captured, or a factor applied to the captured times (0.5 = twice as fast)");
        cmd->add_flag("--loose", ro.loose, "check only what the client waits for");
        cmd->add_option("--timeout", timeout_ms, "milliseconds to wait for each expected line (default 5000)");
        cmd->add_flag("!--no-prelude", prelude, "no synthetic login for traces that start mid-session");
        cmd->add_option("--port", io.ports, "MSNP server ports in a capture (default 1863)");
    };
    auto* run = app.add_subcommand("run", "replay the client side of a trace against a live server");
    add_run_options(run);
    auto* load = app.add_subcommand("load", "replay N copies of a trace at once with distinct accounts");
    add_run_options(load);
    load->add_option("--copies", copies, "how many copies")->required()->check(CLI::Range(1, 100000));

    CLI11_PARSE(app, argc, argv);

    if (convert->parsed() || stats->parsed()) {
        if (stats->parsed() && !is_capture(in_path)) {
            replay::transcript t;
            if (!load_trace(in_path, io, t)) return 2;
            std::map<std::string, int> c, s;
            std::set<std::string> conns;
            for (const auto& st : t.steps) {
                conns.insert(st.connection);
                if (st.text != "(closed)") (st.client ? c : s)[replay::split(st.text)[0]]++;
            }
            std::cout << "transcript: " << t.steps.size() << " steps, " << conns.size() << " connections"
                      << (t.dialect.empty() ? "" : ", " + t.dialect) << "\n";
            for (auto* m : {&c, &s}) {
                std::cout << (m == &c ? "client -> server:" : "server -> client:");
                for (const auto& [k, v] : *m) std::cout << " " << k << " " << v;
                std::cout << "\n";
            }
            return 0;
        }
        replay::capture c;
        if (auto e = replay::read_capture(in_path, io.capture(), c)) {
            std::cerr << "switchyard-replay: " << e->what() << "\n";
            return 2;
        }
        if (stats->parsed()) {
            std::cout << replay::summarize(c);
            return 0;
        }
        auto t = replay::to_transcript(c);
        std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
        if (!out) {
            std::cerr << "switchyard-replay: cannot write " << out_path << "\n";
            return 2;
        }
        out << "# converted by switchyard-replay from " << in_path << "\n" << replay::format(t);
        std::cerr << "switchyard-replay: " << c.connections.size() << " connections, " << t.steps.size() << " lines\n";
        return out ? 0 : 2;
    }

    if (!parse_target(target, ro)) {
        std::cerr << "switchyard-replay: --target wants HOST:PORT, not \"" << target << "\"\n";
        return 2;
    }
    if (!parse_pace(pace, ro)) {
        std::cerr << "switchyard-replay: --pace wants fast, captured or a factor, not \"" << pace << "\"\n";
        return 2;
    }
    ro.timeout = std::chrono::milliseconds(timeout_ms);
    ro.grace = std::min(ro.grace, ro.timeout);
    replay::transcript t;
    if (!load_trace(in_path, io, t)) return 2;
    std::map<std::string, std::string> renames;
    if (!mapping.empty()) {
        if (auto e = replay::read_mapping(mapping, ro.passwords, renames)) {
            std::cerr << "switchyard-replay: " << e->what() << "\n";
            return 2;
        }
    }
    replay::rename_handles(t, renames);
    if (prelude) {
        std::map<std::string, std::string> pw = ro.passwords;
        for (const auto& u : t.users) pw.emplace(u.handle, u.password);
        if (const int n = replay::add_login_prelude(t, pw)) {
            std::cerr << "switchyard-replay: " << n << " synthetic login(s) first: for connections without a login"
                      << " in the trace, or switchboards without the connection that fetched their cookie\n";
        }
    }

    if (run->parsed()) {
        ro.progress = &std::cerr;
        const auto started = std::chrono::steady_clock::now();
        const auto r = replay::run(t, ro);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        for (const auto& f : r.failures) std::cout << "FAIL " << replay::describe(f) << "\n";
        std::printf("%s: %zu of %zu steps, %zu failure(s), %.3f s\n", r.passed() ? "PASS" : "FAIL", r.steps, t.steps.size(),
                    r.failures.size(), seconds);
        return r.passed() ? 0 : 1;
    }

    // load: copy i renames every handle h of the trace to local.i@domain,
    // with h's password.
    std::set<std::string> handles;
    for (const auto& u : t.users) handles.insert(u.handle);
    for (const auto& [h, p] : ro.passwords) handles.insert(h);
    std::mutex mutex;
    std::map<std::string, std::vector<double>> latency;
    std::map<std::string, int> errors;
    std::atomic<int> passed{0};
    std::vector<std::thread> threads;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 1; i <= copies; ++i) {
        threads.emplace_back([&, i] {
            replay::transcript copy = t;
            replay::run_options o = ro;
            std::map<std::string, std::string> rn;
            for (const auto& h : handles) {
                const auto at = h.find('@');
                const std::string to = at == std::string::npos ? h + "." + std::to_string(i)
                                                               : h.substr(0, at) + "." + std::to_string(i) + h.substr(at);
                rn[h] = to;
                if (const auto p = ro.passwords.find(h); p != ro.passwords.end()) o.passwords[to] = p->second;
            }
            for (const auto& u : t.users) o.passwords[rn[u.handle]] = u.password;
            replay::rename_handles(copy, rn);
            copy.users.clear();
            const auto r = replay::run(copy, o);
            const std::lock_guard lock(mutex);
            if (r.passed()) ++passed;
            for (const auto& f : r.failures) errors[f.kind]++;
            for (const auto& [cmd, v] : r.latency) latency[cmd].insert(latency[cmd].end(), v.begin(), v.end());
        });
    }
    for (auto& th : threads) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("%d of %d copies passed in %.3f s\n", passed.load(), copies, seconds);
    std::printf("%-8s %8s %10s %10s %10s %10s\n", "command", "count", "p50 ms", "p90 ms", "p99 ms", "max ms");
    for (const auto& [cmd, v] : latency) {
        std::printf("%-8s %8zu %10.3f %10.3f %10.3f %10.3f\n", cmd.c_str(), v.size(), percentile(v, 50), percentile(v, 90),
                    percentile(v, 99), percentile(v, 100));
    }
    std::printf("errors:");
    if (errors.empty()) std::printf(" none");
    for (const auto& [kind, n] : errors) std::printf(" %s %d", kind.c_str(), n);
    std::printf("\n");
    return passed.load() == copies ? 0 : 1;
}
