#include "tools/replay/capture_file.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

namespace switchyard::replay {

namespace {

std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const unsigned char* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

struct segment {
    std::string src, dst;  // address:port
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0;
    bool syn = false, fin = false;
    std::string_view data;
};

std::string address(int family, const unsigned char* p, std::uint16_t port) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, p, buf, sizeof buf);
    return (family == AF_INET6 ? "[" + std::string(buf) + "]" : std::string(buf)) + ":" + std::to_string(port);
}

// The TCP segment in a link-layer frame, if it is one.
std::optional<segment> decode(int link, const unsigned char* p, std::size_t n) {
    std::uint16_t proto = 0;  // ethertype
    switch (link) {
    case DLT_EN10MB:
        if (n < 14) return std::nullopt;
        proto = be16(p + 12);
        p += 14, n -= 14;
        while ((proto == 0x8100 || proto == 0x88a8) && n >= 4) {
            proto = be16(p + 2);
            p += 4, n -= 4;
        }
        break;
    case DLT_LINUX_SLL:
        if (n < 16) return std::nullopt;
        proto = be16(p + 14);
        p += 16, n -= 16;
        break;
    case DLT_LINUX_SLL2:
        if (n < 20) return std::nullopt;
        proto = be16(p);
        p += 20, n -= 20;
        break;
    case DLT_NULL:
    case DLT_LOOP: {
        if (n < 4) return std::nullopt;
        p += 4, n -= 4;
        proto = n && (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
        break;
    }
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        if (!n) return std::nullopt;
        proto = (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
        break;
    default:
        return std::nullopt;
    }
    int family = 0;
    const unsigned char *src = nullptr, *dst = nullptr;
    if (proto == 0x0800) {
        if (n < 20 || (p[0] >> 4) != 4) return std::nullopt;
        const std::size_t ihl = (p[0] & 15u) * 4u;
        const std::size_t total = be16(p + 2);
        if (p[9] != 6 || ihl < 20 || total < ihl || total > n) return std::nullopt;
        if ((be16(p + 6) & 0x3fff) != 0) return std::nullopt;  // fragments: not MSNP's way
        family = AF_INET;
        src = p + 12, dst = p + 16;
        n = total - ihl;  // drops Ethernet padding
        p += ihl;
    } else if (proto == 0x86dd) {
        if (n < 40) return std::nullopt;
        std::size_t total = be16(p + 4);
        std::uint8_t next = p[6];
        family = AF_INET6;
        src = p + 8, dst = p + 24;
        p += 40, n -= 40;
        if (total > n) return std::nullopt;
        n = total;
        while ((next == 0 || next == 43 || next == 60) && n >= 8) {
            const std::size_t len = (p[1] + 1u) * 8u;
            if (len > n) return std::nullopt;
            next = p[0];
            p += len, n -= len;
        }
        if (next != 6) return std::nullopt;
    } else {
        return std::nullopt;
    }
    if (n < 20) return std::nullopt;
    const std::size_t off = (p[12] >> 4) * 4u;
    if (off < 20 || off > n) return std::nullopt;
    segment s;
    s.sport = be16(p), s.dport = be16(p + 2);
    s.seq = be32(p + 4);
    s.syn = p[13] & 0x02;
    s.fin = p[13] & 0x01;
    s.src = address(family, src, s.sport);
    s.dst = address(family, dst, s.dport);
    s.data = std::string_view(reinterpret_cast<const char*>(p + off), n - off);
    return s;
}

// One direction of a TCP connection: bytes in sequence order, whatever
// order, duplication and overlap the segments came in.
class half_stream {
public:
    // Calls deliver(bytes) for each run of in-order bytes.
    template <class Deliver> void add(const segment& s, Deliver&& deliver) {
        if (s.syn) {
            next_ = s.seq + 1;
            started_ = true;
            syn_ = true;
            held_.clear();
        }
        if (!started_) {
            if (s.data.empty()) return;  // a bare ACK says nothing about where data starts
            next_ = s.seq;
            started_ = true;
        }
        std::uint32_t seq = s.syn ? s.seq + 1 : s.seq;
        if (!s.data.empty()) held_.emplace(seq, std::string(s.data));
        if (s.fin) {
            fin_at_ = seq + static_cast<std::uint32_t>(s.data.size());
            fin_ = true;
        }
        drain(deliver);
    }

    template <class Deliver> void drain(Deliver&& deliver) {
        for (bool progress = true; progress;) {
            progress = false;
            for (auto it = held_.begin(); it != held_.end(); ++it) {
                const auto off = static_cast<std::int32_t>(it->first - next_);
                if (off > 0) continue;
                const auto skip = static_cast<std::size_t>(-static_cast<std::int64_t>(off));
                if (skip < it->second.size()) {  // retransmissions overlap: only the new bytes
                    const std::string_view fresh = std::string_view(it->second).substr(skip);
                    next_ += static_cast<std::uint32_t>(fresh.size());
                    deliver(fresh);
                }
                held_.erase(it);
                progress = true;
                break;
            }
        }
    }

    // Lost bytes: jump over the first hole, so the rest still reads.
    template <class Deliver> std::size_t skip_gap(Deliver&& deliver) {
        if (held_.empty()) return 0;
        auto best = held_.begin();
        for (auto it = held_.begin(); it != held_.end(); ++it) {
            if (static_cast<std::int32_t>(it->first - best->first) < 0) best = it;
        }
        const auto gap = static_cast<std::size_t>(static_cast<std::uint32_t>(best->first - next_));
        next_ = best->first;
        drain(deliver);
        return gap;
    }

    bool closed() const { return fin_ && held_.empty() && static_cast<std::int32_t>(next_ - fin_at_) >= 0; }
    bool syn() const { return syn_; }
    bool started() const { return started_; }

private:
    bool started_ = false, syn_ = false, fin_ = false;
    std::uint32_t next_ = 0, fin_at_ = 0;
    std::multimap<std::uint32_t, std::string> held_;
};

// HTTP gateway polling (gateway.dll): MSNP in request and response bodies,
// one MSNP connection per SessionID across many HTTP connections.
class http_stream {
public:
    // Complete messages as (body, session id, action=open server).
    struct message {
        std::string head;
        std::string body;
    };
    std::vector<message> feed(std::string_view bytes) {
        buffer_.append(bytes);
        std::vector<message> out;
        for (;;) {
            const auto end = buffer_.find("\r\n\r\n");
            if (end == std::string::npos) break;
            const std::string head = buffer_.substr(0, end + 2);
            std::size_t length = 0;
            std::string lower = head;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
                length = std::strtoul(lower.c_str() + at + 17, nullptr, 10);
            }
            if (buffer_.size() < end + 4 + length) break;
            out.push_back({head, buffer_.substr(end + 4, length)});
            buffer_.erase(0, end + 4 + length);
        }
        return out;
    }

private:
    std::string buffer_;
};

std::string between(const std::string& s, const std::string& a, const std::string& b) {
    const auto at = s.find(a);
    if (at == std::string::npos) return {};
    const auto start = at + a.size();
    const auto end = s.find_first_of(b, start);
    return s.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

struct tcp_connection {
    std::size_t index = 0;      // into capture::connections (MSNP), or none for HTTP
    bool http = false;
    half_stream to_server, to_client;
    std::unique_ptr<splitter> client_split, server_split;
    http_stream http_client, http_server;
    std::string last_session;   // the SessionID of the last request, for its reply
    bool closed_noted = false;
};

std::string role_of(const std::vector<step>& steps) {
    for (const auto& s : steps) {
        if (!s.client) continue;
        const auto w = split(s.text);
        if (w[0] == "VER" || w[0] == "PNG" || w[0] == "CHG" || w[0] == "XFR" || w[0] == "SYN" || w[0] == "ADD" ||
            w[0] == "ADC" || (w[0] == "USR" && w.size() >= 4 && (w[2] == "MD5" || w[2] == "TWN" || w[2] == "SSO"))) {
            return "NS";
        }
        if (w[0] == "ANS" || w[0] == "CAL" || w[0] == "MSG" || w[0] == "USR") return "SB";
    }
    return "NS";
}

}  // namespace

std::optional<parse_error> read_capture(const std::string& path, const capture_options& options, capture& out) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    std::unique_ptr<pcap_t, decltype(&pcap_close)> pc(pcap_open_offline(path.c_str(), errbuf), pcap_close);
    if (!pc) return parse_error{path, 0, errbuf};
    const int link = pcap_datalink(pc.get());
    std::map<std::pair<std::string, std::string>, tcp_connection> tcp;  // (client, server)
    std::map<std::string, std::size_t> http_sessions;                  // SessionID -> connection index
    double start = -1;
    // Each HTTP gateway session keeps one splitter per direction across polls.
    std::map<std::pair<std::size_t, bool>, std::unique_ptr<splitter>> http_splitters;

    auto push = [&](std::size_t index, std::vector<step> steps) {
        auto& c = out.connections[index];
        for (auto& s : steps) {
            c.last = std::max(c.last, s.at.value_or(0));
            c.steps.push_back(std::move(s));
        }
    };

    for (;;) {
        pcap_pkthdr* h = nullptr;
        const unsigned char* data = nullptr;
        const int r = pcap_next_ex(pc.get(), &h, &data);
        if (r == PCAP_ERROR_BREAK) break;
        if (r != 1) {
            return parse_error{path, static_cast<int>(out.packets + 1),
                               std::string("packet ") + std::to_string(out.packets + 1) + ": " + pcap_geterr(pc.get())};
        }
        ++out.packets;
        const double ts = static_cast<double>(h->ts.tv_sec) + static_cast<double>(h->ts.tv_usec) / 1e6;
        if (start < 0) start = ts;
        const double at = ts - start;
        out.span = std::max(out.span, at);
        const auto seg = decode(link, data, h->caplen);
        if (!seg) continue;
        const bool to_server = options.ports.contains(seg->dport) || options.http_ports.contains(seg->dport);
        const bool to_client = options.ports.contains(seg->sport) || options.http_ports.contains(seg->sport);
        if (!to_server && !to_client) continue;
        const bool client_sent = to_server && !(to_client && seg->sport < seg->dport);
        const auto key = client_sent ? std::make_pair(seg->src, seg->dst) : std::make_pair(seg->dst, seg->src);
        const bool http = options.http_ports.contains(client_sent ? seg->dport : seg->sport);
        auto [it, fresh] = tcp.try_emplace(key);
        tcp_connection& tc = it->second;
        if (fresh) {
            tc.http = http;
            if (!http) {
                tc.index = out.connections.size();
                capture_connection cc;
                cc.client = key.first;
                cc.server = key.second;
                cc.first = at;
                out.connections.push_back(std::move(cc));
            }
        }
        half_stream& half = client_sent ? tc.to_server : tc.to_client;
        if (!tc.http) {
            auto& split_ptr = client_sent ? tc.client_split : tc.server_split;
            if (!split_ptr) {
                // No SYN: the capture began mid-connection.
                const bool resync = !seg->syn;
                if (resync) out.connections[tc.index].start_missing = true;
                split_ptr = std::make_unique<splitter>(client_sent, resync);
            }
            half.add(*seg, [&](std::string_view bytes) { split_ptr->feed(bytes, at); });
            push(tc.index, split_ptr->take());
            if (!client_sent && half.closed() && !tc.closed_noted) {
                tc.closed_noted = true;
                step closed;
                closed.at = at;
                closed.text = "(closed)";
                out.connections[tc.index].steps.push_back(closed);
                out.connections[tc.index].last = at;
            }
            continue;
        }
        // HTTP gateway: bodies are MSNP bytes of the session they name.
        half.add(*seg, [&](std::string_view bytes) {
            auto& parser = client_sent ? tc.http_client : tc.http_server;
            for (auto& m : parser.feed(bytes)) {
                std::string session;
                if (client_sent) {
                    session = between(m.head, "SessionID=", "& \r");
                    if (session.empty()) session = "open:" + key.first;  // Action=open: named by the reply
                    tc.last_session = session;
                } else {
                    session = between(m.head, "SessionID=", "; \r");
                    if (!tc.last_session.empty() && tc.last_session.starts_with("open:") && !session.empty()) {
                        // The reply to Action=open names the session.
                        if (auto o = http_sessions.find(tc.last_session); o != http_sessions.end()) {
                            http_sessions[session] = o->second;
                            http_sessions.erase(o);
                        }
                    }
                    if (session.empty()) session = tc.last_session;
                }
                auto [s, added] = http_sessions.try_emplace(session, out.connections.size());
                if (added) {
                    capture_connection cc;
                    cc.client = key.first;
                    cc.server = key.second;
                    cc.http = true;
                    cc.first = at;
                    out.connections.push_back(std::move(cc));
                }
                auto& cc = out.connections[s->second];
                if (m.body.empty()) continue;
                auto& sp = http_splitters[{s->second, client_sent}];
                if (!sp) sp = std::make_unique<splitter>(client_sent, false);
                sp->feed(m.body, at);
                for (auto& st : sp->take()) {
                    cc.last = std::max(cc.last, at);
                    cc.steps.push_back(std::move(st));
                }
            }
        });
    }
    // Bytes after a lost segment: read on past the hole.
    for (auto& [key, tc] : tcp) {
        if (tc.http) continue;
        for (bool client_sent : {true, false}) {
            half_stream& half = client_sent ? tc.to_server : tc.to_client;
            auto& sp = client_sent ? tc.client_split : tc.server_split;
            if (!sp) continue;
            for (std::size_t gap; (gap = half.skip_gap([&](std::string_view bytes) { sp->feed(bytes, out.connections[tc.index].last); })) > 0;) {
                out.connections[tc.index].gaps += gap;
            }
            push(tc.index, sp->take());
        }
    }
    for (auto& c : out.connections) {
        c.role = role_of(c.steps);
    }
    // Connections without a single MSNP command (a port scan, say) are not sessions.
    std::erase_if(out.connections, [](const capture_connection& c) {
        return std::none_of(c.steps.begin(), c.steps.end(), [](const step& s) { return s.text != "(closed)"; });
    });
    return std::nullopt;
}

