#include "tools/replay/transcript.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

namespace switchyard::replay {

namespace {

bool is_upper_command(std::string_view w) {
    if (w.size() != 3) return false;
    const bool letters = std::all_of(w.begin(), w.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    const bool digits = std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
    return letters || digits;
}

bool variable_token(std::string_view w) { return w == "*" || w.find("${") != std::string_view::npos; }

std::string format_time(double at) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "+%.3f", at);
    return buf;
}

}  // namespace

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const auto sp = s.find(' ', start);
        out.emplace_back(s.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
        if (sp == std::string_view::npos) break;
        start = sp + 1;
    }
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool looks_like_command(std::string_view line) {
    if (line.size() < 3 || !is_upper_command(line.substr(0, 3))) return false;
    if (line.size() > 3 && line[3] != ' ') return false;
    return std::all_of(line.begin(), line.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u != 0x7f;
    });
}

// msnp-reference §2.3: the commands followed by a payload, per direction.
bool payload_command(std::string_view line, bool from_client, bool length_known) {
    static constexpr std::array<std::string_view, 11> client{"MSG", "UUX", "ADL", "RML", "FQY", "QRY",
                                                             "UUN", "PAG", "UUM", "SDC", "GCF"};
    static constexpr std::array<std::string_view, 12> server{"MSG", "UBX", "GCF", "NOT", "ADL", "RML",
                                                             "FQY", "UBN", "IPG", "NFY", "UBM", "SDG"};
    const auto w = split(line);
    if (w.size() < 2) return false;
    const auto& names = from_client ? std::vector<std::string_view>(client.begin(), client.end())
                                    : std::vector<std::string_view>(server.begin(), server.end());
    if (std::find(names.begin(), names.end(), w[0]) == names.end()) return false;
    const std::string& last = w.back();
    if (all_digits(last)) return last.find_first_not_of('0') != std::string::npos;
    return !length_known && variable_token(last) && last.find("${=") == std::string::npos;
}

std::optional<std::string> transaction_id(std::string_view line) {
    // Second tokens that are not transaction ids (msnp-reference §2.2, §4).
    static constexpr std::array<std::string_view, 14> none{"RNG", "QNG", "NOT", "MSG", "UBX", "NLN", "FLN",
                                                           "JOI", "BYE", "BPR", "IPG", "UBN", "LSG", "CHL"};
    const auto w = split(line);
    if (w.size() < 2 || !all_digits(w[1]) || w[1].find_first_not_of('0') == std::string::npos) return std::nullopt;
    if (std::find(none.begin(), none.end(), w[0]) != none.end()) return std::nullopt;
    return w[1];
}

// ----------------------------------------------------------------- reading

