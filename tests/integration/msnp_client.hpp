// Test support: a blocking MSNP client over a real socket, for tests that
// drive the real gateway by hand rather than through a transcript.
#pragma once

#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::test {

inline bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

inline std::string md5_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 15]);
    }
    return out;
}

inline std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// An MSNP5 client: sends commands and reads the reply with its transaction
// id, passing over asynchronous lines (and their payloads) on the way.
class msnp_client {
public:
    explicit msnp_client(unsigned short port, const std::string& source = {}) : socket_(port, source) {}

    void send(std::string_view bytes) { socket_.send(bytes); }

    // The payload of the last line read, if it had one (MSG).
    const std::string& payload() const { return payload_; }

    std::string line() {
        for (;;) {
            if (const auto nl = buffer_.find("\r\n"); nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 2);
                seen_ += l + "\n";
                const auto w = words(l);
                payload_.clear();
                if (has_payload(w)) payload_ = take(std::stoul(w.back()));
                return l;
            }
            fill();
        }
    }

    // The next line whose command and transaction id are `prefix` ("ADD 8").
    std::string reply(const std::string& prefix) {
        for (;;) {
            std::string l = line();
            if (l.starts_with(prefix + " ") || l == prefix) return l;
            const auto w = words(l);
            const bool error = w.size() >= 2 && std::isdigit(static_cast<unsigned char>(w[0][0]));
            INFO("waiting for " << prefix << ", an error arrived: " << l);
            REQUIRE_FALSE((error && w[1] == words(prefix).back()));
        }
    }

    // Whether the server closes the connection within the deadline; what it
    // sends before is dropped.
    bool closes() { return socket_.read_to_eof().has_value(); }

    std::string command(const std::string& text) {
        const auto w = words(text);
        send(text + "\r\n");
        return reply(w.at(0) + " " + w.at(1));
    }

    // MSNP8+: VER, CVR, USR TWN I/S with a Passport ticket ("t=...&p="),
    // SYN, CHG NLN with `capabilities`; returns the USR OK line.
    std::string login_twn(const std::string& handle, const std::string& ticket, const std::string& dialect = "MSNP11",
                          const std::string& capabilities = "1073741824") {
        command("VER 1 " + dialect + " CVR0");
        command("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.0.0816 MSMSGS " + handle);
        command("USR 3 TWN I " + handle);
        const std::string ok = command("USR 4 TWN S " + ticket);
        REQUIRE(words(ok).at(2) == "OK");
        command("SYN 5 0 0");
        command("CHG 6 NLN " + capabilities);
        return ok;
    }

    // VER, USR MD5 I/S, CHG NLN; returns the USR OK line.
    std::string login(const std::string& handle, const std::string& password) {
        command("VER 1 MSNP5 CVR0");
        const auto salt = words(command("USR 2 MD5 I " + handle)).at(4);
        const std::string ok = command("USR 3 MD5 S " + md5_hex(salt + password));
        REQUIRE(words(ok).at(2) == "OK");
        command("CHG 4 NLN");
        return ok;
    }

private:
    // Server commands followed by a payload whose length is their last word.
    static bool has_payload(const std::vector<std::string>& w) {
        static constexpr std::string_view commands[] = {"MSG", "UBX", "GCF", "NOT", "IPG", "UUX", "UBN"};
        if (w.size() < 2 || std::find(std::begin(commands), std::end(commands), w[0]) == std::end(commands)) return false;
        return std::all_of(w.back().begin(), w.back().end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    }

    void fill() {
        const auto more = socket_.read_some(10s);
        INFO("lines received so far:\n" << seen_);
        REQUIRE(more);
        REQUIRE_FALSE(more->empty());
        buffer_ += *more;
    }
    std::string take(std::size_t n) {
        while (buffer_.size() < n) fill();
        std::string out = buffer_.substr(0, n);
        buffer_.erase(0, n);
        return out;
    }

    tcp_client socket_;
    std::string buffer_;
    std::string payload_;
    std::string seen_;  // every line read, for failure messages
};

// `MSG trid A len` and a plain-text payload: a message to be acknowledged.
inline std::string chat_message(int tr, const std::string& text) {
    const std::string payload = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text;
    return "MSG " + std::to_string(tr) + " A " + std::to_string(payload.size()) + "\r\n" + payload;
}

}  // namespace switchyard::test
