// What the notification server writes, per dialect, as pure functions of
// frames: presence lines, the SYN reply, the Hotmail messages and the UUX/UBX
// document (msnp-reference §4.2, §4.3, §4.7). Private to ns.cpp.
#pragma once

#include "protocols/frame/frame.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard::msnp::ns {

// A server line built token by token: "A B C\r\n", or "A B C <len>\r\n"
// followed by the payload.
class wire_line {
public:
    explicit wire_line(std::string_view name) : text_(name) {}

    wire_line& operator<<(std::string_view token) {
        text_ += ' ';
        text_ += token;
        return *this;
    }
    wire_line& operator<<(std::uint64_t number) { return *this << std::string_view(std::to_string(number)); }

    std::string end() const { return text_ + "\r\n"; }
    std::string end(std::string_view payload) const {
        return text_ + ' ' + std::to_string(payload.size()) + "\r\n" + std::string(payload);
    }

private:
    std::string text_;
};

// Status codes of CHG/ILN/NLN (§4.2); `FLN` only ever goes to watchers.
std::string_view status_code(frame::status s);
// A status a client may set with CHG; FLN and unknown codes are not (201).
std::optional<frame::status> settable_status(std::string_view code);

// A contact's presence as this dialect shows it (§4.2 table): `ILN` with
// the triggering command's TrID when `iln_trid` is set, else `NLN`, then
// from MSNP11 a `UBX` unless `u.changed` says the personal message and
// media did not change; `FLN` when offline.
std::string presence(int dialect, const frame::presence_update& u, std::optional<std::string_view> iln_trid);

// `BPR ver handle KEY value` for each of a contact's phone fields that is
// set: what follows `ADD … FL` (MSNP5-9, §4.3).
std::string contact_phones(std::uint64_t version, std::string_view handle, const frame::phones& p);

// A contact's change as a watcher sees it: `BPR` for each changed phone
// field (MSNP5-12, with the watcher's list version up to MSNP9), then the
// presence lines unless only phone fields changed.
std::string presence_change(int dialect, std::uint64_t list_version, const frame::presence_update& u);

// The complete list for `SYN t …` (§4.3): `version` is the list version to
// report (MSNP2-9) or the timestamp (MSNP10-12). MSNP7-9 number the groups
// 1..n in creation order, group 0 being "Other Contacts". From MSNP5 the
// own phone fields follow BLP as `PRP`, and each forward-list contact's
// follow its LST as `BPR`.
std::string syn_reply(int dialect, std::string_view trid, std::string_view version, const frame::roster& r);

std::string_view blp_code(frame::privacy_default p);
std::string_view gtc_code(frame::add_prompt p);

// `MSG Hotmail Hotmail` messages (§4.7).
std::string profile_message(std::string_view handle, std::uint64_t now_ms);
std::string initial_mail_data_message();

// `GCF t Shields.xml <len>` + the shields document (§4.1).
std::string shields_reply(std::string_view trid);

// The PSM and media of a `UUX` document (§4.2), entities resolved; nullopt
// when it is not such a document (the connection is then closed, YW).
struct personal_status {
    std::string message;
    std::string media;
};
std::optional<personal_status> parse_uux(std::string_view payload);

}  // namespace switchyard::msnp::ns