std::optional<parse_error> parse(std::string_view text, const std::string& file, transcript& t) {
    t.file = file;
    int n = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        ++n;
        auto nl = text.find('\n', pos);
        std::string raw(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!raw.empty() && raw.back() == '\r') raw.pop_back();
        if (raw.find('\0') != std::string::npos) return parse_error{file, n, "a NUL byte: this is not a transcript"};
        if (raw.starts_with("    ")) {
            if (t.steps.empty() || (t.steps.back().payload.empty() && !t.steps.back().has_payload)) {
                return parse_error{file, n, "a payload line (four spaces) with no payload command before it"};
            }
            t.steps.back().payload.push_back(raw.substr(4));
            continue;
        }
        if (raw.empty() || raw[0] == '#') continue;
        const auto words = split(raw);
        if (raw[0] == '@') {
            if (words[0] == "@user") {
                if (words.size() < 3 || words[1].empty() || words[2].empty() ||
                    (words.size() > 3 && words[3] != "legacy-md5") || words.size() > 4) {
                    return parse_error{file, n, "expected @user HANDLE PASSWORD [legacy-md5]"};
                }
                t.users.push_back({words[1], words[2], words.size() > 3});
            } else if (words[0] == "@dialect") {
                if (words.size() != 2) return parse_error{file, n, "expected @dialect MSNPn"};
                t.dialect = words[1];
            } else {
                return parse_error{file, n, "unknown directive " + words[0] + " (known: @user, @dialect)"};
            }
            continue;
        }
        step s;
        s.line = n;
        std::size_t i = 0;
        if (words[0].starts_with("+")) {
            double at = 0;
            const auto& w = words[0];
            const auto r = std::from_chars(w.data() + 1, w.data() + w.size(), at);
            if (r.ec != std::errc() || r.ptr != w.data() + w.size() || at < 0) {
                return parse_error{file, n, "bad time \"" + w + "\" (expected +SECONDS, e.g. +1.250)"};
            }
            s.at = at;
            ++i;
        }
        if (words.size() < i + 2 || words[i].empty() || (words[i + 1] != "C:" && words[i + 1] != "S:")) {
            return parse_error{file, n, "expected \"[+SECONDS] CONNECTION C: LINE\" or \"... S: LINE\""};
        }
        s.connection = words[i];
        s.client = words[i + 1] == "C:";
        const std::size_t skip = (i == 1 ? words[0].size() + 1 : 0) + words[i].size() + 1 + 3;
        s.text = skip <= raw.size() ? raw.substr(skip) : std::string();
        if (s.text.empty()) return parse_error{file, n, "an empty command line"};
        if (s.text == "(closed)" && s.client) return parse_error{file, n, "(closed) is something a server does: S:"};
        s.has_payload = s.text != "(closed)" && payload_command(s.text, s.client, false);
        t.steps.push_back(std::move(s));
    }
    for (const step& s : t.steps) {
        if (s.client && s.has_payload && s.payload.empty()) {
            return parse_error{file, s.line, "a client payload command needs its payload on indented lines"};
        }
        bool ok = true;
        payload_bytes(s.payload, &ok);
        if (!ok) return parse_error{file, s.line, "a payload's !base64 line does not decode"};
    }
    return std::nullopt;
}

std::optional<parse_error> parse_file(const std::string& path, transcript& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return parse_error{path, 0, "cannot open"};
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path, out);
}

// ----------------------------------------------------------------- writing

std::string format_step(const step& s) {
    std::string out;
    if (s.at) out += format_time(*s.at) + " ";
    out += s.connection + (s.client ? " C: " : " S: ") + s.text + "\n";
    for (const auto& p : s.payload) out += "    " + p + "\n";
    return out;
}

std::string format(const transcript& t) {
    std::string out;
    if (!t.dialect.empty()) out += "@dialect " + t.dialect + "\n";
    for (const auto& u : t.users) out += "@user " + u.handle + " " + u.password + (u.legacy_md5 ? " legacy-md5" : "") + "\n";
    for (const auto& s : t.steps) out += format_step(s);
    return out;
}

// ----------------------------------------------------------------- payloads

std::string base64_encode(std::string_view in) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                           static_cast<unsigned char>(in[i + 2]);
        out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], table[v & 63]};
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {table[v >> 18], table[v >> 12 & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
        out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], '='};
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (in.size() % 4 != 0) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = in[i + j];
            if (c == '=' && i + 4 == in.size() && j >= 2) {
                ++pad;
                v <<= 6;
                continue;
            }
            const int d = value(c);
            if (d < 0 || pad) return std::nullopt;
            v = v << 6 | static_cast<unsigned>(d);
        }
        out.push_back(static_cast<char>(v >> 16));
        if (pad < 2) out.push_back(static_cast<char>(v >> 8 & 255));
        if (pad < 1) out.push_back(static_cast<char>(v & 255));
    }
    return out;
}