transcript to_transcript(const capture& c) {
    transcript t;
    std::map<std::string, int> counters;
    struct timed {
        double at;
        std::size_t conn, index;
        step s;
    };
    std::vector<timed> all;
    for (std::size_t i = 0; i < c.connections.size(); ++i) {
        const auto& cc = c.connections[i];
        const std::string name = cc.role + std::to_string(++counters[cc.role]);
        for (std::size_t j = 0; j < cc.steps.size(); ++j) {
            step s = cc.steps[j];
            s.connection = name;
            s.line = 0;
            all.push_back({s.at.value_or(0), i, j, std::move(s)});
        }
    }
    // In time order; within one connection, in stream order.
    std::stable_sort(all.begin(), all.end(), [](const timed& a, const timed& b) {
        return std::tie(a.at, a.conn, a.index) < std::tie(b.at, b.conn, b.index);
    });
    redactor r;
    for (auto& x : all) t.steps.push_back(r.process(std::move(x.s)));
    // The dialect the server chose, when the login is in the capture.
    for (const auto& s : t.steps) {
        const auto w = split(s.text);
        if (!s.client && w[0] == "VER" && w.size() >= 3 && w[2].starts_with("MSNP")) {
            t.dialect = w[2];
            break;
        }
    }
    return t;
}