std::vector<std::string> payload_lines(std::string_view payload) {
    // Text joined with CRLF round-trips as lines; anything else (bare CR or
    // LF, control bytes, a line starting "!base64 ") is kept as base64.
    bool text = true;
    for (std::size_t i = 0; i < payload.size(); ++i) {
        const auto u = static_cast<unsigned char>(payload[i]);
        if (u == '\r') {
            if (i + 1 >= payload.size() || payload[i + 1] != '\n') text = false;
        } else if (u == '\n') {
            if (i == 0 || payload[i - 1] != '\r') text = false;
        } else if ((u < 0x20 && u != '\t') || u == 0x7f) {
            text = false;
        }
    }
    if (payload.starts_with("!base64 ")) text = false;
    if (!text) return {"!base64 " + base64_encode(payload)};
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const auto nl = payload.find("\r\n", start);
        out.emplace_back(payload.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 2;
    }
    return out;
}

std::string payload_bytes(const std::vector<std::string>& lines, bool* ok) {
    if (ok) *ok = true;
    if (lines.size() == 1 && lines[0].starts_with("!base64 ")) {
        auto bytes = base64_decode(std::string_view(lines[0]).substr(8));
        if (!bytes && ok) *ok = false;
        return bytes.value_or("");
    }
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i) out += "\r\n";
        out += lines[i];
    }
    return out;
}

// ----------------------------------------------------------------- matching

bool match_line(std::string_view expected, std::string_view actual, const captures& known, captures& out,
                std::string* why) {
    const auto want = split(expected);
    const auto got = split(actual);
    auto fail = [&](const std::string& reason) {
        if (why) *why = reason;
        return false;
    };
    // A last token "..." stands for any number of tokens, none included.
    const bool open_end = !want.empty() && want.back() == "...";
    const std::size_t fixed = open_end ? want.size() - 1 : want.size();
    if (open_end ? got.size() < fixed : want.size() != got.size()) {
        return fail(std::to_string(fixed) + (open_end ? " or more" : "") + " tokens expected, " +
                    std::to_string(got.size()) + " received");
    }
    captures fresh;
    for (std::size_t i = 0; i < fixed; ++i) {
        const std::string& w = want[i];
        const std::string& g = got[i];
        if (w == "*") continue;
        const auto open = w.find("${");
        const auto close = open == std::string::npos ? std::string::npos : w.find('}', open);
        if (open == std::string::npos || close == std::string::npos || close + 1 != w.size()) {
            if (w != g) return fail("token " + std::to_string(i + 1) + ": expected \"" + w + "\", received \"" + g + "\"");
            continue;
        }
        const std::string prefix = w.substr(0, open);
        if (!g.starts_with(prefix)) {
            return fail("token " + std::to_string(i + 1) + ": expected it to start with \"" + prefix + "\", received \"" + g + "\"");
        }
        const std::string rest = g.substr(prefix.size());
        std::string name = w.substr(open + 2, close - open - 2);
        if (name.starts_with("=")) {
            name.erase(0, 1);
            const captures* where = fresh.contains(name) ? &fresh : &known;
            const auto it = where->find(name);
            if (it == where->end()) return fail("no earlier capture named " + name);
            if (it->second != rest) {
                return fail("token " + std::to_string(i + 1) + ": expected ${" + name + "} = \"" + it->second +
                            "\", received \"" + rest + "\"");
            }
            continue;
        }
        fresh[name] = rest;
    }
    for (auto& [k, v] : fresh) out[k] = v;
    return true;
}

// ----------------------------------------------------------------- splitting

void splitter::feed(std::string_view bytes, double at) {
    if (buffer_.empty()) {
        first_at_ = at;
        have_first_ = true;
    }
    buffer_.append(bytes);
    for (;;) {
        const auto nl = buffer_.find('\n');
        if (nl == std::string::npos) return;
        std::string line = buffer_.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (resync_) {
            // Mid-stream: drop until a line that reads as a command.
            if (!looks_like_command(line)) {
                dropped_ += nl + 1;
                buffer_.erase(0, nl + 1);
                first_at_ = at;
                continue;
            }
            resync_ = false;
        }
        // An empty line or one with control bytes is not a command, and
        // would not survive as a transcript line: counted, not kept.
        if (line.empty() || std::any_of(line.begin(), line.end(), [](char c) {
                const auto u = static_cast<unsigned char>(c);
                return (u < 0x20 && u != '\t') || u == 0x7f;
            })) {
            dropped_ += nl + 1;
            buffer_.erase(0, nl + 1);
            first_at_ = at;
            continue;
        }
        step s;
        s.client = client_;
        s.at = have_first_ ? first_at_ : at;
        s.text = line;
        std::size_t used = nl + 1;
        if (payload_command(line, client_)) {
            std::size_t length = 0;
            const auto w = split(line);
            std::from_chars(w.back().data(), w.back().data() + w.back().size(), length);
            if (buffer_.size() < used + length) return;  // the rest of the payload is still coming
            s.has_payload = true;
            s.payload = payload_lines(std::string_view(buffer_).substr(used, length));
            used += length;
        }
        buffer_.erase(0, used);
        first_at_ = at;
        out_.push_back(std::move(s));
    }
}

std::vector<step> splitter::take() { return std::exchange(out_, {}); }

// ----------------------------------------------------------------- redaction

namespace {

bool guid_like(std::string_view s) {
    // {8-4-4-4-12} with or without braces.
    if (s.starts_with("{") && s.ends_with("}")) s = s.substr(1, s.size() - 2);
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-')) return false;
        if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
}

bool timestamp_like(std::string_view s) {
    // 2005-05-06T09:17:57.1230000-07:00 and the like (SYN in MSNP10+).
    return s.size() >= 19 && all_digits(s.substr(0, 4)) && s[4] == '-' && s[7] == '-' && s[10] == 'T';
}

}  // namespace

std::string redactor::name_for(const std::string& kind) { return kind + std::to_string(++counters_[kind]); }

void redactor::remember(const std::string& value, const std::string& var) {
    if (!value.empty()) values_[value] = var;
}

std::string redactor::reuse(const std::string& token, bool client) const {
    const auto it = values_.find(token);
    if (it == values_.end()) return token;
    return client ? "${" + it->second + "}" : "${=" + it->second + "}";
}

step redactor::process(step s) {
    if (s.text == "(closed)") return s;
    auto w = split(s.text);
    const std::string cmd = w[0];
    if (s.client) {
        if (cmd == "USR" && w.size() >= 5 && w[3] == "I") {
            login_handle_[s.connection] = w[4];
        } else if (cmd == "USR" && w.size() >= 5 && w[2] == "MD5" && w[3] == "S") {
            const auto salt = salt_var_.find(s.connection);
            w[4] = salt != salt_var_.end() ? "${md5:" + salt->second + "}" : "${md5:salt}";
        } else if (cmd == "USR" && w.size() >= 5 && (w[2] == "TWN" || w[2] == "SSO") && w[3] == "S") {
            const auto h = login_handle_.find(s.connection);
            w[4] = "${ticket:" + (h != login_handle_.end() ? h->second : std::string("unknown")) + "}";
            w.resize(5);  // an SSO blob after the ticket is a secret too
        } else if (cmd == "USR" && w.size() >= 4) {
            // USR trid handle cookie on a switchboard.
            login_handle_[s.connection] = w[2];
            const auto r = reuse(w[3], true);
            w[3] = r != w[3] ? r : "${cookie}";
        } else if (cmd == "ANS" && w.size() >= 5) {
            login_handle_[s.connection] = w[2];
            const auto c = reuse(w[3], true);
            w[3] = c != w[3] ? c : "${cookie}";
            w[4] = reuse(w[4], true);
        } else {
            for (std::size_t i = 1; i < w.size(); ++i) w[i] = reuse(w[i], true);
        }
        if (s.has_payload) w.back() = std::to_string(payload_bytes(s.payload).size());
    } else {
        if (cmd == "USR" && w.size() >= 5 && w[2] == "MD5" && w[3] == "S") {
            const auto var = name_for("salt");
            salt_var_[s.connection] = var;
            w[4] = "${" + var + "}";
        } else if (cmd == "XFR" && w.size() >= 6 && w[2] == "SB") {
            const auto sb = name_for("sb");
            const auto cookie = name_for("cookie");
            remember(w[5], cookie);
            w[3] = "${" + sb + "}";
            w[5] = "${" + cookie + "}";
        } else if (cmd == "RNG" && w.size() >= 5) {
            const auto session = name_for("session");
            const auto sb = name_for("sb");
            const auto cookie = name_for("cookie");
            remember(w[1], session);
            remember(w[4], cookie);
            w[1] = "${" + session + "}";
            w[2] = "${" + sb + "}";
            w[4] = "${" + cookie + "}";
        } else if (cmd == "CAL" && w.size() >= 4 && w[2] == "RINGING") {
            const auto r = reuse(w[3], false);
            if (r != w[3]) {
                w[3] = r;
            } else {
                const auto session = name_for("session");
                remember(w[3], session);
                w[3] = "${" + session + "}";
            }
        } else {
            for (std::size_t i = 1; i < w.size(); ++i) {
                auto& t = w[i];
                const auto r = reuse(t, false);
                if (r != t) {
                    t = r;
                } else if (timestamp_like(t)) {
                    t = "*";
                } else if (const auto eq = t.find('='); guid_like(t) || (eq != std::string::npos && guid_like(t.substr(eq + 1)))) {
                    // A GUID the server made (a contact or group id): the
                    // client names it later, so capture it.
                    const auto var = name_for("guid");
                    const auto prefix = eq != std::string::npos && !guid_like(t) ? t.substr(0, eq + 1) : std::string();
                    remember(t.substr(prefix.size()), var);
                    t = prefix + "${" + var + "}";
                }
            }
        }
        if (s.has_payload) {
            w.back() = "*";
            // The profile message is the server's own (login time, member
            // id, MSPAuth, address): checked for its length only.
            if (cmd == "MSG" && w.size() >= 3 && w[1] == "Hotmail") s.payload.clear();
        }
    }
    std::string text;
    for (std::size_t i = 0; i < w.size(); ++i) text += (i ? " " : "") + w[i];
    s.text = std::move(text);
    if (!s.client) {
        for (auto& p : s.payload) {
            if (p.starts_with("!base64 ")) continue;
            auto pw = split(p);
            for (auto& t : pw) {
                if (values_.contains(t)) t = "${=" + values_.at(t) + "}";
                else if (timestamp_like(t)) t = "*";
            }
            std::string joined;
            for (std::size_t i = 0; i < pw.size(); ++i) joined += (i ? " " : "") + pw[i];
            p = joined;
        }
    }
    return s;
}