namespace {

std::string infer_dialect(const capture& c) {
    for (const auto& cc : c.connections) {
        for (const auto& s : cc.steps) {
            const auto w = split(s.text);
            if (!s.client && w[0] == "VER" && w.size() >= 3 && w[2].starts_with("MSNP")) return w[2] + " (from VER)";
        }
    }
    // Without a login: the newest feature seen (msnp-reference §1.2, §6.1).
    int at_least = 2;
    std::string why = "no login in the capture";
    for (const auto& cc : c.connections) {
        for (const auto& s : cc.steps) {
            const auto w = split(s.text);
            auto raise = [&](int v, const std::string& reason) {
                if (v > at_least) at_least = v, why = reason;
            };
            if (w[0] == "UBX" || w[0] == "UUX") raise(11, "UBX/UUX");
            if (w[0] == "ADC") raise(10, "ADC");
            if (w[0] == "ADL") raise(13, "ADL");
            if (w[0] == "QNG" && w.size() > 1) raise(9, "QNG with an interval");
            if (w[0] == "USR" && w.size() > 2 && w[2] == "TWN") raise(8, "TWN login");
            if (w[0] == "USR" && w.size() > 2 && w[2] == "SSO") raise(15, "SSO login");
            if (!s.client && (w[0] == "NLN" || w[0] == "UBX") && w.size() > 1 && w[w[0] == "NLN" ? 2 : 1].starts_with("1:")) raise(18, "1: handles");
        }
    }
    return "MSNP" + std::to_string(at_least) + " or later (inferred: " + why + ")";
}

}  // namespace