// ----------------------------------------------------------------- renaming

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

std::string url_encode_at(const std::string& h) {
    std::string out = h;
    replace_all(out, "@", "%40");
    return out;
}

}  // namespace

void rename_handles(transcript& t, const std::map<std::string, std::string>& renames) {
    // Two passes through placeholders, so that renaming a to b and b to a
    // at once does not chain.
    std::vector<std::pair<std::string, std::string>> pairs;
    int i = 0;
    for (const auto& [from, to] : renames) {
        const std::string mark = "\x01" + std::to_string(i++) + "\x01";
        pairs.push_back({from, mark});
        pairs.push_back({url_encode_at(from), mark + "%"});
    }
    auto apply = [&](std::string& s) {
        for (const auto& [from, mark] : pairs) replace_all(s, from, mark);
        int j = 0;
        for (const auto& [from, to] : renames) {
            const std::string mark = "\x01" + std::to_string(j++) + "\x01";
            replace_all(s, mark + "%", url_encode_at(to));
            replace_all(s, mark, to);
        }
    };
    for (auto& u : t.users) apply(u.handle);
    for (auto& s : t.steps) {
        apply(s.text);
        for (auto& p : s.payload) {
            if (p.starts_with("!base64 ")) {
                auto bytes = base64_decode(std::string_view(p).substr(8));
                if (!bytes) continue;
                apply(*bytes);
                p = "!base64 " + base64_encode(*bytes);
            } else {
                apply(p);
            }
        }
    }
}

}  // namespace switchyard::replay