std::string summarize(const capture& c) {
    std::ostringstream o;
    std::map<std::string, int> client_cmds, server_cmds, errors;
    std::set<std::string> handles;
    int ns = 0, sb = 0, missing = 0, http = 0;
    for (const auto& cc : c.connections) {
        (cc.role == "NS" ? ns : sb)++;
        missing += cc.start_missing;
        http += cc.http;
        for (const auto& s : cc.steps) {
            if (s.text == "(closed)") continue;
            const auto w = split(s.text);
            (s.client ? client_cmds : server_cmds)[w[0]]++;
            if (!s.client && all_digits(w[0])) errors[w[0]]++;
            for (const auto& tok : w) {
                if (tok.find('@') != std::string::npos && tok.find('=') == std::string::npos) {
                    std::string h = tok.starts_with("1:") ? tok.substr(2) : tok;
                    if (const auto semi = h.find(';'); semi != std::string::npos) h.resize(semi);
                    handles.insert(h);
                }
            }
        }
    }
    char span[32];
    std::snprintf(span, sizeof span, "%.3f", c.span);
    o << "packets: " << c.packets << ", span " << span << " s\n";
    o << "connections: " << c.connections.size() << " (NS " << ns << ", SB " << sb << ", start missing " << missing
      << ", over HTTP " << http << ")\n";
    o << "dialect: " << infer_dialect(c) << "\n";
    std::map<std::string, int> counters;
    for (const auto& cc : c.connections) {
        int cs = 0, ss = 0;
        for (const auto& s : cc.steps) {
            if (s.text != "(closed)") (s.client ? cs : ss)++;
        }
        char d[64];
        std::snprintf(d, sizeof d, "%.3f s from +%.3f", cc.last - cc.first, cc.first);
        o << "  " << cc.role << ++counters[cc.role] << " " << cc.client << " -> " << cc.server << ": " << d << ", "
          << cs << " client commands, " << ss << " server commands" << (cc.start_missing ? ", start missing" : "")
          << (cc.gaps ? ", " + std::to_string(cc.gaps) + " bytes lost" : "") << "\n";
    }
    auto list = [&](const char* title, const std::map<std::string, int>& m) {
        o << title;
        if (m.empty()) o << " none";
        for (const auto& [k, v] : m) o << " " << k << " " << v;
        o << "\n";
    };
    list("client -> server:", client_cmds);
    list("server -> client:", server_cmds);
    list("errors:", errors);
    o << "handles:";
    if (handles.empty()) o << " none";
    for (const auto& h : handles) o << " " << h;
    o << "\n";
    return o.str();
}

}  // namespace switchyard::replay
